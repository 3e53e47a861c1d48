/* SPDX-License-Identifier: Apache-2.0 */
#include "daemon/backup_layout.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

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
