/* SPDX-License-Identifier: Apache-2.0 */
/* What the device kinds' keel-vmm options share (config/vmdef_cli.h). */
#include "config/vmdef_cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/parse.h"

int vmdef_chardev_parse(const char *s, struct chardev_spec *spec)
{
	if (!strcmp(s, "stdio")) {
		*spec = (struct chardev_spec){CHARDEV_STDIO, NULL};
	} else if (!strcmp(s, "off")) {
		*spec = (struct chardev_spec){CHARDEV_OFF, NULL};
	} else if (!strncmp(s, "file:", 5) && s[5]) {
		*spec = (struct chardev_spec){CHARDEV_FILE, s + 5};
	} else if (!strncmp(s, "unix:", 5) && s[5]) {
		*spec = (struct chardev_spec){CHARDEV_UNIX, s + 5};
	} else {
		return -EINVAL;
	}
	return 0;
}

const char *vmdef_cli_next_kv(const char *s, char *k, size_t klen, char *v, size_t vlen,
			      int *too_long)
{
	const char *comma, *eq;
	size_t kl, vl;

	if (!*s)
		return NULL;
	comma = strchr(s, ',');
	if (!comma)
		comma = s + strlen(s);
	eq = memchr(s, '=', (size_t)(comma - s));
	kl = (size_t)((eq ? eq : comma) - s);
	vl = eq ? (size_t)(comma - eq - 1) : 0;
	*too_long = kl >= klen || vl >= vlen;
	if (*too_long)
		return comma;
	memcpy(k, s, kl);
	k[kl] = 0;
	if (eq)
		memcpy(v, eq + 1, vl);
	v[vl] = 0;
	return *comma ? comma + 1 : comma;
}

int vmdef_cli_on_off(const char *v, bool *out)
{
	if (!strcmp(v, "on") || !strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes"))
		*out = true;
	else if (!strcmp(v, "off") || !strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "no"))
		*out = false;
	else
		return -EINVAL;
	return 0;
}

int vmdef_cli_slot(const char *v, uint8_t *slot)
{
	uint64_t x;

	if (parse_uint(v, VMDEF_PCI_SLOT_MIN, VMDEF_PCI_SLOT_MAX, &x))
		return -EINVAL;
	*slot = (uint8_t)x;
	return 0;
}

int vmdef_cli_abs_path(const char *path, char *out, size_t size)
{
	char cwd[VMDEF_PATH_MAX + 1];
	int n;

	if (path[0] == '/')
		n = snprintf(out, size, "%s", path);
	else if (getcwd(cwd, sizeof(cwd)))
		n = snprintf(out, size, "%s/%s", cwd, path);
	else
		return -EINVAL;
	return n < 0 || (size_t)n >= size ? -EINVAL : 0;
}

int vmdef_cli_set_path(char **dst, const char *v, char *err, size_t errlen)
{
	char cwd[VMDEF_PATH_MAX + 1], *abs;

	if (v[0] == '/') {
		abs = strdup(v);
		if (!abs) {
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
	} else if (!getcwd(cwd, sizeof(cwd)) || asprintf(&abs, "%s/%s", cwd, v) < 0) {
		snprintf(err, errlen, "%s: cannot make it an absolute path: %s", v,
			 strerror(errno));
		return -EINVAL;
	}
	if (v[0] != '/' && strlen(abs) > VMDEF_PATH_MAX) {
		snprintf(err, errlen, "%s: the absolute path is longer than %d bytes", v,
			 VMDEF_PATH_MAX);
		free(abs);
		return -EINVAL;
	}
	free(*dst);
	*dst = abs;
	return 0;
}
