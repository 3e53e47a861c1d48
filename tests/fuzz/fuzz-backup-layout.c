/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz-backup-layout: the disk paths of a backup's description as keel vm import maps them
 * onto the backup's disks/ directory (src/daemon/backup_layout.c). Whatever the path, an
 * accepted one gives a plain file name that is the path's last component, right after
 * "/disks/", and no accepted path has a ".", ".." or empty component.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/backup_layout.h"

static void check(const char *path)
{
	const char *file = NULL;
	size_t len = strlen(path);

	if (backup_disk_file(path, &file))
		return;
	if (file < path || file > path + len || strchr(file, '/') || !file[0] ||
	    !strcmp(file, ".") || !strcmp(file, "..") || (size_t)(file - path) < 7 ||
	    memcmp(file - 7, "/disks/", 7) || strstr(path, "//") || strstr(path, "/./") ||
	    strstr(path, "/../"))
		abort(); /* a path import would follow out of the backup's disks/ */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *path = malloc(size + 1);

	if (!path)
		return 0;
	memcpy(path, data, size);
	path[size] = '\0';
	check(path);
	free(path);
	return 0;
}
