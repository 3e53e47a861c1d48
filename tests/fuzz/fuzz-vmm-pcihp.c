/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The PCI hot plug controller's registers (dev/pcihp_regs.h) under any mix of guest accesses
 * (any offset, width and value) and host events (a card added or its removal asked for at
 * any slot, as the worker does them only at hot-pluggable slots). Invariants: UP and DOWN stay
 * within SLOTS, SLOTS never changes, an eject names exactly one slot whose removal was asked
 * for and clears it, and UP reads clear it. Input: records of 7 bytes: kind, offset and
 * width, a 32-bit value, and a slot.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/dev/pcihp_regs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c))                                                                          \
			abort();                                                                   \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pcihp_regs r = {.slots = 0x7ffffffeu};

	if (size >= 4) {
		memcpy(&r.slots, data, 4);
		r.slots &= 0x7ffffffeu;
		data += 4;
		size -= 4;
	}
	for (; size >= 7; data += 7, size -= 7) {
		uint32_t v, before_down = r.down, slots = r.slots;
		unsigned off = data[1] & 0x1f, width = 1u << (data[1] >> 5 & 3), s = data[6] & 31;

		memcpy(&v, data + 2, 4);
		switch (data[0] & 3) {
		case 0: /* the guest reads */
			v = pcihp_regs_read(&r, off, width);
			if (off == PCIHP_UP && width == 4)
				CHECK(r.up == 0);
			break;
		case 1: { /* the guest writes */
			unsigned ej = pcihp_regs_write(&r, off, width, v);

			if (ej) {
				CHECK(ej < 32 && v == 1u << ej && (before_down & 1u << ej));
				CHECK(r.down == (before_down & ~(1u << ej)));
				CHECK(r.ejected & 1u << ej);
			} else {
				CHECK(r.down == before_down);
			}
			break;
		}
		case 2: /* the host adds a card (hotplug.c: only at a hot-pluggable slot), or
			 * removes one by force, or tears the ejected ones down */
			if (data[5] & 0x80) {
				pcihp_regs_gone(&r, s);
				CHECK(!((r.up | r.down | r.ejected) & 1u << s));
			} else if (data[5] & 0x40) {
				(void)pcihp_regs_take_ejected(&r);
				CHECK(r.ejected == 0);
			} else if (r.slots & 1u << s) {
				r.up |= 1u << s;
			}
			break;
		default: /* the host asks for a removal */
			if (r.slots & 1u << s)
				r.down |= 1u << s;
			break;
		}
		CHECK(r.slots == slots);
		CHECK(!(r.up & ~r.slots) && !(r.down & ~r.slots) && !(r.ejected & ~r.slots));
	}
	return 0;
}
