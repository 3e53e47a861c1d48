/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz-backup-layout: the disk paths of a backup's description as keel vm import maps them
 * onto the backup's disks/ directory (src/daemon/backup_layout.c). An input that starts with
 * '{' is a whole description (config.json, parsed as import parses it): every disk it has,
 * virtio-blk or on a SCSI LUN, must map or the description is refused, and the disks mapped
 * are exactly its virtio-blk disks and its SCSI disk LUNs (no DVD drive), in that order. Any
 * other input is one path. Whatever the path, an accepted one gives a plain file name that is
 * the path's last component, right after "/disks/", and no accepted path has a ".", ".." or
 * empty component. A description whose disks map is then taken as import takes it (DVD media
 * dropped, each disk's path FROM/disks/FILE): the check a create makes refuses it exactly when
 * two of its disks name one file of disks/ (under different directories, say), so no import
 * gives a VM one file twice.
 */
#include <stdbool.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "daemon/backup_layout.h"

/* file, accepted for path: what import would open in the backup's disks/. */
static void check_file(const char *path, const char *file)
{
	size_t len = strlen(path);

	if (file < path || file > path + len || strchr(file, '/') || !file[0] ||
	    !strcmp(file, ".") || !strcmp(file, "..") || (size_t)(file - path) < 7 ||
	    memcmp(file - 7, "/disks/", 7) || strstr(path, "//") || strstr(path, "/./") ||
	    strstr(path, "/../"))
		abort(); /* a path import would follow out of the backup's disks/ */
}

static void check_path(const char *path)
{
	const char *file = NULL;

	if (!backup_disk_file(path, &file))
		check_file(path, file);
}

/* The description as import_prepare leaves it (boot_files drops the DVD media, check_disk
 * makes each disk FROM/disks/FILE): vmdef_check refuses it exactly when two disks name one
 * file. */
static void check_as_imported(struct vm_def *def, struct vm_disk *disks[], const char *files[],
			      unsigned n)
{
	char names[BACKUP_DISKS_MAX][NAME_MAX + 1], err[512];
	bool twice = false;

	for (unsigned i = 0; i < n; i++) {
		snprintf(names[i], sizeof(names[i]), "%s", files[i]);
		for (unsigned j = 0; j < i; j++)
			twice |= !strcmp(names[i], names[j]);
	}
	for (unsigned l = 0; l < def->scsi.nluns; l++)
		if (def->scsi.luns[l].type == VM_LUN_DVD) {
			free(def->scsi.luns[l].disk.path);
			def->scsi.luns[l].disk.path = NULL;
		}
	for (unsigned i = 0; i < n; i++) {
		char path[NAME_MAX + 32];

		snprintf(path, sizeof(path), "/from/disks/%s", names[i]);
		free(disks[i]->path);
		disks[i]->path = strdup(path);
		if (!disks[i]->path)
			abort();
	}
	if ((vmdef_check(def, err, sizeof(err)) != 0) != twice)
		abort(); /* one file given twice, or a description refused for no file twice */
}

static void check_description(const char *text, size_t size)
{
	struct vm_disk *disks[BACKUP_DISKS_MAX];
	const char *files[BACKUP_DISKS_MAX];
	json_tokener *tok = json_tokener_new();
	json_object *obj = tok ? json_tokener_parse_ex(tok, text, (int)size) : NULL;
	struct vm_def def;
	char err[512];
	unsigned n = 0, want, k = 0;

	vmdef_init(&def);
	if (!obj || vmdef_apply_json(&def, obj, VMDEF_JSON_DOCUMENT, err, sizeof(err)) ||
	    vmdef_check(&def, err, sizeof(err)))
		goto out;
	want = def.ndisks;
	for (unsigned l = 0; l < def.scsi.nluns; l++)
		want += def.scsi.luns[l].type == VM_LUN_DISK;
	if (backup_disk_files(&def, disks, files, &n, err, sizeof(err))) {
		/* refused: some disk's path is not a file of disks/ */
		bool bad = false;

		for (unsigned i = 0; i < n; i++) {
			const char *f;

			bad |= backup_disk_file(disks[i]->path, &f) != 0;
		}
		if (!bad || !err[0])
			abort(); /* refused with every path good, or without saying why */
		goto out;
	}
	if (n != want)
		abort(); /* a disk left out of the backup, or a DVD taken for one */
	for (unsigned i = 0; i < def.ndisks; i++, k++)
		if (disks[k] != &def.disks[i])
			abort();
	for (unsigned l = 0; l < def.scsi.nluns; l++)
		if (def.scsi.luns[l].type == VM_LUN_DISK && disks[k++] != &def.scsi.luns[l].disk)
			abort(); /* not on its LUN, or out of LUN order */
	for (unsigned i = 0; i < n; i++)
		check_file(disks[i]->path, files[i]);
	check_as_imported(&def, disks, files, n);
out:
	vmdef_free(&def);
	json_object_put(obj);
	if (tok)
		json_tokener_free(tok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text;

	if (size > VMDEF_DOCUMENT_MAX)
		return 0;
	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (size && text[0] == '{')
		check_description(text, size);
	else
		check_path(text);
	free(text);
	return 0;
}
