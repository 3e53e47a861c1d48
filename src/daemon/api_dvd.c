/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The "dvd" field of PATCH /v1/vms/NAME (docs/api/openapi.yaml, docs/vm-config.md; keel vm
 * set --dvd, --eject, --lun; Hyper-V's Set-VMDvdDrive -ControllerLocation L -Path):
 * {"lun": L, "path": FILE or null}, the medium of the DVD drive at SCSI LUN L, or of the VM's
 * first DVD drive when "lun" is left out. A request, not a field of the description: it
 * changes scsi.luns[L].path as a whole "scsi" field would (the same checks, the same change
 * of a running VM's medium). "dvd": null is no such object and is refused.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "config/vmdef_json.h"
#include "daemon/api_internal.h"
#include "lib/error.h"

/* "LUN 1, 3" (the DVD drives of def), or "none". */
static void dvd_luns(const struct vm_def *def, char *buf, size_t size)
{
	size_t len = 0;

	snprintf(buf, size, "none");
	for (unsigned k = 0; k < def->scsi.nluns && len < size; k++) {
		int n;

		if (def->scsi.luns[k].type != VM_LUN_DVD)
			continue;
		n = snprintf(buf + len, size - len, "%s%u", len ? ", " : "LUN ", k);
		len += n > 0 ? (size_t)n : 0;
	}
}

int api_dvd_apply(struct vm_def *nd, json_object *dvd, char *err, size_t errlen)
{
	json_object *path = NULL;
	bool have_path = false;
	int64_t lun = -1;
	char drives[64];

	if (!json_object_is_type(dvd, json_type_object)) {
		error_set(err, errlen,
			  "field 'dvd' must be an object {\"lun\": L, \"path\": FILE or null}");
		return -EINVAL;
	}
	json_object_object_foreach(dvd, key, val)
	{
		if (!strcmp(key, "path")) {
			path = val;
			have_path = true;
		} else if (!strcmp(key, "lun") && json_object_is_type(val, json_type_int) &&
			   json_object_get_int64(val) >= 0) {
			lun = json_object_get_int64(val);
		} else {
			error_set(err, errlen,
				  !strcmp(key, "lun") ? "field 'dvd.lun' must be a LUN number"
						      : "unknown field 'dvd.%.40s' (a DVD drive's "
							"change has a lun and a path)",
				  key);
			return -EINVAL;
		}
	}
	if (!have_path) {
		error_set(err, errlen,
			  "field 'dvd' needs a 'path' (an ISO image, or null to eject)");
		return -EINVAL;
	}
	for (unsigned k = 0; lun < 0 && k < nd->scsi.nluns; k++)
		if (nd->scsi.luns[k].type == VM_LUN_DVD)
			lun = k;
	dvd_luns(nd, drives, sizeof(drives));
	if (lun < 0) {
		error_set(err, errlen, "VM '%s' has no DVD drive (keel vm create --dvd)", nd->name);
		return -EINVAL;
	}
	if (lun >= nd->scsi.nluns) {
		error_set(err, errlen, "VM '%s' has no SCSI LUN %lld (its DVD drives: %s)",
			  nd->name, (long long)lun, drives);
		return -EINVAL;
	}
	if (nd->scsi.luns[lun].type != VM_LUN_DVD) {
		error_set(
			err, errlen,
			"SCSI LUN %lld of VM '%s' is a disk, not a DVD drive (its DVD drives: %s)",
			(long long)lun, nd->name, drives);
		return -EINVAL;
	}
	return vmdef_get_path(path, "dvd.path", true, &nd->scsi.luns[lun].disk.path, err, errlen);
}
