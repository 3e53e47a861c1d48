/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The API's storage pools (docs/security.md): GET and POST /v1/pools, GET and DELETE
 * /v1/pools/NAME, and POST /v1/pools/NAME/disks, which creates a virtual disk inside the
 * pool (`keel disk create --pool NAME FILE`).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/api_internal.h"
#include "daemon/disk_policy.h"
#include "daemon/pools.h"
#include "disk/disk.h"
#include "lib/log.h"

#define DISK_SIZE_MAX (64ull << 40) /* VHDX's limit */

/* A disk request's fields into o; the file's name (one component) into *file. */
static int disk_request(json_object *req, struct disk_create_opts *o, const char **file,
			const char **parent, char *err, size_t errlen)
{
	bool have_format = false;

	*file = *parent = NULL;
	*o = (struct disk_create_opts){.type = DISK_TYPE_DYNAMIC};
	json_object_object_foreach(req, key, val)
	{
		const char *s = json_object_is_type(val, json_type_string)
					? json_object_get_string(val)
					: NULL;
		int64_t v =
			json_object_is_type(val, json_type_int) ? json_object_get_int64(val) : -1;

		if (!strcmp(key, "name") && s) {
			*file = s;
		} else if (!strcmp(key, "size") && v > 0 && (uint64_t)v <= DISK_SIZE_MAX) {
			o->size = (uint64_t)v;
		} else if (!strcmp(key, "format") && s && !disk_format_parse(s, &o->format)) {
			have_format = true;
		} else if (!strcmp(key, "type") && s &&
			   (!strcmp(s, "dynamic") || !strcmp(s, "fixed") ||
			    !strcmp(s, "differencing"))) {
			o->type = !strcmp(s, "fixed")	  ? DISK_TYPE_FIXED
				  : !strcmp(s, "dynamic") ? DISK_TYPE_DYNAMIC
							  : DISK_TYPE_DIFFERENCING;
		} else if (!strcmp(key, "block_size") && v > 0 && v <= (256 << 20)) {
			o->block_size = (uint32_t)v;
		} else if (!strcmp(key, "sector_size") && (v == 512 || v == 4096)) {
			o->logical_sector = (uint32_t)v;
		} else if (!strcmp(key, "parent") && s && s[0] == '/') {
			*parent = s;
		} else {
			snprintf(
				err, errlen,
				"bad field '%s' for a disk: name (a file name), size (bytes, up to "
				"64 TiB), format (raw, vhdx), type (dynamic, fixed, differencing), "
				"block_size, sector_size (512, 4096), parent (an absolute path)",
				key);
			return -EINVAL;
		}
	}
	if (!*file || !**file || strchr(*file, '/') || (*file)[0] == '.' ||
	    strlen(*file) > NAME_MAX) {
		snprintf(err, errlen,
			 "a disk needs a 'name': a file name in the pool (no '/', not starting "
			 "with '.')");
		return -EINVAL;
	}
	if (!have_format)
		o->format = disk_format_from_name(*file);
	if (*parent)
		o->type = DISK_TYPE_DIFFERENCING;
	if (o->type == DISK_TYPE_DIFFERENCING && (!*parent || o->format != DISK_FORMAT_VHDX)) {
		snprintf(err, errlen, "a differencing disk is a VHDX with a 'parent'");
		return -EINVAL;
	}
	if (o->type != DISK_TYPE_DIFFERENCING && !o->size) {
		snprintf(err, errlen, "a disk needs a 'size' in bytes");
		return -EINVAL;
	}
	if (o->format == DISK_FORMAT_RAW)
		o->type = DISK_TYPE_FIXED; /* a raw file is sparse or not: nothing to choose */
	return 0;
}

/* POST /v1/pools/NAME/disks: a new disk file in the pool, 0600, never over an existing one. */
static void create_disk(struct api_ctx *ctx, const struct store_pool *p, json_object *req,
			struct api_reply *out)
{
	struct disk_create_opts o;
	const char *file, *parent;
	char path[PATH_MAX], err[PATH_MAX + 600] = "";
	json_object *res;
	int r;

	if (p->block) {
		api_reply_errno(out, -EINVAL, "a block pool holds devices, not disk files");
		return;
	}
	r = disk_request(req, &o, &file, &parent, err, sizeof(err));
	if (!r && (size_t)snprintf(path, sizeof(path), "%s/%s", p->path, file) >= sizeof(path)) {
		snprintf(err, sizeof(err), "the disk's path is too long");
		r = -EINVAL;
	}
	if (!r && parent) {
		/* The parent and its whole chain must be files keeld may hand a VM: opened
		 * through the pools and checked, then given to the library as they are. */
		r = disk_policy_open_chain(ctx->store, "parent", parent, &o.parent_disk, err,
					   sizeof(err));
		o.parent = parent;
	}
	if (!r && access(path, F_OK) == 0) {
		snprintf(err, sizeof(err), "%s already exists", path);
		r = -EEXIST;
	}
	if (!r) {
		struct disk_err why;

		r = disk_create(path, &o, &why);
		if (r)
			snprintf(err, sizeof(err), "%s", why.msg); /* it names the file */
		if (r && !why.msg[0])
			snprintf(err, sizeof(err), "cannot create %s: %s", path, strerror(-r));
		if (r && r != -EEXIST && r != -EINVAL && r != -EBUSY)
			r = -EIO; /* the others are the host's trouble, a 500 */
	}
	disk_close(o.parent_disk);
	if (r) {
		api_reply_errno(out, r, err[0] ? err : strerror(-r));
		return;
	}
	log_info("disk %s created in pool '%s' (%s)", path, p->name, disk_format_name(o.format));
	res = json_object_new_object();
	json_object_object_add(res, "path", json_object_new_string(path));
	json_object_object_add(res, "pool", json_object_new_string(p->name));
	json_object_object_add(res, "format", json_object_new_string(disk_format_name(o.format)));
	json_object_object_add(res, "type", json_object_new_string(disk_type_name(o.type)));
	api_reply_json(out, 201, res);
}

void api_route_pools(struct api_ctx *ctx, const char *method, const char *url, const char *path,
		     json_object *req, struct api_reply *out)
{
	char err[600] = "", name[STORE_POOL_NAME_MAX + 1];
	const char *rest = path + strlen("/v1/pools");
	struct store_pool p;
	int r;

	if (!*rest) {
		if (!strcmp(method, "GET")) {
			json_object *o = pools_json(ctx->store);

			if (o)
				api_reply_json(out, 200, o);
			else
				api_error_reply(out, 500, "Internal", "cannot read the pools");
		} else if (!strcmp(method, "POST")) {
			json_object *o, *name_v = NULL;

			r = pools_create(ctx->store, req, err, sizeof(err));
			if (r) {
				api_reply_errno(out, r, err);
				return;
			}
			/* The new pool as GET /v1/pools/NAME shows it. */
			json_object_object_get_ex(req, "name", &name_v);
			o = pools_one_json(ctx->store, json_object_get_string(name_v));
			log_info("storage pool '%s' created", json_object_get_string(name_v));
			if (o)
				api_reply_json(out, 201, o);
			else
				api_error_reply(out, 500, "Internal",
						"cannot read the new pool back");
		} else {
			api_method_not_allowed(out, method, url, "GET, POST");
		}
		return;
	}
	/* /NAME or /NAME/disks */
	rest++;
	snprintf(name, sizeof(name), "%.*s", (int)strcspn(rest, "/"), rest);
	rest += strcspn(rest, "/");
	if (*rest && strcmp(rest, "/disks")) {
		snprintf(err, sizeof(err), "no such resource: %.200s", url);
		api_error_reply(out, 404, "NotFound", err);
		return;
	}
	r = pools_get(ctx->store, name, &p, err, sizeof(err));
	if (r) {
		api_reply_errno(out, r, err);
		return;
	}
	if (*rest) {
		if (strcmp(method, "POST"))
			api_method_not_allowed(out, method, url, "POST");
		else
			create_disk(ctx, &p, req, out);
	} else if (!strcmp(method, "GET")) {
		json_object *found = pools_one_json(ctx->store, name);

		if (found)
			api_reply_json(out, 200, found);
		else
			api_error_reply(out, 500, "Internal", "cannot read the pool");
	} else if (!strcmp(method, "DELETE")) {
		r = pools_delete(ctx->store, name, err, sizeof(err));
		if (r) {
			api_reply_errno(out, r, err);
		} else {
			json_object *o = json_object_new_object();

			json_object_object_add(o, "deleted", json_object_new_string(name));
			api_reply_json(out, 200, o);
		}
	} else {
		api_method_not_allowed(out, method, url, "GET, DELETE");
	}
	store_pool_free(&p);
}
