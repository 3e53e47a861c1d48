/* SPDX-License-Identifier: Apache-2.0 */
#include "vmm/x86/firmware.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/mem.h"

#define BIOS_SEGMENT_SIZE (128u << 10)

int firmware_open(const struct vm_def *def, int passed_fd, struct firmware *fw, char *err,
		  size_t errlen)
{
	const char *path = vmdef_firmware_file(def);
	struct stat st;
	void *p;
	int fd, r;

	*fw = (struct firmware){.kind = VM_FIRMWARE_NONE};
	if (!path)
		return 0;
	/* Passed (keeld opened it: --fd firmware=N): the worker takes it over. */
	fd = passed_fd >= 0 ? passed_fd : open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		if (r == -ENOENT && !def->firmware_file)
			vmdef_firmware_missing(def, err, errlen);
		else
			snprintf(err, errlen, "firmware file %s: %s", path, strerror(-r));
		return r;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "firmware file %s: not a regular file", path);
		close(fd);
		return -EINVAL;
	}
	if (st.st_size < FIRMWARE_MIN_SIZE || st.st_size > FIRMWARE_MAX_SIZE || st.st_size % 4096) {
		snprintf(err, errlen,
			 "firmware file %s: %lld bytes, expected a multiple of 4 KiB from 128 KiB "
			 "to 16 MiB",
			 path, (long long)st.st_size);
		close(fd);
		return -EINVAL;
	}
	/* Shared and read-only: the pages are the file's page cache, the same pages for every VM
	 * that boots this firmware; nothing is ever copied (the guest cannot write them). */
	p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	r = p == MAP_FAILED ? -errno : 0;
	close(fd);
	if (r) {
		snprintf(err, errlen, "firmware file %s: cannot map it: %s", path, strerror(-r));
		return r;
	}
	fw->kind = def->firmware;
	fw->image = p;
	fw->size = (size_t)st.st_size;
	return 0;
}

void firmware_close(struct firmware *fw)
{
	if (fw->image)
		munmap((void *)fw->image, fw->size);
	*fw = (struct firmware){.kind = VM_FIRMWARE_NONE};
}

void firmware_release(const struct firmware *fw)
{
	/* Advice, not a requirement: a refusal leaves the pages resident, nothing else. */
	if (fw->image)
		(void)madvise((void *)fw->image, fw->size, MADV_DONTNEED);
}

uint64_t firmware_base(const struct firmware *fw)
{
	return FIRMWARE_TOP - fw->size;
}

int firmware_load(const struct firmware *fw, const struct guest_mem *mem)
{
	if (fw->kind != VM_FIRMWARE_BIOS)
		return 0;
	return mem_write(mem, FIRMWARE_BIOS_SEGMENT, fw->image + fw->size - BIOS_SEGMENT_SIZE,
			 BIOS_SEGMENT_SIZE);
}
