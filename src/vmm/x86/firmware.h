/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Firmware images (docs/devices.md, docs/keel-vmm.md): SeaBIOS (Generation 1) or OVMF's code
 * (Generation 2), Debian's files unmodified, mapped read-only so that they end at 4 GiB,
 * where the CPU fetches its first instruction after reset (0xFFFFFFF0). SeaBIOS's last
 * 128 KiB are also the BIOS segment below 1 MiB (0xE0000-0xFFFFF): keel copies them into
 * guest RAM there at every boot, which is where SeaBIOS's own shadowing (the PAM registers)
 * would put them, so RAM always backs that segment. The image's size must be a multiple of
 * 4 KiB, from 128 KiB to 16 MiB.
 */
#ifndef KEEL_VMM_X86_FIRMWARE_H
#define KEEL_VMM_X86_FIRMWARE_H

#include <stddef.h>
#include <stdint.h>

#include "config/vmdef.h"

#define FIRMWARE_MIN_SIZE     (128u << 10)
#define FIRMWARE_MAX_SIZE     (16u << 20)
#define FIRMWARE_BIOS_SEGMENT 0xe0000ull /* SeaBIOS's low copy: its last 128 KiB */
#define FIRMWARE_TOP	      (4ull << 30)

struct guest_mem;

struct firmware {
	enum vm_firmware kind; /* VM_FIRMWARE_NONE: no image */
	const uint8_t *image;  /* the file, mapped read-only */
	size_t size;
};

/* Open and map def's firmware file (nothing for direct boot), or use passed_fd when it is
 * not -1 (keeld's --fd firmware=N; taken over and closed). Errors name the file and, when
 * Debian's file is missing, the package to install. Returns 0 or -errno. */
int firmware_open(const struct vm_def *def, int passed_fd, struct firmware *fw, char *err,
		  size_t errlen) __attribute__((warn_unused_result));
void firmware_close(struct firmware *fw);
/* Where the image starts in guest-physical memory (it ends at 4 GiB). */
uint64_t firmware_base(const struct firmware *fw);
/* The firmware has left its image: drop the image's pages from this process's resident set.
 * They stay in the page cache (shared by every VM that boots the file); a later read (the
 * next boot's reset vector, SeaBIOS's low copy) faults them back in. The mapping is a clean,
 * read-only file mapping, so nothing is lost; KVM's read-only slot refaults through its MMU
 * notifier. Called at the firmware's first write of the chipset's PCIEXBAR in each boot
 * (q35.c). */
void firmware_release(const struct firmware *fw);
/* At each boot: SeaBIOS's low copy into RAM. Returns 0 or -errno (no RAM there). */
int firmware_load(const struct firmware *fw, const struct guest_mem *mem)
	__attribute__((warn_unused_result));

#endif
