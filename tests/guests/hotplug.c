/*
 * hotplug: the guest's side of ACPI PCI hot plug, done by hand as the DSDT's AML does it
 * (docs/networking.md, "Hot plug"). GPE0 found through the FADT (GPE0_BLK), its bit 1
 * enabled; the host adds a virtio-net card (run-state.py, control "nic-add"): the GPE
 * fires, UP names one slot of SLOTS and reads clear, the slot's config space has the card
 * (1af4:1041). An eject the host did not ask for is ignored. The host asks for the removal
 * ("nic-remove"): the GPE fires, DOWN names the slot, the guest writes EJECT and the slot
 * empties (the worker tears the card down on its main loop), DOWN clears.
 */
#include "lib/guest.h"
#include "lib/io.h"

const char guest_name[] = "hotplug";

#define HP	   0xae00 /* the controller (dev/pcihp_regs.h) */
#define HP_UP	   (HP + 0)
#define HP_DOWN	   (HP + 4)
#define HP_EJECT   (HP + 8)
#define HP_SLOTS   (HP + 12)
#define GPE_HP	   0x02 /* GPE0 bit 1 */
#define VIRTIO_NET 0x10411af4u

static uint16_t gpe_sts, gpe_en;

static uint32_t cfg_id(unsigned slot)
{
	outl(0xcf8, 0x80000000u | slot << 11);
	return inl(0xcfc);
}

/* Wait for the hot plug GPE, then clear it (write one). */
static void wait_gpe(void)
{
	while (!(inb(gpe_sts) & GPE_HP))
		cpu_pause();
	outb(gpe_sts, GPE_HP);
	if (inb(gpe_sts) & GPE_HP)
		guest_fail("GPE0 status bit 1 did not clear on a write of one");
}

void guest_main(void)
{
	const struct acpi_header *fadt = acpi_find_table("FACP");
	uint32_t gpe0, slots, up, down, id;
	unsigned s;

	if (!fadt || fadt->length < 96)
		guest_fail("no FADT with a GPE0 block");
	memcpy(&gpe0, (const uint8_t *)fadt + 80, 4);
	if (!gpe0 || gpe0 > 0xffff || ((const uint8_t *)fadt)[92] != 16)
		guest_fail("FADT GPE0_BLK 0x%x, length %u", gpe0, ((const uint8_t *)fadt)[92]);
	gpe_sts = (uint16_t)gpe0;
	gpe_en = (uint16_t)(gpe0 + 8);
	slots = inl(HP_SLOTS);
	if (!slots || (slots & 0x80000001u))
		guest_fail("hot-pluggable slots 0x%08x", slots);
	outb(gpe_en, GPE_HP);
	guest_printf("hotplug: GPE0 at 0x%x, slots 0x%08x, ready\n", gpe0, slots);

	wait_gpe();
	up = inl(HP_UP);
	if (!up || (up & (up - 1)) || !(up & slots))
		guest_fail("UP is 0x%08x after the GPE: not one hot-pluggable slot", up);
	if (inl(HP_UP))
		guest_fail("UP did not clear when read");
	for (s = 0; !(up & 1u << s); s++)
		;
	id = cfg_id(s);
	if (id != VIRTIO_NET)
		guest_fail("slot %u reads id 0x%08x, not virtio-net's 1af4:1041", s, id);
	guest_printf("hotplug: slot %u added, virtio-net\n", s);
	outl(HP_EJECT, 1u << s); /* not asked for: ignored */
	if (inl(HP_DOWN))
		guest_fail("DOWN is 0x%08x after an eject nobody asked for", inl(HP_DOWN));
	guest_printf("hotplug: waiting for the removal\n");

	wait_gpe();
	down = inl(HP_DOWN);
	if (down != 1u << s)
		guest_fail("DOWN is 0x%08x after the GPE, expected slot %u", down, s);
	if (cfg_id(s) != VIRTIO_NET)
		guest_fail("slot %u emptied before the guest ejected it", s);
	outl(HP_EJECT, 1u << s);
	while (cfg_id(s) != 0xffffffffu)
		cpu_pause();
	if (inl(HP_DOWN))
		guest_fail("DOWN is 0x%08x after the eject", inl(HP_DOWN));
	guest_printf("hotplug: slot %u empty after the eject\n", s);
	guest_printf("hotplug: PASS\n");
	guest_exit(GUEST_EXIT_PASS);
}
