/* SPDX-License-Identifier: Apache-2.0 */
#include "daemon/backup_layout.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "lib/error.h"

int backup_disk_file(const char *path, const char **file)
{
	const char *p = path, *last = NULL, *prev = NULL;

	if (path[0] != '/')
		return -EINVAL;
	while (*p == '/') {
		size_t n = strcspn(p + 1, "/");

		if (n == 0 || (n == 1 && p[1] == '.') || (n == 2 && p[1] == '.' && p[2] == '.'))
			return -EINVAL;
		prev = last;
		last = p + 1;
		p += 1 + n;
	}
	if (!prev || strncmp(prev, "disks/", 6) || last != prev + 6)
		return -EINVAL;
	*file = last;
	return 0;
}

void backup_disk_name(const struct vm_def *def, const struct vm_disk *d, char *buf, size_t len)
{
	for (unsigned l = 0; l < def->scsi.nluns; l++)
		if (d == &def->scsi.luns[l].disk) {
			snprintf(buf, len, "the disk on SCSI LUN %u", l);
			return;
		}
	snprintf(buf, len, "disk %u", (unsigned)(d - def->disks));
}

int backup_disk_files(const struct vm_def *def, struct vm_disk *disks[BACKUP_DISKS_MAX],
		      const char *files[BACKUP_DISKS_MAX], unsigned *n, char *err, size_t errlen)
{
	*n = ckpt_vm_disks(def, disks);
	for (unsigned k = 0; k < *n; k++) {
		char what[48];

		if (backup_disk_file(disks[k]->path, &files[k])) {
			backup_disk_name(def, disks[k], what, sizeof(what));
			error_set(err, errlen,
				  "%s of its description (%.300s) is not a file of the backup's "
				  "disks/ directory",
				  what, disks[k]->path);
			return -EINVAL;
		}
	}
	return 0;
}
