/* SPDX-License-Identifier: Apache-2.0 */
#include "vmm/dev/pcihp_regs.h"

#include "config/vmdef.h"
#include "config/vmdef_device.h"

uint32_t pcihp_slots(const struct vm_def *def)
{
	uint32_t mask = 0x7ffffffeu; /* 1 to 30 */

	for (size_t k = 0; k < vmdef_ndevices; k++) {
		const struct vmdef_device_kind *kind = vmdef_devices[k];
		unsigned n = kind->count(def);

		if (kind == &vmdef_nic_kind)
			continue;
		for (unsigned i = 0; i < n; i++) {
			unsigned s = vmdef_device_slot(kind, def, i);

			if (s < 32)
				mask &= ~(1u << s);
		}
	}
	return mask;
}

uint32_t pcihp_regs_read(struct pcihp_regs *r, uint64_t off, unsigned size)
{
	uint32_t v;

	if (size != 4)
		return 0;
	switch (off) {
	case PCIHP_UP:
		v = r->up;
		r->up = 0;
		return v;
	case PCIHP_DOWN:
		return r->down;
	case PCIHP_SLOTS:
		return r->slots;
	default:
		return 0;
	}
}

unsigned pcihp_regs_write(struct pcihp_regs *r, uint64_t off, unsigned size, uint64_t value)
{
	uint32_t v = (uint32_t)value;

	if (size != 4 || off != PCIHP_EJECT || !v || (v & (v - 1)) || !(v & r->down))
		return 0;
	r->down &= ~v;
	r->ejected |= v;
	return (unsigned)__builtin_ctz(v);
}

uint32_t pcihp_regs_take_ejected(struct pcihp_regs *r)
{
	uint32_t v = r->ejected;

	r->ejected = 0;
	return v;
}

void pcihp_regs_gone(struct pcihp_regs *r, unsigned slot)
{
	uint32_t bit = slot < 32 ? 1u << slot : 0;

	r->up &= ~bit;
	r->down &= ~bit;
	r->ejected &= ~bit;
}
