/* SPDX-License-Identifier: Apache-2.0 */
#include "daemon/disk_policy.h"

#include <errno.h>
#include <string.h>

#include "disk/disk.h"
#include "lib/error.h"

/* The disk old had at path, or NULL. */
static const struct vm_disk *attached(const struct vm_def *old, const char *path)
{
	for (unsigned i = 0; old && i < old->ndisks; i++)
		if (!strcmp(old->disks[i].path, path))
			return &old->disks[i];
	return NULL;
}

/* A disk attached now, as format f (given, or from its name): the file must agree. */
static int check_new(const struct vm_disk *d, enum vm_disk_format f, bool given, char *err,
		     size_t errlen)
{
	enum disk_format found;
	struct disk *h = NULL;
	int r;

	disk_error_reset();
	if (f == VM_DISK_VHDX) {
		r = disk_open_as(d->path, DISK_FORMAT_VHDX,
				 DISK_OPEN_RDONLY | DISK_OPEN_NOPARENT | DISK_OPEN_NOLOCK, &h);
		disk_close(h);
		if (r)
			error_set(err, errlen, "disk %s %s VHDX, but it does not open as one: %s",
				  d->path, given ? "is given as" : "is named as", disk_why(r));
		return r ? -EINVAL : 0;
	}
	if (given)
		return 0; /* raw, as the administrator said: whatever the file begins with */
	r = disk_probe(d->path, &found);
	if (r) {
		error_set(err, errlen, "disk %s: %s", d->path, disk_why(r));
		return -EINVAL;
	}
	if (found == DISK_FORMAT_VHDX) {
		error_set(err, errlen,
			  "disk %s begins with a VHDX header but its name does not end in .vhdx: "
			  "say which it is (format vhdx, or raw to show the guest the file's bytes "
			  "as they are)",
			  d->path);
		return -EINVAL;
	}
	return 0;
}

int disk_policy_pin_formats(struct vm_def *nd, const struct vm_def *old, char *err, size_t errlen)
{
	for (unsigned i = 0; i < nd->ndisks; i++) {
		struct vm_disk *d = &nd->disks[i];
		const struct vm_disk *was = attached(old, d->path);
		bool given = d->format != VM_DISK_AUTO;
		enum vm_disk_format f = d->format;
		int r;

		if (was && (!given || f == was->format)) {
			d->format = was->format;
			continue;
		}
		if (!given)
			f = disk_format_from_name(d->path) == DISK_FORMAT_VHDX ? VM_DISK_VHDX
									       : VM_DISK_RAW;
		r = check_new(d, f, given, err, errlen);
		if (r)
			return r;
		d->format = f;
	}
	return 0;
}
