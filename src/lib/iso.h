/* SPDX-License-Identifier: Apache-2.0 */
/* ISO images, a DVD drive's medium: checked by keeld on the descriptor the image's storage
 * pool gives before it stores a VM (pools_open_def) and by keel-vmm before it puts one in a
 * drive (vmm/scsi/lun.c). */
#ifndef KEEL_LIB_ISO_H
#define KEEL_LIB_ISO_H

#include <stddef.h>

#define ISO_BLOCK 2048 /* a DVD's logical block */

/* Does the file at fd (path names it in messages) hold an ISO 9660 ("CD001" at sector 16)
 * or UDF (from sector 16 "BEA01", then "NSR02"/"NSR03" before "TEA01") file system? 0, or -EINVAL
 * (err says what is wrong) or -errno of the read. */
int iso_check(int fd, const char *path, char *err, size_t errlen)
	__attribute__((warn_unused_result));

#endif
