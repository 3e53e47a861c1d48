/* SPDX-License-Identifier: Apache-2.0 */
/* The worker uids some process on the host runs as (uid_scan.h). */
#include "daemon/uid_scan.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Mark the ids of a "Uid:" or "Gid:" line (real, effective, saved, file system) in range. */
static void mark_ids(const char *ids, uid_t first, unsigned n, unsigned char *used)
{
	unsigned long v[4];
	int k = sscanf(ids, "%lu %lu %lu %lu", &v[0], &v[1], &v[2], &v[3]);

	for (int i = 0; i < k; i++) {
		if (v[i] < first || v[i] - first >= n)
			continue;
		used[(v[i] - first) / 8] |= (unsigned char)(1u << ((v[i] - first) % 8));
	}
}

/* One process's status file: its ids marked; 1 when read, 0 when it is gone. */
static int scan_one(const char *path, uid_t first, unsigned n, unsigned char *used)
{
	char line[256];
	FILE *f = fopen(path, "re");
	int seen = 0;

	if (!f)
		return 0;
	while (seen < 2 && fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "Uid:", 4) || !strncmp(line, "Gid:", 4)) {
			mark_ids(line + 4, first, n, used);
			seen++;
		}
	}
	fclose(f);
	return 1;
}

/* Whether name is a process's or thread's number. */
static bool is_id(const char *name)
{
	return name[0] >= '1' && name[0] <= '9' && strspn(name, "0123456789") == strlen(name);
}

/* Each of dir's threads (dir/task/TID/status): a thread can run as other ids than its
 * process's first thread (setresuid as a system call acts on the calling thread only). */
static void scan_threads(const char *dir, uid_t first, unsigned n, unsigned char *used)
{
	char path[PATH_MAX];
	struct dirent *e;
	DIR *d;

	if ((size_t)snprintf(path, sizeof(path), "%s/task", dir) >= sizeof(path) ||
	    !(d = opendir(path)))
		return;
	while ((e = readdir(d))) {
		if (is_id(e->d_name) && (size_t)snprintf(path, sizeof(path), "%s/task/%s/status",
							 dir, e->d_name) < sizeof(path))
			(void)scan_one(path, first, n, used);
	}
	closedir(d);
}

int uid_scan(const char *proc, uid_t first, unsigned n, unsigned char *used)
{
	DIR *d = opendir(proc);
	struct dirent *e;
	int read = 0;

	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		char dir[PATH_MAX], path[PATH_MAX + 8];

		if (!is_id(e->d_name) ||
		    (size_t)snprintf(dir, sizeof(dir), "%s/%s", proc, e->d_name) >= sizeof(dir))
			continue;
		snprintf(path, sizeof(path), "%s/status", dir);
		if (!scan_one(path, first, n, used))
			continue;
		read++;
		scan_threads(dir, first, n, used);
	}
	closedir(d);
	return read;
}
