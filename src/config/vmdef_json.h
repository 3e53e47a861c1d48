/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reading one field of a description document (inside src/config only): each reader checks
 * the JSON type and the limits and, on error, returns -EINVAL (or NULL) with a one-line
 * message naming the field in err.
 */
#ifndef KEEL_CONFIG_VMDEF_JSON_H
#define KEEL_CONFIG_VMDEF_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

/* A string with no embedded NUL and at most max bytes, or NULL. */
const char *vmdef_get_str(json_object *v, const char *field, size_t max, char *err, size_t errlen);
/* An absolute path into *out (replacing it); null clears it when nullable. */
int vmdef_get_path(json_object *v, const char *field, bool nullable, char **out, char *err,
		   size_t errlen) __attribute__((warn_unused_result));
/* Free text into *out (replacing it); null clears it. */
int vmdef_get_text(json_object *v, const char *field, size_t max, char **out, char *err,
		   size_t errlen) __attribute__((warn_unused_result));
int vmdef_get_int(json_object *v, const char *field, int64_t min, int64_t max, int64_t *out,
		  char *err, size_t errlen) __attribute__((warn_unused_result));
int vmdef_get_bool(json_object *v, const char *field, bool *out, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* One of n names: its index. */
int vmdef_get_enum(json_object *v, const char *field, const char *const *names, unsigned n,
		   unsigned *out, char *err, size_t errlen) __attribute__((warn_unused_result));
/* A PCI slot from VMDEF_PCI_SLOT_MIN to VMDEF_PCI_SLOT_MAX. */
int vmdef_get_slot(json_object *v, const char *field, uint8_t *out, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* A host file the VM uses exists, is a regular file (or a block device when allow_blk) and
 * can be read (and written when need_write). Returns 0 or -EINVAL with err set. */
int vmdef_check_file(const char *what, const char *path, bool allow_blk, bool need_write, char *err,
		     size_t errlen) __attribute__((warn_unused_result));

#endif
