/* SPDX-License-Identifier: Apache-2.0 */
/* VHDX region table: where the BAT and the metadata region live. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "disk/disk_internal.h"
#include "disk/vhdx_internal.h"
#include "lib/crc32c.h"
#include "lib/log.h"

static void put_entry(uint8_t *e, const struct uuid *g, uint64_t off, uint32_t len)
{
	memcpy(e, g->b, 16);
	le64_store(e + 16, off);
	le32_store(e + 24, len);
	le32_store(e + 28, 1); /* required */
}

void vhdx_region_build(uint8_t *buf, uint64_t bat_off, uint32_t bat_len, uint64_t meta_off,
		       uint32_t meta_len)
{
	static const struct uuid bat = VHDX_GUID_BAT, meta = VHDX_GUID_METADATA;

	memset(buf, 0, VHDX_REGION_SIZE);
	memcpy(buf, VHDX_REGION_SIG, 4);
	le32_store(buf + 8, 2);
	put_entry(buf + VHDX_REGION_HDR_SIZE, &bat, bat_off, bat_len);
	put_entry(buf + VHDX_REGION_HDR_SIZE + VHDX_REGION_ENTRY_SIZE, &meta, meta_off, meta_len);
	le32_store(buf + 4, crc32c(0, buf, VHDX_REGION_SIZE));
}

/* Parses one copy; returns NULL or why it is unusable. */
static const char *region_parse(struct vhdx *v, uint8_t *buf)
{
	static const struct uuid bat = VHDX_GUID_BAT, meta = VHDX_GUID_METADATA;
	uint32_t sum = le32_load(buf + 4), n;
	bool have_bat = false, have_meta = false;

	if (memcmp(buf, VHDX_REGION_SIG, 4) != 0)
		return "no 'regi' signature";
	le32_store(buf + 4, 0);
	if (crc32c(0, buf, VHDX_REGION_SIZE) != sum)
		return "checksum mismatch";
	n = le32_load(buf + 8);
	if (n > VHDX_REGION_MAX_ENTRIES)
		return "more than 2047 entries";
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *e = buf + VHDX_REGION_HDR_SIZE + i * VHDX_REGION_ENTRY_SIZE;
		struct uuid g;
		uint64_t off = le64_load(e + 16);
		uint32_t len = le32_load(e + 24);
		bool required = le32_load(e + 28) & 1;

		memcpy(g.b, e, 16);
		if (uuid_equal(&g, &bat) || uuid_equal(&g, &meta)) {
			bool is_bat = uuid_equal(&g, &bat);

			if (is_bat ? have_bat : have_meta)
				return is_bat ? "BAT region listed twice"
					      : "metadata region listed twice";
			if (off % VHDX_MiB || len % VHDX_MiB || len == 0 ||
			    off < VHDX_SECTION_SIZE || off > VHDX_MAX_SIZE * 2)
				return "region not at a 1 MiB-aligned offset and length";
			if (is_bat) {
				v->bat_off = off;
				v->bat_len = len;
				have_bat = true;
			} else {
				v->meta_off = off;
				v->meta_len = len;
				have_meta = true;
			}
		} else if (required) {
			return "unknown required region";
		}
	}
	if (!have_bat || !have_meta)
		return "BAT or metadata region missing";
	return NULL;
}

int vhdx_region_load(struct vhdx *v)
{
	static const uint64_t offs[2] = {VHDX_REGION1_OFF, VHDX_REGION2_OFF};
	uint8_t *buf = malloc(VHDX_REGION_SIZE);
	const char *why[2] = {"", ""};
	int r = 0;

	if (!buf)
		return -ENOMEM;
	for (int i = 0; i < 2; i++) {
		r = vhdx_pread(v, buf, VHDX_REGION_SIZE, offs[i]);
		if (r == -ENODATA) {
			why[i] = "file too short";
			r = 0;
			continue;
		}
		if (r)
			break;
		why[i] = region_parse(v, buf);
		if (!why[i])
			break;
	}
	if (r)
		disk_fail(v->base.err, "%s: cannot read the VHDX region table: %s", v->base.path,
			  strerror(-r));
	else if (why[0] && why[1]) {
		disk_fail(v->base.err, "%s: both VHDX region tables are invalid (1: %s; 2: %s)",
			  v->base.path, why[0], why[1]);
		r = -EINVAL;
	} else {
		uint64_t a0 = v->bat_off, a1 = a0 + v->bat_len, b0 = v->meta_off,
			 b1 = b0 + v->meta_len, l0 = v->log_off, l1 = l0 + v->log_len;

		if ((a0 < b1 && b0 < a1) ||
		    (v->log_len && ((a0 < l1 && l0 < a1) || (b0 < l1 && l0 < b1)))) {
			disk_fail(v->base.err, "%s: the VHDX log, BAT and metadata regions overlap",
				  v->base.path);
			r = -EINVAL;
		}
	}
	free(buf);
	return r;
}
