/* SPDX-License-Identifier: Apache-2.0 */
#include "config/vmdef_json.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/vmdef.h"
#include "lib/error.h"

const char *vmdef_get_str(json_object *v, const char *field, size_t max, char *err, size_t errlen)
{
	const char *s;

	if (!json_object_is_type(v, json_type_string)) {
		error_set(err, errlen, "field '%s' must be a string", field);
		return NULL;
	}
	s = json_object_get_string(v);
	if (strlen(s) != (size_t)json_object_get_string_len(v)) {
		error_set(err, errlen, "field '%s' contains a NUL character", field);
		return NULL;
	}
	if (strlen(s) > max) {
		error_set(err, errlen, "field '%s' is longer than %zu bytes", field, max);
		return NULL;
	}
	return s;
}

int vmdef_get_path(json_object *v, const char *field, bool nullable, char **out, char *err,
		   size_t errlen)
{
	const char *s;

	if (!v || json_object_is_type(v, json_type_null)) {
		if (!nullable) {
			error_set(err, errlen, "field '%s' cannot be null", field);
			return -EINVAL;
		}
		free(*out);
		*out = NULL;
		return 0;
	}
	s = vmdef_get_str(v, field, VMDEF_PATH_MAX, err, errlen);
	if (!s)
		return -EINVAL;
	if (s[0] != '/') {
		error_set(err, errlen, "field '%s' must be an absolute path, not '%s'", field, s);
		return -EINVAL;
	}
	free(*out);
	*out = strdup(s);
	return *out ? 0 : -ENOMEM;
}

int vmdef_get_text(json_object *v, const char *field, size_t max, char **out, char *err,
		   size_t errlen)
{
	const char *s;

	if (json_object_is_type(v, json_type_null)) {
		free(*out);
		*out = NULL;
		return 0;
	}
	s = vmdef_get_str(v, field, max, err, errlen);
	if (!s)
		return -EINVAL;
	free(*out);
	*out = strdup(s);
	return *out ? 0 : -ENOMEM;
}

int vmdef_get_int(json_object *v, const char *field, int64_t min, int64_t max, int64_t *out,
		  char *err, size_t errlen)
{
	int64_t x;

	if (!json_object_is_type(v, json_type_int)) {
		error_set(err, errlen, "field '%s' must be an integer", field);
		return -EINVAL;
	}
	errno = 0;
	x = json_object_get_int64(v);
	/* json-c saturates out-of-range numbers at INT64_MIN/MAX and sets errno. */
	if (errno == ERANGE || x < min || x > max) {
		error_set(err, errlen, "field '%s' must be between %" PRId64 " and %" PRId64, field,
			  min, max);
		return -EINVAL;
	}
	*out = x;
	return 0;
}

int vmdef_get_enum(json_object *v, const char *field, const char *const *names, unsigned n,
		   unsigned *out, char *err, size_t errlen)
{
	const char *s = vmdef_get_str(v, field, 64, err, errlen);

	if (!s)
		return -EINVAL;
	for (unsigned i = 0; i < n; i++) {
		if (!strcmp(s, names[i])) {
			*out = i;
			return 0;
		}
	}
	error_set(err, errlen, "field '%s' must be one of %s%s%s%s%s, not '%s'", field, names[0],
		  n > 1 ? ", " : "", n > 1 ? names[1] : "", n > 2 ? ", " : "",
		  n > 2 ? names[2] : "", s);
	return -EINVAL;
}

int vmdef_get_slot(json_object *v, const char *field, uint8_t *out, char *err, size_t errlen)
{
	int64_t x;
	int ret = vmdef_get_int(v, field, VMDEF_PCI_SLOT_MIN, VMDEF_PCI_SLOT_MAX, &x, err, errlen);

	if (!ret)
		*out = (uint8_t)x;
	return ret;
}

int vmdef_get_bool(json_object *v, const char *field, bool *out, char *err, size_t errlen)
{
	if (!json_object_is_type(v, json_type_boolean)) {
		error_set(err, errlen, "field '%s' must be true or false", field);
		return -EINVAL;
	}
	*out = json_object_get_boolean(v);
	return 0;
}

int vmdef_check_file(const char *what, const char *path, bool allow_blk, bool need_write, char *err,
		     size_t errlen)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		error_set(err, errlen, "%s %s: %s", what, path, strerror(errno));
		return -EINVAL;
	}
	if (!S_ISREG(st.st_mode) && !(allow_blk && S_ISBLK(st.st_mode))) {
		error_set(err, errlen, "%s %s is not a regular file%s", what, path,
			  allow_blk ? " or block device" : "");
		return -EINVAL;
	}
	if (access(path, need_write ? R_OK | W_OK : R_OK) < 0) {
		error_set(err, errlen, "%s %s: %s", what, path, strerror(errno));
		return -EINVAL;
	}
	return 0;
}
