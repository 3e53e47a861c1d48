/* SPDX-License-Identifier: Apache-2.0 */
#include "vmm/x86/q35.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/le.h"
#include "lib/log.h"
#include "vmm/bus.h"
#include "vmm/dev/pm.h"
#include "vmm/machine.h"
#include "vmm/pci.h"
#include "vmm/pci_internal.h"
#include "vmm/state.h"
#include "vmm/x86/firmware.h"
#include "vmm/x86/layout.h"

/* ---- MCH (00:00.0) ---- */

uint64_t q35_pciexbar_base(const struct pci_dev *mch)
{
	uint64_t v = le64_load(mch->cfg + Q35_MCH_PCIEXBAR);
	uint64_t mask;

	if (!(v & Q35_PCIEXBAR_EN))
		return BUS_UNMAPPED;
	switch (v & 0x6) {
	case Q35_PCIEXBAR_LEN_256:
		mask = 0xff0000000ull; /* bits 35:28 */
		break;
	case Q35_PCIEXBAR_LEN_128:
		mask = 0xff8000000ull; /* bits 35:27 */
		break;
	case Q35_PCIEXBAR_LEN_64:
		mask = 0xffc000000ull; /* bits 35:26 */
		break;
	default:
		return BUS_UNMAPPED; /* the reserved length decodes nothing */
	}
	return v & mask;
}

void q35_mch_apply(const struct pci_dev *mch)
{
	struct machine *m = mch->host->m;

	/* The window starts on a 64 MiB boundary below 64 GiB: bus_move cannot fail. */
	if (bus_move(m->mmio, PCI_ECAM_BUS_NAME, q35_pciexbar_base(mch)))
		log_err("q35: cannot move the ECAM window");
}

static void mch_cfg_write(void *opaque, unsigned off, unsigned size, uint32_t value)
{
	const struct pci_dev *mch = opaque;

	if (off < Q35_MCH_PCIEXBAR + 8 && off + size > Q35_MCH_PCIEXBAR) {
		q35_mch_apply(mch);
		/* The firmware's first PCIEXBAR write of a boot is in its platform set-up, after
		 * it has copied what it runs into RAM (OVMF's SEC decompressed PEI and DXE;
		 * SeaBIOS shadowed itself): the image's pages need not stay resident in the worker
		 * (3.5 MiB of OVMF's). Once per boot: a reset runs the image again, and the MCH's
		 * power-on (q35_mch_power_on) arms this for the next boot's first write. */
		if (mch->host->m->firmware && !mch->host->firmware_released) {
			firmware_release(mch->host->m->firmware);
			mch->host->firmware_released = true;
		}
	}
}

static const struct pci_dev_ops mch_ops = {.cfg_write = mch_cfg_write};

void q35_mch_init(struct pci_dev *mch)
{
	unsigned i;

	pci_dev_init(mch, Q35_MCH_VENDOR, Q35_MCH_DEVICE, 0x060000, 0, 0x1af4, 0x1100);
	mch->ops = &mch_ops;
	mch->opaque = mch;
	/* PCIEXBAR: enable, length, and base bits 35:26. */
	mch->wmask[Q35_MCH_PCIEXBAR] = 0x07;
	mch->wmask[Q35_MCH_PCIEXBAR + 3] = 0xfc;
	mch->wmask[Q35_MCH_PCIEXBAR + 4] = 0x0f;
	/* PAM0 has only the high half (0xF0000-0xFFFFF); each other register two halves,
	 * each with read-enable and write-enable bits. */
	mch->wmask[Q35_MCH_PAM0] = 0x30;
	for (i = 1; i < Q35_MCH_PAM_COUNT; i++)
		mch->wmask[Q35_MCH_PAM0 + i] = 0x33;
	/* SMRAM and ESMRAMC stay read-only at their defaults: this machine has no SMM, and
	 * that is how firmware finds out (QEMU's Q35 with smm=off does the same). */
}

void q35_mch_power_on(struct pci_dev *mch)
{
	memset(mch->cfg + Q35_MCH_PAM0, 0, Q35_MCH_PAM_COUNT);
	mch->cfg[Q35_MCH_SMRAM] = Q35_SMRAM_DEFAULT;
	mch->cfg[Q35_MCH_ESMRAMC] = Q35_ESMRAMC_DEFAULT;
	le64_store(mch->cfg + Q35_MCH_PCIEXBAR,
		   LAYOUT_PCI_ECAM | Q35_PCIEXBAR_LEN_256 | Q35_PCIEXBAR_EN);
	if (mch->host)
		mch->host->firmware_released = false; /* a new boot runs the image again */
	q35_mch_apply(mch);
}

/* ---- LPC bridge (00:1f.0) ---- */

struct q35_lpc {
	struct pci_dev dev;
	struct machine *m;
};

/* Decode the PM block where PMBASE says while ACPI_EN is set, else nowhere. */
static void lpc_apply(struct q35_lpc *l)
{
	uint16_t base = le16_load(l->dev.cfg + Q35_LPC_PMBASE) & 0xff80;
	bool on = l->dev.cfg[Q35_LPC_ACPI_CNTL] & Q35_LPC_ACPI_EN;

	/* -ENOENT: a machine without the PM device (the fuzz targets' and tests'). */
	if (bus_move(l->m->pio, PM_BUS_NAME, on ? base : BUS_UNMAPPED) == -EINVAL)
		log_err("q35: cannot move the ACPI PM block");
}

static void lpc_cfg_write(void *opaque, unsigned off, unsigned size, uint32_t value)
{
	struct q35_lpc *l = opaque;

	if ((off < Q35_LPC_PMBASE + 2 && off + size > Q35_LPC_PMBASE) ||
	    (off <= Q35_LPC_ACPI_CNTL && off + size > Q35_LPC_ACPI_CNTL))
		lpc_apply(l);
}

static void lpc_reset(void *opaque)
{
	struct q35_lpc *l = opaque;
	uint8_t *c = l->dev.cfg;

	le32_store(c + Q35_LPC_PMBASE, PORT_PM_BASE | 1);
	c[Q35_LPC_ACPI_CNTL] = Q35_LPC_ACPI_EN; /* SCI on IRQ 9 (SCI_IRQ_SEL 0) */
	memset(c + Q35_LPC_PIRQA, Q35_LPC_PIRQ_DISABLED, 4);
	memset(c + Q35_LPC_PIRQE, Q35_LPC_PIRQ_DISABLED, 4);
	le32_store(c + Q35_LPC_RCBA, Q35_RCBA_DEFAULT | 1);
	lpc_apply(l);
}

static const struct pci_dev_ops lpc_ops = {.cfg_write = lpc_cfg_write, .reset = lpc_reset};

/* Saved state: the configuration space (pci_dev_state), then the PM block follows it. */
static int lpc_state(struct state_io *io, void *opaque)
{
	struct q35_lpc *l = opaque;
	int r = pci_dev_state(io, &l->dev);

	if (!r && state_applying(io))
		lpc_apply(l);
	return r;
}

static void lpc_teardown(void *opaque)
{
	struct q35_lpc *l = opaque;

	pci_dev_unregister(&l->dev);
	free(l);
}

int q35_lpc_create(struct machine *m, struct pci_host *h)
{
	struct q35_lpc *l = calloc(1, sizeof(*l));
	uint8_t *w;
	int r;

	if (!l)
		return -ENOMEM;
	l->m = m;
	pci_dev_init(&l->dev, Q35_LPC_VENDOR, Q35_LPC_DEVICE, 0x060100, 2, 0x1af4, 0x1100);
	l->dev.ops = &lpc_ops;
	l->dev.opaque = l;
	l->dev.name = "lpc";
	l->dev.slot = Q35_LPC_SLOT;
	w = l->dev.wmask;
	w[Q35_LPC_PMBASE] = 0x80; /* bits 15:7 */
	w[Q35_LPC_PMBASE + 1] = 0xff;
	w[Q35_LPC_ACPI_CNTL] = 0x87; /* ACPI_EN and SCI_IRQ_SEL */
	memset(w + Q35_LPC_PIRQA, 0x8f, 4);
	memset(w + Q35_LPC_PIRQE, 0x8f, 4);
	w[Q35_LPC_RCBA] = 0x01;
	w[Q35_LPC_RCBA + 1] = 0xc0; /* bits 31:14 */
	w[Q35_LPC_RCBA + 2] = 0xff;
	w[Q35_LPC_RCBA + 3] = 0xff;
	lpc_reset(l);
	r = pci_dev_register(h, &l->dev);
	if (r) {
		free(l);
		return r;
	}
	r = machine_add_teardown(m, lpc_teardown, l);
	if (r) {
		pci_dev_unregister(&l->dev);
		free(l);
		return r;
	}
	return machine_add_state_section(m, "lpc", 1, lpc_state, l);
}
