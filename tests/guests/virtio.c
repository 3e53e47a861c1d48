/*
 * virtio: a hostile driver for keel's virtio-rng over PCI.
 * 1. PCI: the host bridge at 00:00.0 through 0xCF8/0xCFC, the same registers through ECAM
 *    at the MCFG table's base, a 64-bit BAR sized and moved into the 32-bit window.
 * 2. The virtio 1.x modern transport: capabilities, feature negotiation, one queue, a valid
 *    request served (random bytes), an MSI-X interrupt through the local APIC.
 * 3. Malformed chains, each of which the device must reject (complete with 0 bytes, or mark
 *    itself DEVICE_NEEDS_RESET) while keel-vmm stays up; after each, a valid request must be
 *    served again: descriptor loops, next index out of range, buffers past the end of RAM or
 *    in the MMIO hole, a readable buffer after a writable one, indirect descriptors when not
 *    negotiated, nested indirect tables, indirect with NEXT, a queue size that is not a power
 *    of two, an avail index that jumps by more than the queue size, a head index out of range.
 * Other modes (mode=): blk, blkmq, net (multi-queue virtio-net), scsi (reads on a
 * virtio-scsi disk), state and crash for the guest tests, blkimage for
 * tests/daemon/e2e.py's disk-format (an image copied between two virtio-blk disks).
 */
#include "lib/guest.h"

const char guest_name[] = "virtio";

#define QSIZE	     16
#define MSI_VECTOR   0x51
#define BAR2_ADDR    0xd0000000u

#define F_NEXT	     1
#define F_WRITE	     2
#define F_INDIRECT   4

#define ST_ACK	     1
#define ST_DRIVER    2
#define ST_DRIVER_OK 4
#define ST_FEAT_OK   8
#define ST_NEEDS_RST 0x40

struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags, next;
} __attribute__((packed));

struct rings {
	struct desc desc[QSIZE];
	uint16_t avail_flags, avail_idx, avail_ring[QSIZE], used_event;
	uint8_t pad[4096 - 16 * QSIZE - 6 - 2 * QSIZE];
	uint16_t used_flags, used_idx;
	struct {
		uint32_t id, len;
	} used_ring[QSIZE];
	uint16_t avail_event;
} __attribute__((aligned(4096)));

static struct rings ring;
static struct desc itable[4] __attribute__((aligned(16)));
static struct desc itable2[2] __attribute__((aligned(16)));
static uint8_t buf[256], buf2[64];

static unsigned slot;
static uintptr_t common, notify, isr, msix_table, devcfg;
static uint32_t notify_mult;
static uint16_t last_used;
static volatile uint32_t msi_count;
static uint32_t ram_top;

static uint32_t cfg_addr(unsigned dev, unsigned off)
{
	return 0x80000000u | dev << 11 | (off & 0xfc);
}

static uint32_t cfg_read32(unsigned dev, unsigned off)
{
	outl(0xcf8, cfg_addr(dev, off));
	return inl(0xcfc);
}

static uint8_t cfg_read8(unsigned dev, unsigned off)
{
	outl(0xcf8, cfg_addr(dev, off));
	return inb(0xcfc + (off & 3));
}

static void cfg_write32(unsigned dev, unsigned off, uint32_t v)
{
	outl(0xcf8, cfg_addr(dev, off));
	outl(0xcfc, v);
}

static void cfg_write16(unsigned dev, unsigned off, uint16_t v)
{
	outl(0xcf8, cfg_addr(dev, off));
	outw(0xcfc + (off & 2), v);
}

static uint8_t r8(uintptr_t a)
{
	return *(volatile uint8_t *)a;
}
static uint16_t r16(uintptr_t a)
{
	return *(volatile uint16_t *)a;
}
static uint32_t r32(uintptr_t a)
{
	return *(volatile uint32_t *)a;
}
static void w8(uintptr_t a, uint8_t v)
{
	*(volatile uint8_t *)a = v;
}
static void w16(uintptr_t a, uint16_t v)
{
	*(volatile uint16_t *)a = v;
}
static void w32(uintptr_t a, uint32_t v)
{
	*(volatile uint32_t *)a = v;
}

static void barrier(void)
{
	__asm__ volatile("lock; addl $0,0(%%esp)" ::: "memory");
}

static void msi_isr(struct isr_frame *f)
{
	msi_count++;
	lapic_eoi();
}

/* Queue 1 of mode=blkmq interrupts on its own MSI-X vector, so that the two queues'
 * interrupts are counted apart (and none merges with another in the local APIC). */
static volatile uint32_t msi1_count;

/* Run once between the next wait's check and its halt (mode=blkmq irqwin). */
static void (*msi_between)(void);

/*
 * Halt until msi_count reaches want0 and msi1_count want1 (100000 wake-ups at most); returns
 * with interrupts off. The check runs with interrupts off and "sti; hlt" enables them and
 * halts as one step (the STI shadow), so an MSI-X message that lands after the check wakes
 * the hlt. Checked with interrupts on, a message landing between the check and the hlt was
 * counted there and the hlt then waited for one that never came: with no timer running, the
 * guest hung for good (state-blk-pause and virtio-blk-mq-threads on a loaded host).
 */
static void msi_wait(uint32_t want0, uint32_t want1)
{
	irq_disable();
	for (uint32_t i = 0; (msi_count < want0 || msi1_count < want1) && i < 100000; i++) {
		if (msi_between) {
			void (*f)(void) = msi_between;

			msi_between = NULL;
			f();
		}
		irq_enable_and_halt();
		irq_disable();
	}
}

static void check_pci(uint32_t want, const char *what)
{
	const struct acpi_header *mcfg = acpi_find_table("MCFG");
	uint32_t id = cfg_read32(0, 0), ecam, eid;
	unsigned d;

	if (id != 0x29c08086 || cfg_read32(0, 8) >> 8 != 0x060000)
		guest_fail("00:00.0 is 0x%08x class 0x%06x, expected the host bridge", id,
			   cfg_read32(0, 8) >> 8);
	if (!mcfg)
		guest_fail("no MCFG table");
	ecam = *(const uint32_t *)((const uint8_t *)mcfg + 44);
	for (d = 0; d < 32; d++) {
		id = cfg_read32(d, 0);
		eid = mmio_read32(ecam + (d << 15));
		if (id != eid)
			guest_fail("slot %u: 0xcf8 reads 0x%08x, ECAM at 0x%08x reads 0x%08x", d,
				   id, ecam, eid);
		if (id == want && !slot)
			slot = d;
	}
	if (!slot)
		guest_fail("no %s (0x%08x) on bus 0", what, want);
	guest_printf("virtio: PCI host bridge, ECAM at 0x%08x agrees with 0xcf8, %s in slot %u\n",
		     ecam, what, slot);
}

static void map_bars(void)
{
	uint32_t lo, hi, size, bar0;
	uint8_t cap;

	lo = cfg_read32(slot, 0x18);
	hi = cfg_read32(slot, 0x1c);
	if (!(lo & 4) || !hi)
		guest_fail("BAR2 is 0x%08x%08x: expected a 64-bit BAR above 4 GiB", hi, lo);
	cfg_write16(slot, 4, 0); /* decoding off while sizing */
	cfg_write32(slot, 0x18, 0xffffffffu);
	size = ~(cfg_read32(slot, 0x18) & ~0xfu) + 1;
	if (size != 0x4000)
		guest_fail("BAR2 sizes to 0x%x, expected 0x4000", size);
	cfg_write32(slot, 0x18, BAR2_ADDR);
	cfg_write32(slot, 0x1c, 0);
	bar0 = cfg_read32(slot, 0x10) & ~0xfu;
	if (bar0 < 0xc0000000u || bar0 >= 0xe0000000u)
		guest_fail("BAR0 (MSI-X) at 0x%08x is not in the 32-bit window", bar0);
	cfg_write16(slot, 4, 0x6); /* memory decoding, bus master */
	guest_printf("virtio: BAR2 was at 0x%08x%08x, size 0x%x, moved to 0x%08x; BAR0 at 0x%08x\n",
		     hi, lo & ~0xfu, size, BAR2_ADDR, bar0);

	for (cap = cfg_read8(slot, 0x34); cap; cap = cfg_read8(slot, cap + 1)) {
		uint8_t id = cfg_read8(slot, cap), type = cfg_read8(slot, cap + 3);
		uint32_t off = cfg_read32(slot, cap + 8);

		if (id == 0x11) {
			uint32_t tbl = cfg_read32(slot, cap + 4);

			if ((tbl & 7) != 0)
				guest_fail("MSI-X table in BAR %u, expected BAR 0", tbl & 7);
			msix_table = bar0 + (tbl & ~7u);
			continue;
		}
		if (id != 0x09 || cfg_read8(slot, cap + 4) != 2)
			continue;
		if (type == 1)
			common = BAR2_ADDR + off;
		else if (type == 2) {
			notify = BAR2_ADDR + off;
			notify_mult = cfg_read32(slot, cap + 16);
		} else if (type == 3)
			isr = BAR2_ADDR + off;
		else if (type == 4)
			devcfg = BAR2_ADDR + off;
	}
	if (!common || !notify || !isr || !msix_table)
		guest_fail("missing capability: common %x notify %x isr %x msix %x", common, notify,
			   isr, msix_table);
}

/* Queue q on rings r: size, ring addresses, MSI-X entry; enabled. */
static void queue_setup(uint16_t q, struct rings *r, uint16_t size, uint16_t vector)
{
	w16(common + 0x16, q);
	w16(common + 0x18, size);
	w32(common + 0x20, (uint32_t)r->desc);
	w32(common + 0x24, 0);
	w32(common + 0x28, (uint32_t)&r->avail_flags);
	w32(common + 0x2c, 0);
	w32(common + 0x30, (uint32_t)&r->used_flags);
	w32(common + 0x34, 0);
	w16(common + 0x1a, vector);
	w16(common + 0x1c, 1);
}

/* Reset, negotiate (VERSION_1 plus extra low feature bits), set up queue 0. */
static void vio_init(uint32_t features, uint16_t qsize, bool expect_ok)
{
	uint32_t dev_lo, dev_hi;
	unsigned i;

	w8(common + 0x14, 0);
	for (i = 0; r8(common + 0x14) != 0; i++)
		if (i > 1000000)
			guest_fail("device status did not read 0 after reset");
	w8(common + 0x14, ST_ACK);
	w8(common + 0x14, ST_ACK | ST_DRIVER);
	w32(common + 0x00, 0);
	dev_lo = r32(common + 0x04);
	w32(common + 0x00, 1);
	dev_hi = r32(common + 0x04);
	if (!(dev_hi & 1) || !(dev_lo & (1u << 28)) || !(dev_lo & (1u << 29)))
		guest_fail("device features 0x%08x%08x lack VERSION_1, INDIRECT_DESC or EVENT_IDX",
			   dev_hi, dev_lo);
	w32(common + 0x08, 0);
	w32(common + 0x0c, features);
	w32(common + 0x08, 1);
	w32(common + 0x0c, 1);
	w8(common + 0x14, ST_ACK | ST_DRIVER | ST_FEAT_OK);
	if (!(r8(common + 0x14) & ST_FEAT_OK))
		guest_fail("FEATURES_OK not accepted");
	memset(&ring, 0, sizeof(ring));
	last_used = 0;
	w16(common + 0x16, 0);
	if (r16(common + 0x18) != 256)
		guest_fail("queue 0 offers size %u, expected 256", r16(common + 0x18));
	queue_setup(0, &ring, qsize, 0); /* MSI-X vector 0 */
	if (!expect_ok)
		return;
	if (r16(common + 0x1c) != 1)
		guest_fail("queue 0 did not enable");
	if (r16(common + 0x1a) != 0)
		guest_fail("queue 0 MSI-X vector reads 0x%x, expected 0", r16(common + 0x1a));
	w8(common + 0x14, ST_ACK | ST_DRIVER | ST_FEAT_OK | ST_DRIVER_OK);
}

static void kick(void)
{
	uint16_t off = r16(common + 0x1e);

	barrier();
	w16(notify + off * notify_mult, 0);
}

static void post(uint16_t head)
{
	ring.avail_ring[ring.avail_idx % QSIZE] = head;
	barrier();
	ring.avail_idx++;
	kick();
}

/* Wait for the next used entry; returns its length (fails on a timeout or wrong id). */
static uint32_t wait_used(uint16_t head)
{
	uint32_t i, len, id;

	for (i = 0; *(volatile uint16_t *)&ring.used_idx == last_used; i++) {
		if (i > 20000000)
			guest_fail("no used entry for head %u (device status 0x%x)", head,
				   r8(common + 0x14));
		cpu_pause();
	}
	barrier();
	id = ring.used_ring[last_used % QSIZE].id;
	len = ring.used_ring[last_used % QSIZE].len;
	last_used++;
	if (id != head)
		guest_fail("used entry for descriptor %u, expected %u", id, head);
	return len;
}

static void set_desc(unsigned i, uint32_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	ring.desc[i] = (struct desc){addr, len, flags, next};
}

/* One valid 64-byte request: the device fills it with random bytes. */
static void valid_request(const char *after)
{
	unsigned i, nonzero = 0;
	uint32_t len;

	memset(buf, 0, sizeof(buf));
	set_desc(0, (uint32_t)buf, 64, F_WRITE, 0);
	post(0);
	len = wait_used(0);
	for (i = 0; i < 64; i++)
		nonzero += buf[i] != 0;
	if (len != 64 || nonzero < 8)
		guest_fail("after %s: valid request returned %u bytes, %u non-zero", after, len,
			   nonzero);
}

static void expect_rejected(const char *what, uint16_t head)
{
	uint32_t len;

	post(head);
	len = wait_used(head);
	if (len != 0)
		guest_fail("%s: device wrote %u bytes, expected the chain rejected", what, len);
	if (r8(common + 0x14) & ST_NEEDS_RST)
		guest_fail("%s: device needs reset, expected only the chain rejected", what);
	valid_request(what);
	guest_printf("virtio: rejected: %s; next request served\n", what);
}

static void expect_needs_reset(const char *what)
{
	unsigned i;

	for (i = 0; !(r8(common + 0x14) & ST_NEEDS_RST); i++)
		if (i > 2000000)
			guest_fail("%s: device status 0x%x, expected DEVICE_NEEDS_RESET", what,
				   r8(common + 0x14));
	vio_init(0, QSIZE, true);
	valid_request(what);
	guest_printf("virtio: needs reset: %s; after a reset, served again\n", what);
}

static void setup_msix(void)
{
	lapic_set_base(LAPIC_DEFAULT_BASE);
	lapic_enable();
	idt_set_handler(MSI_VECTOR, msi_isr);
	w32(msix_table + 0, 0xfee00000u | (uint32_t)lapic_id() << 12);
	w32(msix_table + 4, 0);
	w32(msix_table + 8, MSI_VECTOR);
	w32(msix_table + 12, 0); /* unmask */
	for (uint8_t cap = cfg_read8(slot, 0x34); cap; cap = cfg_read8(slot, cap + 1))
		if (cfg_read8(slot, cap) == 0x11)
			cfg_write16(slot, cap + 2, 0x8000); /* MSI-X enable */
}

/* ---- mode=blk: virtio-blk requests on a disk the host checks afterwards ---- */

#define BLK_T_IN     0
#define BLK_T_OUT    1
#define BLK_T_FLUSH  4
#define BLK_T_GET_ID 8
#define BLK_T_DISC   11
#define BLK_T_WZ     13

static struct {
	uint32_t type, reserved;
	uint64_t sector;
} __attribute__((packed)) blk_hdr;
static uint8_t blk_buf[65536] __attribute__((aligned(512)));
static uint8_t blk_status;
static struct {
	uint64_t sector;
	uint32_t count, flags;
} __attribute__((packed)) blk_seg;

static uint8_t pattern(uint64_t sector, unsigned i)
{
	return (uint8_t)(sector * 31 + i * 7 + (i >> 8));
}

/* One request: header, data (len bytes, in two halves when split), status. */
static uint8_t blk_req(uint32_t type, uint64_t sector, void *data, uint32_t len, bool dev_writes,
		       bool split)
{
	uint16_t df = dev_writes ? F_WRITE : 0;
	unsigned n = 0;

	blk_hdr.type = type;
	blk_hdr.reserved = 0;
	blk_hdr.sector = sector;
	blk_status = 0xff;
	set_desc(n, (uint32_t)&blk_hdr, 16, F_NEXT, n + 1);
	n++;
	if (len && split) {
		set_desc(n, (uint32_t)data, len / 2, df | F_NEXT, n + 1);
		n++;
		set_desc(n, (uint32_t)data + len / 2, len - len / 2, df | F_NEXT, n + 1);
		n++;
	} else if (len) {
		set_desc(n, (uint32_t)data, len, df | F_NEXT, n + 1);
		n++;
	}
	set_desc(n, (uint32_t)&blk_status, 1, F_WRITE, 0);
	post(0);
	if (type == BLK_T_OUT && mb_arg_is("drop", "driver-ok")) {
		/* drop=driver-ok: with the first write in flight (the host holds the device's
		 * workers and sees the chain taken), take DRIVER_OK back (status
		 * ACK|DRIVER|FEATURES_OK) when a key comes, and stop: the device must still answer
		 * the chain, or it would count as in flight for good and fail every later pause
		 * of the VM (tests/daemon/e2e.py). */
		guest_printf("virtio: blk request posted, waits for a key\n");
		(void)serial_getc_poll();
		w8(common + 0x14, 0x0b);
		guest_printf("virtio: blk took DRIVER_OK back with a request in flight\n");
		for (;;)
			__asm__ volatile("hlt");
	}
	wait_used(0);
	return blk_status;
}

static void blk_write_range(uint64_t sector, unsigned count)
{
	while (count) {
		unsigned n = count > 128 ? 128 : count, s, i;

		for (s = 0; s < n; s++)
			for (i = 0; i < 512; i++)
				blk_buf[s * 512 + i] = pattern(sector + s, i);
		if (blk_req(BLK_T_OUT, sector, blk_buf, n * 512, false, false) != 0)
			guest_fail("write of %u sectors at %u failed", n, (uint32_t)sector);
		sector += n;
		count -= n;
	}
}

static void blk_check_range(uint64_t sector, unsigned count, bool zeros, bool split)
{
	unsigned s, i;

	memset(blk_buf, 0xee, count * 512);
	if (blk_req(BLK_T_IN, sector, blk_buf, count * 512, true, split) != 0)
		guest_fail("read of %u sectors at %u failed", count, (uint32_t)sector);
	for (s = 0; s < count; s++)
		for (i = 0; i < 512; i++)
			if (blk_buf[s * 512 + i] != (zeros ? 0 : pattern(sector + s, i)))
				guest_fail("sector %u byte %u reads 0x%x", (uint32_t)(sector + s),
					   i, blk_buf[s * 512 + i]);
}

/*
 * Write-zeroes is bounded like reads and writes (issue 9): the device says how many sectors
 * one request may zero and in how many segments (wz_max=, wz_segs= from the host), and when
 * the zeros are written (not a discard) a request one sector longer is refused untouched
 * while one of exactly the bound is served. So a reset or quit never waits on a guest's
 * request to zero gigabytes.
 */
static void blk_zeroes_bound(uint64_t sectors)
{
	uint64_t max = mb_arg_u64("wz_max"), segs = mb_arg_u64("wz_segs"), at = 8192;
	uint8_t st;

	if (r32(devcfg + 0x30) != max || r32(devcfg + 0x34) != segs)
		guest_fail("write-zeroes bound %u sectors in %u segments, expected %u in %u",
			   r32(devcfg + 0x30), r32(devcfg + 0x34), (uint32_t)max, (uint32_t)segs);
	if (at + max + 1 > sectors) {
		guest_printf("virtio: blk write-zeroes bound %u sectors (by discard)\n",
			     (uint32_t)max);
		return;
	}
	blk_write_range(at, 1);
	blk_write_range(at + max, 1);
	blk_seg = (typeof(blk_seg)){at, (uint32_t)max + 1, 0};
	if ((st = blk_req(BLK_T_WZ, 0, &blk_seg, 16, false, false)) != 1)
		guest_fail("write-zeroes of %u sectors gave status %u, expected IOERR",
			   (uint32_t)max + 1, st);
	blk_check_range(at, 1, false, false);
	blk_check_range(at + max, 1, false, false);
	blk_seg = (typeof(blk_seg)){at, (uint32_t)max, 0};
	if ((st = blk_req(BLK_T_WZ, 0, &blk_seg, 16, false, false)) != 0)
		guest_fail("write-zeroes of %u sectors gave status %u", (uint32_t)max, st);
	blk_check_range(at, 1, true, false);
	blk_check_range(at + max - 1, 1, true, false);
	blk_check_range(at + max, 1, false, false);
	guest_printf("virtio: blk write-zeroes bound %u sectors: one more refused, the bound "
		     "served\n",
		     (uint32_t)max);
}

static void blk_test(void)
{
	uint64_t sectors = mb_arg_u64("sectors"), cap;
	const char *serial = mb_arg("serial");
	uint8_t st;

	check_pci(0x10421af4, "blk");
	map_bars();
	if (!devcfg)
		guest_fail("no device configuration capability");
	vio_init((1u << 9) | (1u << 13) | (1u << 14), QSIZE, true);
	cap = (uint64_t)r32(devcfg) | (uint64_t)r32(devcfg + 4) << 32;
	if (cap != sectors)
		guest_fail("capacity %u sectors, expected %u", (uint32_t)cap, (uint32_t)sectors);

	/* wait=key: the host gets ready (tests/daemon/e2e.py holds the device's workers) and
	 * sends a key on the serial port before the first request. */
	if (mb_arg_is("wait", "key")) {
		guest_printf("virtio: blk waits for a key\n");
		(void)serial_getc_poll();
		guest_printf("virtio: blk sends its first request\n");
	}
	memset(blk_buf, 0, 32);
	if (blk_req(BLK_T_GET_ID, 0, blk_buf, 20, true, false) != 0 ||
	    memcmp(blk_buf, serial, strlen(serial)))
		guest_fail("get-id gave '%s', expected '%s'", (char *)blk_buf, serial);

	blk_write_range(0, 8);
	blk_write_range(2040, 16); /* across a 1 MiB block boundary */
	blk_write_range(100000, 1);
	blk_write_range(sectors - 8, 8); /* the last sectors */
	/* A whole 1 MiB block, discarded below: the first 128 sectors' pattern, 16 times. */
	blk_write_range(6144, 128);
	for (unsigned k = 1; k < 16; k++)
		if (blk_req(BLK_T_OUT, 6144 + 128 * k, blk_buf, 128 * 512, false, false) != 0)
			guest_fail("write of 128 sectors at %u failed", 6144 + 128 * k);
	if (blk_req(BLK_T_FLUSH, 0, 0, 0, false, false) != 0)
		guest_fail("flush failed");
	blk_check_range(0, 8, false, false);
	blk_check_range(0, 1, false, true); /* 256-byte buffers: the bounce path */
	blk_check_range(2040, 16, false, true);
	blk_check_range(100000, 1, false, false);
	blk_check_range(sectors - 8, 8, false, false);
	blk_check_range(6144, 128, false, false);
	blk_check_range(50000, 4, true, false); /* never written: zeros */
	guest_printf("virtio: blk writes, flush and reads back ok\n");

	blk_seg = (typeof(blk_seg)){2044, 4, 0};
	if (blk_req(BLK_T_WZ, 0, &blk_seg, 16, false, false) != 0)
		guest_fail("write-zeroes failed");
	blk_check_range(2044, 4, true, false);
	blk_check_range(2048, 8, false, false);
	blk_seg = (typeof(blk_seg)){6144, 2048, 0};
	if (blk_req(BLK_T_DISC, 0, &blk_seg, 16, false, false) != 0)
		guest_fail("discard failed");
	if ((st = blk_req(BLK_T_IN, sectors - 4, blk_buf, 8 * 512, true, false)) != 1)
		guest_fail("a read past the end gave status %u, expected IOERR", st);
	if ((st = blk_req(BLK_T_OUT, 0, blk_buf, 100, false, false)) != 1)
		guest_fail("a write of 100 bytes gave status %u, expected IOERR", st);
	if ((st = blk_req(99, 0, 0, 0, false, false)) != 2)
		guest_fail("request type 99 gave status %u, expected UNSUPP", st);
	if (blk_req(BLK_T_FLUSH, 0, 0, 0, false, false) != 0)
		guest_fail("flush failed");
	guest_printf("virtio: blk write-zeroes, discard, bad requests ok\n");
	blk_zeroes_bound(sectors);
}

/* ---- mode=blkimage: copy an image between disks, or checksum one (tests/daemon/e2e.py) ----
 * count=N sectors (at most IMAGE_MAX), to=SERIAL, from=SERIAL (optional): with from, the
 * first N sectors of the disk whose serial is from are written over the first N of to's, and
 * flushed (the host checks the file); without from, to's first N sectors are read and their
 * CRC-32 (zlib's) printed for the host to compare. */
#define IMAGE_BUF   0x01000000u /* 16 MiB, above the guest's image */
#define IMAGE_MAX   ((32u << 20) / 512)
#define IMAGE_CHUNK 128u

/* zlib's CRC-32, four bytes a step (slicing by 4: this guest's CPU time is dear on a host
 * without VT-x). */
static uint32_t crc32(const uint8_t *p, uint32_t n)
{
	static uint32_t t[4][256];
	uint32_t c;

	if (!t[0][1]) {
		for (uint32_t i = 0; i < 256; i++) {
			c = i;
			for (int k = 0; k < 8; k++)
				c = c & 1 ? c >> 1 ^ 0xedb88320u : c >> 1;
			t[0][i] = c;
		}
		for (uint32_t i = 0; i < 256; i++)
			for (int k = 1; k < 4; k++)
				t[k][i] = t[k - 1][i] >> 8 ^ t[0][t[k - 1][i] & 0xff];
	}
	c = 0xffffffffu;
	for (; n >= 4; n -= 4, p += 4) {
		c ^= (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
		     (uint32_t)p[3] << 24;
		c = t[3][c & 0xff] ^ t[2][c >> 8 & 0xff] ^ t[1][c >> 16 & 0xff] ^ t[0][c >> 24];
	}
	while (n--)
		c = t[0][(c ^ *p++) & 0xff] ^ c >> 8;
	return ~c;
}

/* Make the virtio-blk device whose serial is serial the one the request functions use. The
 * one before is reset and gets its BAR2 back where keel placed it (map_bars moves each to
 * BAR2_ADDR and wants it above 4 GiB), with decoding off. */
static uint32_t bar2_lo, bar2_hi;

static void blk_deselect(void)
{
	w8(common + 0x14, 0);
	cfg_write16(slot, 4, 0);
	cfg_write32(slot, 0x18, bar2_lo);
	cfg_write32(slot, 0x1c, bar2_hi);
}

static void blk_select(const char *serial)
{
	if (slot)
		blk_deselect();
	for (unsigned d = 1; d < 32; d++) {
		if (cfg_read32(d, 0) != 0x10421af4)
			continue;
		slot = d;
		bar2_lo = cfg_read32(d, 0x18);
		bar2_hi = cfg_read32(d, 0x1c);
		common = notify = isr = devcfg = 0;
		map_bars();
		vio_init(1u << 9, QSIZE, true); /* FLUSH */
		memset(blk_buf, 0, 32);
		if (blk_req(BLK_T_GET_ID, 0, blk_buf, 20, true, false) == 0 &&
		    !strncmp((char *)blk_buf, serial, 20))
			return;
		blk_deselect();
	}
	guest_fail("no virtio-blk disk with serial '%s'", serial);
}

static void blk_image_io(uint32_t type, uint32_t count)
{
	uint8_t *img = (uint8_t *)(uintptr_t)IMAGE_BUF;

	for (uint32_t s = 0; s < count; s += IMAGE_CHUNK) {
		uint32_t n = count - s < IMAGE_CHUNK ? count - s : IMAGE_CHUNK;

		if (blk_req(type, s, img + s * 512, n * 512, type == BLK_T_IN, false) != 0)
			guest_fail("%s of %u sectors at %u failed",
				   type == BLK_T_IN ? "read" : "write", n, s);
	}
}

static void blk_image(void)
{
	uint32_t count = (uint32_t)mb_arg_u64("count");
	const char *to = mb_arg("to"), *from = mb_arg("from");

	if (!to || !count || count > IMAGE_MAX || IMAGE_BUF + count * 512 > ram_top)
		guest_fail("blkimage needs to=SERIAL and count=1..%u sectors within RAM",
			   IMAGE_MAX);
	if (from) {
		blk_select(from);
		blk_image_io(BLK_T_IN, count);
		blk_select(to);
		blk_image_io(BLK_T_OUT, count);
		if (blk_req(BLK_T_FLUSH, 0, 0, 0, false, false) != 0)
			guest_fail("flush failed");
		guest_printf("virtio: blkimage copied %u sectors from %s to %s\n", count, from, to);
		return;
	}
	blk_select(to);
	/* A mark in every sector, which the reads must overwrite (a whole memset of the buffer
	 * costs this guest seconds of CPU on a host without VT-x). */
	for (uint32_t s = 0; s < count; s++)
		*(volatile uint32_t *)(uintptr_t)(IMAGE_BUF + s * 512) = 0xeeeeeeeeu;
	blk_image_io(BLK_T_IN, count);
	guest_printf("virtio: blkimage read %u sectors of %s: crc32 0x%08x\n", count, to,
		     crc32((const uint8_t *)(uintptr_t)IMAGE_BUF, count * 512));
}

/* ---- mode=blkmq: many requests in flight on two queues of a multi-queue virtio-blk ---- */

/* Request i of queue q: 8 sectors at MQ_BASE + (q * QSIZE + i) * 8, through an indirect
 * table (header, data, status), so that QSIZE requests fill each queue at once. The first
 * request crosses a 1 MiB boundary (two extents of a VHDX with 1 MiB blocks). */
#define MQ_BASE	   2044u
#define MQ_SECTORS 8u
#define MQ_LEN	   (MQ_SECTORS * 512)

static struct rings ring2;
static struct desc mq_itab[2][QSIZE][3] __attribute__((aligned(16)));
static struct {
	uint32_t type, reserved;
	uint64_t sector;
} __attribute__((packed)) mq_hdr[2][QSIZE];
static uint8_t mq_st[2][QSIZE];
static uint8_t mq_buf[2][QSIZE][MQ_LEN + 512] __attribute__((aligned(4096)));
static uint16_t mq_used[2];
/* slow=N: wait N times longer for completions (a disk the host limits with storage QoS
 * takes seconds per round on purpose). */
static uint64_t mq_patience = 1;

static struct rings *mq_ring(unsigned q)
{
	return q ? &ring2 : &ring;
}

static uint64_t mq_sector(unsigned q, unsigned i)
{
	return MQ_BASE + (q * QSIZE + i) * MQ_SECTORS;
}

/* Buffers that start 8 bytes into a sector: the device must bounce them for O_DIRECT. */
static uint8_t *mq_data(unsigned q, unsigned i, unsigned unaligned_every)
{
	return mq_buf[q][i] + (i % unaligned_every == unaligned_every - 1 ? 8 : 0);
}

static void mq_post(unsigned q, unsigned i, uint32_t type, uint64_t sector, void *data,
		    uint32_t len, bool dev_writes)
{
	struct rings *r = mq_ring(q);
	struct desc *t = mq_itab[q][i];
	unsigned n = 0;

	mq_hdr[q][i].type = type;
	mq_hdr[q][i].reserved = 0;
	mq_hdr[q][i].sector = sector;
	mq_st[q][i] = 0xff;
	t[n] = (struct desc){(uint32_t)&mq_hdr[q][i], 16, F_NEXT, n + 1};
	n++;
	if (len) {
		t[n] = (struct desc){(uint32_t)data, len, (dev_writes ? F_WRITE : 0) | F_NEXT,
				     n + 1};
		n++;
	}
	t[n++] = (struct desc){(uint32_t)&mq_st[q][i], 1, F_WRITE, 0};
	r->desc[i] = (struct desc){(uint32_t)t, n * 16, F_INDIRECT, 0};
	r->avail_ring[r->avail_idx % QSIZE] = (uint16_t)i;
	barrier();
	r->avail_idx++;
}

static void mq_kick(unsigned q)
{
	w16(common + 0x16, (uint16_t)q);
	barrier();
	w16(notify + r16(common + 0x1e) * notify_mult, (uint16_t)q);
}

/* Wait until n more requests of queue q completed, each with status 0 and len bytes used. */
static void mq_wait(unsigned q, unsigned n, uint32_t len, const char *what)
{
	struct rings *r = mq_ring(q);
	uint16_t want = (uint16_t)(mq_used[q] + n);

	for (uint64_t k = 0; *(volatile uint16_t *)&r->used_idx != want; k++) {
		if (k > 50000000ull * mq_patience)
			guest_fail("%s: queue %u completed %u of %u requests", what, q,
				   (uint16_t)(r->used_idx - mq_used[q]), n);
		cpu_pause();
	}
	barrier();
	for (; mq_used[q] != want; mq_used[q]++) {
		uint32_t id = r->used_ring[mq_used[q] % QSIZE].id;

		if (id >= QSIZE || mq_st[q][id] != 0 || r->used_ring[mq_used[q] % QSIZE].len != len)
			guest_fail("%s: queue %u request %u: status %u, %u bytes used", what, q, id,
				   id < QSIZE ? mq_st[q][id] : 0xff,
				   r->used_ring[mq_used[q] % QSIZE].len);
	}
}

/* Every request of both queues at once; one interrupt per queue asked for (event index). */
static void mq_round(uint32_t type, unsigned unaligned_every, const char *what)
{
	bool rd = type == BLK_T_IN;
	unsigned q, i, s, b;

	for (q = 0; q < 2; q++) {
		mq_ring(q)->used_event = (uint16_t)(mq_used[q] + QSIZE - 1);
		for (i = 0; i < QSIZE; i++) {
			uint8_t *d = mq_data(q, i, unaligned_every);

			for (s = 0; s < MQ_SECTORS; s++)
				for (b = 0; b < 512; b++)
					d[s * 512 + b] =
						rd ? 0xee : pattern(mq_sector(q, i) + s, b);
			mq_post(q, i, type, mq_sector(q, i), d, MQ_LEN, rd);
		}
	}
	mq_kick(0);
	mq_kick(1);
	for (q = 0; q < 2; q++)
		mq_wait(q, QSIZE, rd ? MQ_LEN + 1 : 1, what);
	for (q = 0; rd && q < 2; q++)
		for (i = 0; i < QSIZE; i++)
			for (s = 0; s < MQ_SECTORS; s++)
				for (b = 0; b < 512; b++)
					if (mq_data(q, i, unaligned_every)[s * 512 + b] !=
					    pattern(mq_sector(q, i) + s, b))
						guest_fail("%s: queue %u request %u sector %u "
							   "byte %u differs",
							   what, q, i,
							   (uint32_t)mq_sector(q, i) + s, b);
}

/* One request alone on queue q. */
static void mq_one(unsigned q, uint32_t type, void *data, uint32_t len, uint32_t used,
		   const char *what)
{
	mq_ring(q)->used_event = mq_used[q];
	mq_post(q, 0, type, 0, data, len, type == BLK_T_IN);
	mq_kick(q);
	mq_wait(q, 1, used, what);
}

static void msi1_isr(struct isr_frame *f)
{
	msi1_count++;
	lapic_eoi();
}

/* Interrupts each queue took besides one per round (irqwin: one more). */
static uint32_t mq_msi_extra;

/* irqwin=TICKS: a request notified between a wait's check and its halt, whose interrupt
 * therefore comes there (as on a busy host that preempts the vCPU between the two), then
 * TICKS of the TSC for it to arrive before the halt (run-guest.py's
 * virtio-blk-mq-irq-window). */
static uint64_t mq_irq_window;
static unsigned mq_window_q;

static void mq_window(void)
{
	mq_kick(mq_window_q);
	for (uint64_t t = rdtsc(); rdtsc() - t < mq_irq_window;)
		cpu_pause();
}

/* Interrupts are on while requests run: every MSI-X message is counted. */
static void mq_wait_msi(uint32_t want, const char *what)
{
	want += mq_msi_extra;
	msi_wait(want, want);
	irq_enable();
	if (msi_count != want || msi1_count != want)
		guest_fail("%s: %u and %u MSI-X interrupts on queues 0 and 1, expected %u each "
			   "(event index)",
			   what, msi_count, msi1_count, want);
}

static void blkmq_test(void)
{
	uint32_t queues = (uint32_t)mb_arg_u64("queues"), nq;
	uint32_t rounds = mb_arg("rounds") ? (uint32_t)mb_arg_u64("rounds") : 1;

	if (mb_arg("slow") && mb_arg_u64("slow"))
		mq_patience = mb_arg_u64("slow");
	check_pci(0x10421af4, "blk");
	map_bars();
	setup_msix();
	/* FLUSH, MQ, DISCARD, WRITE_ZEROES, INDIRECT_DESC, EVENT_IDX */
	vio_init(1u << 9 | 1u << 12 | 1u << 13 | 1u << 14 | 1u << 28 | 1u << 29, QSIZE, false);
	nq = r16(devcfg + 0x22);
	if (nq != queues || nq < 2)
		guest_fail("num_queues %u, expected %u (at least 2)", nq, queues);
	if (r32(devcfg + 0x0c) != 254 || r32(devcfg + 0x08) < 4096 || r32(devcfg + 0x28) != 32 ||
	    (uint64_t)r32(devcfg + 0x0c) * r32(devcfg + 0x08) > (32u << 20))
		guest_fail("seg_max %u, size_max %u, max_discard_seg %u", r32(devcfg + 0x0c),
			   r32(devcfg + 0x08), r32(devcfg + 0x28));
	memset(&ring2, 0, sizeof(ring2));
	queue_setup(1, &ring2, QSIZE, 1); /* MSI-X entry 1 */
	if (r16(common + 0x1c) != 1)
		guest_fail("queue 1 did not enable");
	idt_set_handler(MSI_VECTOR + 1, msi1_isr);
	w32(msix_table + 16, 0xfee00000u | (uint32_t)lapic_id() << 12);
	w32(msix_table + 20, 0);
	w32(msix_table + 24, MSI_VECTOR + 1);
	w32(msix_table + 28, 0); /* unmask */
	w8(common + 0x14, ST_ACK | ST_DRIVER | ST_FEAT_OK | ST_DRIVER_OK);
	irq_enable();

	/* One request on each queue first: the first completion always interrupts. */
	mq_one(0, BLK_T_FLUSH, 0, 0, 1, "first flush");
	mq_one(1, BLK_T_FLUSH, 0, 0, 1, "first flush");
	mq_wait_msi(1, "first flush");
	/* irqwin: a flush on each queue waited for by its interrupt alone, notified after the
	 * wait's check and irqwin ticks before its halt: the interrupt must wake the halt. */
	mq_irq_window = mb_arg("irqwin") ? mb_arg_u64("irqwin") : 0;
	for (uint32_t q = 0; mq_irq_window && q < 2; q++) {
		mq_ring(q)->used_event = mq_used[q];
		mq_post(q, 0, BLK_T_FLUSH, 0, 0, 0, false);
		mq_window_q = q;
		msi_between = mq_window;
		msi_wait(2, 1 + q);
		irq_enable();
		if (msi_count != 2 || msi1_count != 1 + q)
			guest_fail(
				"flush on queue %u: %u and %u MSI-X interrupts, expected %u and %u",
				q, msi_count, msi1_count, 2, 1 + q);
		mq_wait(q, 1, 1, "flush waited for by its interrupt");
	}
	if (mq_irq_window)
		guest_printf("virtio-blkmq: interrupts %llu TSC ticks before the halt woke it\n",
			     (unsigned long long)mq_irq_window);
	mq_msi_extra = mq_irq_window ? 1 : 0;
	/* rounds=N: the whole cycle N times (run-state.py pauses the VM meanwhile). */
	for (uint32_t k = 0; k < rounds; k++) {
		mq_round(BLK_T_OUT, 4, "writes");
		mq_wait_msi(2 + 3 * k, "writes");
		mq_round(BLK_T_OUT, 3, "rewrites");
		mq_wait_msi(3 + 3 * k, "rewrites");
		mq_round(BLK_T_IN, 5, "reads");
		mq_wait_msi(4 + 3 * k, "reads");
	}
	guest_printf("virtio-blkmq: %u queues, %u requests in flight at once, written, rewritten "
		     "and read back, one interrupt per queue and round\n",
		     nq, 2 * QSIZE);

	mq_one(1, BLK_T_FLUSH, 0, 0, 1, "flush");
	/* Write-zeroes over request 5 of queue 0, discard over request 6 of queue 1. */
	blk_seg = (typeof(blk_seg)){mq_sector(0, 5), MQ_SECTORS, 0};
	mq_one(0, BLK_T_WZ, &blk_seg, 16, 1, "write-zeroes");
	memset(mq_buf[0][0], 0xee, MQ_LEN);
	mq_ring(0)->used_event = mq_used[0];
	mq_post(0, 0, BLK_T_IN, mq_sector(0, 5), mq_buf[0][0] + 8, MQ_LEN, true);
	mq_kick(0);
	mq_wait(0, 1, MQ_LEN + 1, "read after write-zeroes");
	for (unsigned b = 0; b < MQ_LEN; b++)
		if (mq_buf[0][0][8 + b])
			guest_fail("byte %u after write-zeroes reads 0x%x", b, mq_buf[0][0][8 + b]);
	blk_seg = (typeof(blk_seg)){mq_sector(1, 6), MQ_SECTORS, 0};
	mq_one(1, BLK_T_DISC, &blk_seg, 16, 1, "discard");
	mq_one(0, BLK_T_FLUSH, 0, 0, 1, "flush");
	guest_printf("virtio-blkmq: flush, write-zeroes, discard ok\n");
	/* resetflight: the driver resets the device right after a full round of reads on both
	 * queues; the reset, on this vCPU's thread, waits for the requests in flight (jailed:
	 * in io_uring_enter under the vCPU thread's filter). Reads leave the disk as it is. */
	if (mb_arg("resetflight")) {
		for (unsigned q = 0; q < 2; q++) {
			mq_ring(q)->used_event = (uint16_t)(mq_used[q] + QSIZE - 1);
			for (unsigned i = 0; i < QSIZE; i++)
				mq_post(q, i, BLK_T_IN, mq_sector(q, i), mq_data(q, i, 5), MQ_LEN,
					true);
		}
		mq_kick(0);
		mq_kick(1);
		w8(common + 0x14, 0);
		for (unsigned i = 0; r8(common + 0x14) != 0; i++)
			if (i > 1000000)
				guest_fail("device status did not read 0 after the reset");
		guest_printf("virtio-blkmq: reset with %u reads in flight\n", 2 * QSIZE);
	}
}

/* ---- mode=state: requests on either side of a save and restore (run-state.py) ---- */

/* One request at a time with event index negotiated, each completed and interrupted on
 * MSI-X vector 0; about 20 ms apart so the host can save in between. After a restore the
 * same loop carries on: the queue, its ring positions, the BAR moved to BAR2_ADDR, the
 * MSI-X table and the notification path must all have come back. */
static void state_test(void)
{
	uint32_t total = mb_arg("requests") ? (uint32_t)mb_arg_u64("requests") : 40;
	uint32_t n, seen;
	uint64_t t;

	check_pci(0x10441af4, "rng");
	map_bars();
	setup_msix();
	vio_init(1u << 29, QSIZE, true); /* VIRTIO_F_EVENT_IDX */
	guest_printf("virtio-state: ready, %u requests\n", total);
	for (n = 1; n <= total; n++) {
		seen = msi_count;
		ring.used_event = last_used; /* interrupt me for the next used entry */
		valid_request("a save and restore");
		msi_wait(seen + 1, 0);
		if (msi_count == seen)
			guest_fail("request %u: served but no MSI-X interrupt", n);
		if (r8(common + 0x14) != (ST_ACK | ST_DRIVER | ST_FEAT_OK | ST_DRIVER_OK))
			guest_fail("request %u: device status 0x%x", n, r8(common + 0x14));
		guest_printf("virtio-state: request %u served, used %u\n", n, last_used);
		for (t = rdtsc(); rdtsc() - t < 50000000ull;)
			cpu_pause();
	}
}

/* ---- mode=net: multi-queue virtio-net on two socket pairs that the host side echoes
 * (run-guest.py): MQ negotiated, pairs set with the control queue, frames out and back on
 * both pairs, hostile control commands refused, a pair the driver disabled ---- */

#define NET_PAIRS     2
#define NET_NQ	      (2 * NET_PAIRS + 1)
#define NET_CTRL_Q    (2 * NET_PAIRS)
#define NET_HDR	      12
#define NET_BUF	      2048
#define NET_F_CTRL_VQ 17
#define NET_F_MQ      22

static struct rings net_ring[NET_NQ];
static uint16_t net_used[NET_NQ];
static uint8_t net_buf[NET_NQ][QSIZE][NET_BUF] __attribute__((aligned(16)));

static void net_kick(unsigned q)
{
	uint16_t off;

	w16(common + 0x16, (uint16_t)q);
	off = r16(common + 0x1e);
	barrier();
	w16(notify + off * notify_mult, (uint16_t)q);
}

/* Post descriptor head (set up by the caller) on queue q and notify. */
static void net_post(unsigned q, uint16_t head)
{
	struct rings *r = &net_ring[q];

	r->avail_ring[r->avail_idx % QSIZE] = head;
	barrier();
	r->avail_idx++;
	net_kick(q);
}

/* The next used entry of queue q: its head (in *head) and length; fails after a while. */
static uint32_t net_wait(unsigned q, uint16_t *head, const char *what)
{
	struct rings *r = &net_ring[q];
	uint32_t i;

	for (i = 0; *(volatile uint16_t *)&r->used_idx == net_used[q]; i++) {
		if (i > 2000000)
			guest_fail("net: %s: nothing on queue %u (device status 0x%x, avail %u, "
				   "used %u)",
				   what, q, r8(common + 0x14), r->avail_idx, r->used_idx);
		cpu_pause();
	}
	barrier();
	*head = (uint16_t)r->used_ring[net_used[q] % QSIZE].id;
	return r->used_ring[net_used[q]++ % QSIZE].len;
}

/* Nothing more on queue q for a while (a frame that must not arrive there). */
static void net_quiet(unsigned q, const char *what)
{
	for (uint64_t t = rdtsc(); rdtsc() - t < 200000000ull;)
		if (*(volatile uint16_t *)&net_ring[q].used_idx != net_used[q])
			guest_fail("net: %s: a used entry on queue %u", what, q);
}

/* A receive buffer in slot i of receive queue q. */
static void net_rx_post(unsigned q, unsigned i)
{
	net_ring[q].desc[i] = (struct desc){(uint32_t)net_buf[q][i], NET_BUF, F_WRITE, 0};
	net_post(q, (uint16_t)i);
}

/* A frame of len bytes (after a zero header) out on pair p's transmit queue, whose bytes
 * start at seed; it comes back (the host echoes it on the queue it left by) on receive
 * queue rxq, whole. */
static void net_echo(unsigned p, unsigned len, uint8_t seed, unsigned rxq, const char *what)
{
	unsigned tq = 2 * p + 1, i;
	uint8_t *f = net_buf[tq][0];
	uint16_t head;
	uint32_t got;

	memset(f, 0, NET_HDR);
	for (i = 0; i < len; i++)
		f[NET_HDR + i] = (uint8_t)(seed + i * 3);
	memset(f + NET_HDR, 0xff, 6); /* broadcast */
	net_ring[tq].desc[0] = (struct desc){(uint32_t)f, NET_HDR + len, 0, 0};
	net_post(tq, 0);
	if (net_wait(tq, &head, what) != 0 || head != 0)
		guest_fail("net: %s: transmit chain returned with bytes or as head %u", what, head);
	got = net_wait(rxq, &head, what);
	if (got != NET_HDR + len || head >= QSIZE)
		guest_fail("net: %s: received %u bytes in head %u, expected %u", what, got, head,
			   NET_HDR + len);
	for (i = 6; i < len; i++)
		if (net_buf[rxq][head][NET_HDR + i] != (uint8_t)(seed + i * 3))
			guest_fail("net: %s: byte %u of the echoed frame differs", what, i);
	net_rx_post(rxq, head);
	guest_printf("net: %s: %u bytes out on pair %u, back on queue %u\n", what, len, p, rxq);
}

/* A control command: len bytes readable, then ack_len writable bytes (0: none). Returns the
 * ack, or -1 when the chain came back with 0 bytes. */
static int net_ctrl(const uint8_t *cmd, uint32_t len, uint32_t ack_len, const char *what)
{
	struct rings *r = &net_ring[NET_CTRL_Q];
	uint8_t *c = net_buf[NET_CTRL_Q][0], *ack = net_buf[NET_CTRL_Q][1];
	uint16_t head;
	uint32_t got;

	memcpy(c, cmd, len);
	*ack = 0xee;
	r->desc[0] = (struct desc){(uint32_t)c, len, ack_len ? F_NEXT : 0, 1};
	r->desc[1] = (struct desc){(uint32_t)ack, ack_len, F_WRITE, 0};
	net_post(NET_CTRL_Q, len ? 0 : 1);
	got = net_wait(NET_CTRL_Q, &head, what);
	if (r8(common + 0x14) & ST_NEEDS_RST)
		guest_fail("net: %s: the device needs a reset", what);
	if (got == 0)
		return -1;
	if (got != 1)
		guest_fail("net: %s: control chain returned with %u bytes", what, got);
	return *ack;
}

static int net_pairs_set(uint16_t pairs, uint32_t len, const char *what)
{
	uint8_t cmd[6] = {4, 0, (uint8_t)pairs, (uint8_t)(pairs >> 8), 0, 0};

	return net_ctrl(cmd, len, 1, what);
}

static void net_expect(int got, int want, const char *what)
{
	if (got != want)
		guest_fail("net: %s: ack %d, expected %d", what, got, want);
	guest_printf("net: %s: ack %d\n", what, got);
}

static void net_test(void)
{
	static const uint8_t rx_promisc[3] = {0, 0, 1}, mq_other[4] = {4, 1, 2, 0};
	uint32_t dev_lo, want = 1u << NET_F_CTRL_VQ | 1u << NET_F_MQ;
	unsigned q, i;

	check_pci(0x10411af4, "virtio-net");
	map_bars();
	w8(common + 0x14, 0);
	w8(common + 0x14, ST_ACK | ST_DRIVER);
	w32(common + 0x00, 0);
	dev_lo = r32(common + 0x04);
	if ((dev_lo & want) != want)
		guest_fail("net: device features 0x%08x lack CTRL_VQ or MQ", dev_lo);
	if (!devcfg || r16(devcfg + 8) != NET_PAIRS)
		guest_fail("net: max_virtqueue_pairs %u, expected %u", devcfg ? r16(devcfg + 8) : 0,
			   NET_PAIRS);
	if (r16(common + 0x12) != NET_NQ)
		guest_fail("net: num_queues %u, expected %u", r16(common + 0x12), NET_NQ);
	w32(common + 0x08, 0);
	w32(common + 0x0c, want);
	w32(common + 0x08, 1);
	w32(common + 0x0c, 1); /* VERSION_1 */
	w8(common + 0x14, ST_ACK | ST_DRIVER | ST_FEAT_OK);
	if (!(r8(common + 0x14) & ST_FEAT_OK))
		guest_fail("net: FEATURES_OK not accepted");
	for (q = 0; q < NET_NQ; q++)
		queue_setup((uint16_t)q, &net_ring[q], QSIZE, 0xffff);
	w8(common + 0x14, ST_ACK | ST_DRIVER | ST_FEAT_OK | ST_DRIVER_OK);
	guest_printf("net: MQ and CTRL_VQ negotiated, %u queues, max_virtqueue_pairs %u\n", NET_NQ,
		     NET_PAIRS);
	for (q = 0; q < NET_NQ - 1; q += 2)
		for (i = 0; i < 4; i++)
			net_rx_post(q, i);

	/* One pair after DRIVER_OK: pair 1's frames leave through pair 0's queue and come back
	 * there; nothing arrives on pair 1. */
	net_echo(1, 100, 1, 0, "pair 1 not enabled");
	net_quiet(2, "pair 1 not enabled");
	net_expect(net_pairs_set(2, 4, "VQ_PAIRS_SET 2"), 0, "VQ_PAIRS_SET 2");
	net_echo(0, 200, 2, 0, "two pairs, pair 0");
	net_echo(1, 300, 3, 2, "two pairs, pair 1");

	/* Hostile commands: refused, nothing changes. */
	net_expect(net_pairs_set(0, 4, "pairs 0"), 1, "VQ_PAIRS_SET 0");
	net_expect(net_pairs_set(3, 4, "pairs 3"), 1, "VQ_PAIRS_SET 3");
	net_expect(net_pairs_set(0xffff, 4, "pairs 65535"), 1, "VQ_PAIRS_SET 65535");
	net_expect(net_pairs_set(1, 3, "short"), 1, "VQ_PAIRS_SET with 1 byte of data");
	net_expect(net_pairs_set(1, 6, "long"), 1, "VQ_PAIRS_SET with 4 bytes of data");
	net_expect(net_pairs_set(1, 1, "no command"), 1, "a class byte alone");
	net_expect(net_ctrl(rx_promisc, 3, 1, "CTRL_RX"), 1, "CTRL_RX PROMISC (not offered)");
	net_expect(net_ctrl(mq_other, 4, 1, "MQ command 1"), 1, "MQ command 1 (not offered)");
	net_expect(net_ctrl(mq_other, 0, 1, "nothing readable"), 1, "no readable bytes");
	net_expect(net_ctrl(mq_other, 4, 0, "no ack byte"), -1, "no ack byte (0 bytes back)");
	net_echo(1, 400, 4, 2, "after the refused commands, pair 1");

	/* Back to one pair, and to two again. */
	net_expect(net_pairs_set(1, 4, "VQ_PAIRS_SET 1"), 0, "VQ_PAIRS_SET 1");
	net_echo(1, 500, 5, 0, "one pair again, pair 1's chain");
	net_quiet(2, "one pair again");
	net_expect(net_pairs_set(2, 4, "VQ_PAIRS_SET 2 again"), 0, "VQ_PAIRS_SET 2 again");
	net_echo(1, 600, 6, 2, "two pairs again, pair 1");
	if (r8(common + 0x14) != (ST_ACK | ST_DRIVER | ST_FEAT_OK | ST_DRIVER_OK))
		guest_fail("net: device status 0x%x at the end", r8(common + 0x14));
	guest_printf("net: PASS\n");
}

/* ---- mode=scsi: reads on a virtio-scsi disk, a ring's worth in flight (run-state.py's
 * state-scsi-qos: the host limits the LUN with storage QoS) ---- */

#define SCSI_CMD_LEN  (19 + 32) /* lun[8], id, task_attr, prio, crn, then the CDB */
#define SCSI_RESP_LEN (12 + 96) /* sense_len, resid, status_qualifier, status, response */
#define SCSI_DATA_LEN 4096u

static struct {
	uint8_t cmd[SCSI_CMD_LEN];
	uint8_t resp[SCSI_RESP_LEN];
	uint8_t data[SCSI_DATA_LEN];
} scsi_io[QSIZE] __attribute__((aligned(16)));

/* Request i: READ(10) of SCSI_DATA_LEN bytes at block lba of LUN 0, through an indirect
 * table (command, response, data) on the request queue (2, on ring2). */
static void scsi_post(unsigned i, uint32_t lba)
{
	struct desc *t = mq_itab[1][i];
	uint8_t *c = scsi_io[i].cmd;

	memset(c, 0, SCSI_CMD_LEN);
	c[0] = 1;    /* target 0 */
	c[2] = 0x40; /* LUN 0, flat addressing */
	c[19] = 0x28;
	c[19 + 2] = (uint8_t)(lba >> 24);
	c[19 + 3] = (uint8_t)(lba >> 16);
	c[19 + 4] = (uint8_t)(lba >> 8);
	c[19 + 5] = (uint8_t)lba;
	c[19 + 8] = SCSI_DATA_LEN / 512;
	scsi_io[i].resp[10] = scsi_io[i].resp[11] = 0xff;
	t[0] = (struct desc){(uint32_t)c, SCSI_CMD_LEN, F_NEXT, 1};
	t[1] = (struct desc){(uint32_t)scsi_io[i].resp, SCSI_RESP_LEN, F_WRITE | F_NEXT, 2};
	t[2] = (struct desc){(uint32_t)scsi_io[i].data, SCSI_DATA_LEN, F_WRITE, 0};
	ring2.desc[i] = (struct desc){(uint32_t)t, 3 * 16, F_INDIRECT, 0};
	ring2.avail_ring[ring2.avail_idx % QSIZE] = (uint16_t)i;
	barrier();
	ring2.avail_idx++;
}

/* requests=N reads (200), QSIZE in flight: each answered OK with GOOD status, and replaced
 * by the next; slow=N waits N times longer for each. */
static void scsi_test(void)
{
	uint32_t total = mb_arg("requests") ? (uint32_t)mb_arg_u64("requests") : 200;
	uint32_t posted = 0, done = 0;

	if (mb_arg("slow"))
		mq_patience = mb_arg_u64("slow");
	check_pci(0x10481af4, "virtio-scsi");
	map_bars();
	setup_msix();
	vio_init(1u << 28, QSIZE, false); /* INDIRECT_DESC; queue 0 is the control queue */
	memset(&ring2, 0, sizeof(ring2));
	queue_setup(2, &ring2, QSIZE, 0);
	w8(common + 0x14, ST_ACK | ST_DRIVER | ST_FEAT_OK | ST_DRIVER_OK);
	guest_printf("virtio-scsi: ready, %u reads\n", total);
	for (unsigned i = 0; i < QSIZE && posted < total; i++, posted++)
		scsi_post(i, posted * (SCSI_DATA_LEN / 512) % 2048);
	mq_kick(2);
	while (done < total) {
		uint32_t id;

		for (uint64_t k = 0; *(volatile uint16_t *)&ring2.used_idx == mq_used[1]; k++) {
			if (k > 50000000ull * mq_patience)
				guest_fail("virtio-scsi: %u of %u reads answered", done, total);
			cpu_pause();
		}
		barrier();
		id = ring2.used_ring[mq_used[1] % QSIZE].id;
		mq_used[1]++;
		if (id >= QSIZE || scsi_io[id].resp[11] != 0 || scsi_io[id].resp[10] != 0)
			guest_fail("virtio-scsi: read %u: response %u, status %u", id,
				   id < QSIZE ? scsi_io[id].resp[11] : 0xff,
				   id < QSIZE ? scsi_io[id].resp[10] : 0xff);
		if (++done % 50 == 0)
			guest_printf("virtio-scsi: %u reads answered\n", done);
		if (posted < total) {
			scsi_post(id, posted++ * (SCSI_DATA_LEN / 512) % 2048);
			mq_kick(2);
		}
	}
	guest_printf("virtio-scsi: %u reads ok\n", total);
}

/* ---- mode=crash: a triple fault with a live device: keel-vmm's crash report shows the
 * device's queues and MSI-X state (run-guest.py checks them) ---- */

/* Set up the rng with MSI-X and one queue, and have one valid request served with an
 * interrupt (what; every mode but blk and state starts so). */
static void first_request(const char *what)
{
	check_pci(0x10441af4, "rng");
	map_bars();
	setup_msix();
	vio_init(0, QSIZE, true);
	irq_enable();
	valid_request(what);
	msi_wait(1, 0);
	if (!msi_count)
		guest_fail("no MSI-X interrupt for a completed request");
}

static void crash_test(void)
{
	struct {
		uint16_t limit;
		uint32_t base;
	} __attribute__((packed)) empty = {0, 0};

	first_request("before the crash");
	guest_printf("virtio-crash: one request served; triple fault now\n");
	__asm__ volatile("lidt %0; ud2" : : "m"(empty));
	guest_fail("still running after ud2 with an empty IDT");
}

void guest_main(void)
{
	ram_top = 0x100000 + mb.mem_upper * 1024;
	if (mb_arg_is("mode", "blk")) {
		blk_test();
		return;
	}
	if (mb_arg_is("mode", "blkimage")) {
		blk_image();
		return;
	}
	if (mb_arg_is("mode", "blkmq")) {
		blkmq_test();
		return;
	}
	if (mb_arg_is("mode", "state")) {
		state_test();
		return;
	}
	if (mb_arg_is("mode", "net")) {
		net_test();
		return;
	}
	if (mb_arg_is("mode", "crash")) {
		crash_test();
		return;
	}
	if (mb_arg_is("mode", "scsi")) {
		scsi_test();
		return;
	}
	first_request("setup");
	guest_printf("virtio: valid request served, %u MSI-X interrupt(s) on vector 0x%x\n",
		     msi_count, MSI_VECTOR);

	/* Chains the walker must reject. */
	set_desc(1, (uint32_t)buf, 16, F_WRITE | F_NEXT, 2);
	set_desc(2, (uint32_t)buf + 16, 16, F_WRITE | F_NEXT, 1);
	expect_rejected("a descriptor loop", 1);
	set_desc(1, (uint32_t)buf, 16, F_WRITE | F_NEXT, QSIZE + 3);
	expect_rejected("next index out of range", 1);
	set_desc(1, ram_top - 8, 4096, F_WRITE, 0);
	expect_rejected("a buffer past the end of RAM", 1);
	set_desc(1, 0xc0000000u, 64, F_WRITE, 0);
	expect_rejected("a buffer in the MMIO hole", 1);
	set_desc(1, 0xfffffff0u, 0x20, F_WRITE, 0);
	expect_rejected("a buffer wrapping at 4 GiB", 1);
	set_desc(1, (uint32_t)buf, 16, F_WRITE | F_NEXT, 2);
	set_desc(2, (uint32_t)buf2, 16, 0, 0);
	expect_rejected("a readable buffer after a writable one", 1);
	itable[0] = (struct desc){(uint32_t)buf, 64, F_WRITE, 0};
	set_desc(1, (uint32_t)itable, 16, F_INDIRECT, 0);
	expect_rejected("indirect without VIRTIO_F_INDIRECT_DESC", 1);

	/* With indirect descriptors negotiated. */
	vio_init(1u << 28, QSIZE, true);
	memset(buf, 0, 64);
	itable[0] = (struct desc){(uint32_t)buf, 32, F_WRITE | F_NEXT, 1};
	itable[1] = (struct desc){(uint32_t)buf + 32, 32, F_WRITE, 0};
	set_desc(1, (uint32_t)itable, 32, F_INDIRECT, 0);
	post(1);
	if (wait_used(1) != 64)
		guest_fail("a valid indirect chain was not served in full");
	guest_printf("virtio: valid indirect chain served\n");
	itable2[0] = (struct desc){(uint32_t)buf, 64, F_WRITE, 0};
	itable[0] = (struct desc){(uint32_t)itable2, 16, F_INDIRECT, 0};
	set_desc(1, (uint32_t)itable, 16, F_INDIRECT, 0);
	expect_rejected("nested indirect tables", 1);
	itable[0] = (struct desc){(uint32_t)buf, 64, F_WRITE, 0};
	set_desc(1, (uint32_t)itable, 16, F_INDIRECT | F_NEXT, 2);
	set_desc(2, (uint32_t)buf2, 16, F_WRITE, 0);
	expect_rejected("indirect with NEXT", 1);
	set_desc(1, (uint32_t)itable, 24, F_INDIRECT, 0);
	expect_rejected("an indirect table of 1.5 descriptors", 1);
	itable[0] = (struct desc){(uint32_t)buf, 16, F_WRITE | F_NEXT, 0};
	set_desc(1, (uint32_t)itable, 16, F_INDIRECT, 0);
	expect_rejected("a loop inside an indirect table", 1);

	/* Ring-level faults: the device needs a reset. */
	vio_init(0, 100, false);
	expect_needs_reset("a queue size of 100 (not a power of two)");
	ring.avail_idx = (uint16_t)(ring.avail_idx + QSIZE + 5);
	kick();
	expect_needs_reset("an avail index ahead by more than the queue size");
	ring.avail_ring[ring.avail_idx % QSIZE] = QSIZE + 1;
	ring.avail_idx++;
	kick();
	expect_needs_reset("a head index out of range");
	guest_printf("virtio: keel-vmm served every valid request after %u malformed ones\n", 14);
}
