/* SPDX-License-Identifier: Apache-2.0 */
#include "lib/uefi_store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/le.h"

#define FV_GUID_OFFSET	   16 /* EFI_FIRMWARE_VOLUME_HEADER.FileSystemGuid */
#define FV_LENGTH_OFFSET   32 /* .FvLength */
#define FV_SIG_OFFSET	   40 /* .Signature, "_FVH" */
#define FV_HEADER_LEN_OFF  48 /* .HeaderLength: the variable store header follows */
#define VAR_STORE_HDR_SIZE 28 /* VARIABLE_STORE_HEADER: Signature GUID, Size, Format, State */

/* EFI_SYSTEM_NV_DATA_FV_GUID fff12b8d-7696-4c8b-a985-2747075b4f50, as stored. */
static const uint8_t nv_data_fv_guid[16] = {0x8d, 0x2b, 0xf1, 0xff, 0x96, 0x76, 0x8b, 0x4c,
					    0xa9, 0x85, 0x27, 0x47, 0x07, 0x5b, 0x4f, 0x50};
/* gEfiAuthenticatedVariableGuid aaf32c78-947b-439a-a180-2e144ec37792 and gEfiVariableGuid
 * ddcf3616-3275-4164-98b6-fe85707ffe7d: the variable store's signature. */
static const uint8_t auth_var_guid[16] = {0x78, 0x2c, 0xf3, 0xaa, 0x7b, 0x94, 0x9a, 0x43,
					  0xa1, 0x80, 0x2e, 0x14, 0x4e, 0xc3, 0x77, 0x92};
static const uint8_t var_guid[16] = {0x16, 0x36, 0xcf, 0xdd, 0x75, 0x32, 0x64, 0x41,
				     0x98, 0xb6, 0xfe, 0x85, 0x70, 0x7f, 0xfe, 0x7d};

const char *uefi_store_check(const uint8_t *buf, size_t size)
{
	uint16_t hlen;

	if (size < UEFI_STORE_MIN_SIZE || size > UEFI_STORE_MAX_SIZE || size % 4096)
		return "not a UEFI variable store (its size is not a multiple of 4 KiB from "
		       "64 KiB to 4 MiB)";
	if (memcmp(buf + FV_SIG_OFFSET, "_FVH", 4))
		return "not a UEFI variable store (no firmware volume header)";
	if (memcmp(buf + FV_GUID_OFFSET, nv_data_fv_guid, 16))
		return "not a UEFI variable store (the firmware volume is not an NV data volume)";
	if (le64_load(buf + FV_LENGTH_OFFSET) > size)
		return "not a UEFI variable store (the firmware volume is longer than the file)";
	hlen = le16_load(buf + FV_HEADER_LEN_OFF);
	if (hlen < 56 || (size_t)hlen + VAR_STORE_HDR_SIZE > size ||
	    (memcmp(buf + hlen, auth_var_guid, 16) && memcmp(buf + hlen, var_guid, 16)))
		return "not a UEFI variable store (no variable store header after the firmware "
		       "volume header)";
	return NULL;
}

int uefi_store_read(int fd, const char *shown, uint8_t **data, size_t *size, char *err,
		    size_t errlen)
{
	struct stat st;
	const char *why;
	ssize_t got;

	*data = NULL;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size < UEFI_STORE_MIN_SIZE ||
	    st.st_size > UEFI_STORE_MAX_SIZE) {
		snprintf(err, errlen, "NVRAM file %s: %s", shown,
			 uefi_store_check((const uint8_t *)"", 0));
		return -EINVAL;
	}
	*data = malloc((size_t)st.st_size);
	if (!*data) {
		snprintf(err, errlen, "NVRAM file %s: out of memory", shown);
		return -ENOMEM;
	}
	got = pread(fd, *data, (size_t)st.st_size, 0);
	why = got == st.st_size ? uefi_store_check(*data, (size_t)st.st_size) : NULL;
	if (got != st.st_size || why) {
		if (why)
			snprintf(err, errlen, "NVRAM file %s: %s", shown, why);
		else
			snprintf(err, errlen, "NVRAM file %s: cannot read it", shown);
		free(*data);
		*data = NULL;
		return why ? -EINVAL : -EIO;
	}
	*size = (size_t)st.st_size;
	return 0;
}

int uefi_store_write(int dirfd, const char *name, const char *tmpname, const uint8_t *data,
		     size_t size)
{
	size_t done = 0;
	int fd, r = 0;

	/* A new file, never one found at the temporary name (a link there is not followed). */
	if (unlinkat(dirfd, tmpname, 0) && errno != ENOENT)
		return -errno;
	fd = openat(dirfd, tmpname, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	while (done < size && !r) {
		ssize_t w = pwrite(fd, data + done, size - done, (off_t)done);

		if (w < 0 && errno != EINTR)
			r = -errno;
		else if (w > 0)
			done += (size_t)w;
	}
	if (!r && fsync(fd))
		r = -errno;
	close(fd);
	if (!r && renameat(dirfd, tmpname, dirfd, name))
		r = -errno;
	if (!r && fsync(dirfd))
		r = -errno;
	if (r)
		unlinkat(dirfd, tmpname, 0);
	return r;
}

int uefi_store_write_in(const char *dir, mode_t mode, const char *name, const char *tmpname,
			const uint8_t *data, size_t size)
{
	int dirfd, r;

	if (mkdir(dir, mode) < 0 && errno != EEXIST)
		return -errno;
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dirfd < 0)
		return -errno;
	r = uefi_store_write(dirfd, name, tmpname, data, size);
	close(dirfd);
	return r;
}
