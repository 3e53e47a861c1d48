/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keel disk: create, info, check, convert, resize, merge and compact raw and VHDX files.
 * Works on files directly; needs no daemon. The disk library's reasons reach the user as the
 * one line it logs to stderr (lib/log.h), so these calls pass it no struct disk_err (but
 * check, whose report on stdout names the reason a file does not open).
 */
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "disk/disk.h"
#include "disk/raw.h"
#include "disk/vhdx.h"
#include "lib/log.h"
#include "lib/parse.h"

struct disk_cmd {
	const char *name;
	const char *usage;
	int (*run)(int argc, char **argv);
};

static int parse_type(const char *s, enum disk_type *t)
{
	if (!strcmp(s, "dynamic"))
		*t = DISK_TYPE_DYNAMIC;
	else if (!strcmp(s, "fixed"))
		*t = DISK_TYPE_FIXED;
	else if (!strcmp(s, "differencing"))
		*t = DISK_TYPE_DIFFERENCING;
	else {
		fprintf(stderr,
			"keel disk: --type must be dynamic, fixed or differencing, not '%s'\n", s);
		return -EINVAL;
	}
	return 0;
}

static int parse_format(const char *s, enum disk_format *f)
{
	if (!strcmp(s, "vhdx"))
		*f = DISK_FORMAT_VHDX;
	else if (!strcmp(s, "raw"))
		*f = DISK_FORMAT_RAW;
	else {
		fprintf(stderr, "keel disk: --format must be vhdx or raw, not '%s'\n", s);
		return -EINVAL;
	}
	return 0;
}

static int parse_size_opt(const char *opt, const char *s, uint64_t *v)
{
	if (parse_size(s, 0, v) != 0) {
		fprintf(stderr, "keel disk: %s '%s' is not a size (e.g. 512, 64M, 10G)\n", opt, s);
		return -EINVAL;
	}
	return 0;
}

/* Shared option parsing for create and convert. */
static int parse_create_opts(int argc, char **argv, struct disk_create_opts *o, bool *fmt_set,
			     int *first, const char **pool)
{
	static const struct option opts[] = {
		{"size", required_argument, NULL, 's'},
		{"type", required_argument, NULL, 't'},
		{"parent", required_argument, NULL, 'p'},
		{"block-size", required_argument, NULL, 'b'},
		{"sector-size", required_argument, NULL, 'S'},
		{"format", required_argument, NULL, 'f'},
		{"pool", required_argument, NULL, 'P'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	uint64_t v;
	int c;

	*fmt_set = false;
	optind = 1;
	while ((c = getopt_long(argc, argv, "s:t:p:b:S:f:h", opts, NULL)) != -1) {
		switch (c) {
		case 'P':
			if (!pool) {
				fprintf(stderr, "keel disk: --pool goes with create\n");
				return -EINVAL;
			}
			*pool = optarg;
			break;
		case 's':
			if (parse_size_opt("--size", optarg, &o->size))
				return -EINVAL;
			break;
		case 't':
			if (parse_type(optarg, &o->type))
				return -EINVAL;
			break;
		case 'p':
			o->parent = optarg;
			break;
		case 'b':
			if (parse_size_opt("--block-size", optarg, &v))
				return -EINVAL;
			if (v > UINT32_MAX) {
				fprintf(stderr, "keel disk: --block-size is at most 256M\n");
				return -EINVAL;
			}
			o->block_size = (uint32_t)v;
			break;
		case 'S':
			if (parse_uint(optarg, 512, 4096, &v) || (v != 512 && v != 4096)) {
				fprintf(stderr, "keel disk: --sector-size must be 512 or 4096\n");
				return -EINVAL;
			}
			o->logical_sector = (uint32_t)v;
			break;
		case 'f':
			if (parse_format(optarg, &o->format))
				return -EINVAL;
			*fmt_set = true;
			break;
		default:
			return -EINVAL;
		}
	}
	*first = optind;
	return 0;
}

/* keel disk create --pool NAME FILE ...: keeld creates FILE (a name) in the pool. */
static int create_in_pool(const char *pool, const char *file, const struct disk_create_opts *o,
			  bool fmt_set, bool type_set)
{
	json_object *body = json_object_new_object(), *res = NULL;
	char path[512], esc[300], what[400];
	int ret;

	json_object_object_add(body, "name", json_object_new_string(file));
	if (o->size)
		json_object_object_add(body, "size", json_object_new_int64((int64_t)o->size));
	if (fmt_set)
		json_object_object_add(body, "format",
				       json_object_new_string(disk_format_name(o->format)));
	if (type_set)
		json_object_object_add(body, "type",
				       json_object_new_string(disk_type_name(o->type)));
	if (o->block_size)
		json_object_object_add(body, "block_size", json_object_new_int64(o->block_size));
	if (o->logical_sector)
		json_object_object_add(body, "sector_size",
				       json_object_new_int64(o->logical_sector));
	if (o->parent)
		json_object_object_add(body, "parent", json_object_new_string(o->parent));
	snprintf(path, sizeof(path), "/v1/pools/%s/disks", client_escape(pool, esc, sizeof(esc)));
	snprintf(what, sizeof(what), "create disk %s in pool '%s'", file, pool);
	ret = client_call("POST", path, body, &res, what);
	json_object_put(body);
	if (!ret)
		printf("%s\n", client_str_field(res, "path"));
	json_object_put(res);
	return ret;
}

static int cmd_create(int argc, char **argv)
{
	struct disk_create_opts o = {.type = DISK_TYPE_DYNAMIC};
	const char *path, *pool = NULL;
	bool fmt_set;
	int first;

	if (parse_create_opts(argc, argv, &o, &fmt_set, &first, &pool) || first != argc - 1)
		return CLI_USAGE;
	path = argv[first];
	if (pool)
		return create_in_pool(pool, path, &o, fmt_set, o.type != DISK_TYPE_DYNAMIC);
	if (!fmt_set)
		o.format = disk_format_from_name(path);
	if (o.parent && o.type == DISK_TYPE_DYNAMIC)
		o.type = DISK_TYPE_DIFFERENCING;
	if (o.type == DISK_TYPE_DIFFERENCING) {
		if (!o.parent) {
			fprintf(stderr,
				"keel disk create: --type differencing needs --parent FILE\n");
			return CLI_USAGE;
		}
		if (!fmt_set)
			o.format = DISK_FORMAT_VHDX;
	} else if (o.parent) {
		fprintf(stderr, "keel disk create: --parent goes with --type differencing\n");
		return CLI_USAGE;
	} else if (!o.size) {
		fprintf(stderr, "keel disk create: --size SIZE is required\n");
		return CLI_USAGE;
	}
	if (o.format == DISK_FORMAT_RAW && o.type == DISK_TYPE_DYNAMIC)
		o.type = DISK_TYPE_FIXED; /* a raw file is sparse or not; nothing to choose */
	if (disk_create(path, &o, NULL) != 0)
		return CLI_FAIL;
	return CLI_OK;
}

static void guid_str(const struct uuid *u, char *s)
{
	uuid_format(u, false, s);
}

static int print_info(const char *path, const struct disk_info *i, bool json)
{
	char fw[UUID_STR_LEN], dw[UUID_STR_LEN], id[UUID_STR_LEN], lg[UUID_STR_LEN],
		pl[UUID_STR_LEN];

	guid_str(&i->file_write_guid, fw);
	guid_str(&i->data_write_guid, dw);
	guid_str(&i->disk_id, id);
	guid_str(&i->log_guid, lg);
	guid_str(&i->parent_linkage, pl);
	if (json) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "file", json_object_new_string(path));
		json_object_object_add(o, "format",
				       json_object_new_string(disk_format_name(i->format)));
		json_object_object_add(o, "type", json_object_new_string(disk_type_name(i->type)));
		json_object_object_add(o, "virtual_size", json_object_new_uint64(i->virtual_size));
		json_object_object_add(o, "file_size", json_object_new_uint64(i->file_size));
		json_object_object_add(o, "allocated_size",
				       json_object_new_uint64(i->allocated_size));
		json_object_object_add(o, "logical_sector_size",
				       json_object_new_int(i->logical_sector));
		json_object_object_add(o, "physical_sector_size",
				       json_object_new_int(i->physical_sector));
		if (i->format == DISK_FORMAT_VHDX) {
			json_object_object_add(o, "block_size",
					       json_object_new_int64(i->block_size));
			json_object_object_add(o, "blocks_total",
					       json_object_new_uint64(i->blocks_total));
			json_object_object_add(o, "blocks_allocated",
					       json_object_new_uint64(i->blocks_allocated));
			json_object_object_add(o, "disk_id", json_object_new_string(id));
			json_object_object_add(o, "file_write_guid", json_object_new_string(fw));
			json_object_object_add(o, "data_write_guid", json_object_new_string(dw));
			json_object_object_add(o, "log_guid", json_object_new_string(lg));
			json_object_object_add(o, "log_pending",
					       json_object_new_boolean(i->log_replayed_in_memory));
		}
		if (i->has_parent) {
			json_object_object_add(o, "parent", json_object_new_string(i->parent_path));
			json_object_object_add(o, "parent_linkage", json_object_new_string(pl));
		}
		client_print_json(o);
		json_object_put(o);
		return 0;
	}
	printf("file:            %s\n", path);
	printf("format:          %s\n", disk_format_name(i->format));
	printf("type:            %s\n", disk_type_name(i->type));
	printf("virtual size:    %llu bytes (%.2f GiB)\n", (unsigned long long)i->virtual_size,
	       (double)i->virtual_size / (1 << 30));
	printf("file size:       %llu bytes\n", (unsigned long long)i->file_size);
	printf("sector size:     %u logical, %u physical\n", i->logical_sector, i->physical_sector);
	if (i->format == DISK_FORMAT_VHDX) {
		printf("block size:      %u bytes (%u MiB)\n", i->block_size, i->block_size >> 20);
		printf("allocation:      %llu of %llu blocks (%llu bytes)\n",
		       (unsigned long long)i->blocks_allocated, (unsigned long long)i->blocks_total,
		       (unsigned long long)i->allocated_size);
		if (i->has_parent) {
			printf("parent:          %s\n", i->parent_path);
			printf("parent linkage:  %s\n", pl);
		}
		printf("disk id:         %s\n", id);
		printf("file write guid: %s\n", fw);
		printf("data write guid: %s\n", dw);
		printf("log guid:        %s%s\n", lg,
		       i->log_replayed_in_memory ? " (log pending replay)" : "");
	} else {
		printf("allocated:       %llu bytes\n", (unsigned long long)i->allocated_size);
	}
	return 0;
}

static int cmd_info(int argc, char **argv)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'},
		{0},
	};
	struct disk_info info;
	struct disk *d;
	bool json = false;
	int c, r;

	optind = 1;
	while ((c = getopt_long(argc, argv, "j", opts, NULL)) != -1) {
		if (c != 'j')
			return CLI_USAGE;
		json = true;
	}
	if (optind != argc - 1)
		return CLI_USAGE;
	/* With the parent chain if it opens; else this file alone (the error is shown). */
	if (disk_open(argv[optind], DISK_OPEN_RDONLY, &d, NULL) != 0 &&
	    disk_open(argv[optind], DISK_OPEN_RDONLY | DISK_OPEN_NOPARENT, &d, NULL) != 0)
		return CLI_FAIL;
	r = disk_info(d, &info);
	disk_close(d);
	if (r)
		return CLI_FAIL;
	print_info(argv[optind], &info, json);
	return CLI_OK;
}

static int cmd_check(int argc, char **argv)
{
	struct disk_err why; /* a file that does not open: the report line says why */

	if (argc != 2 || argv[1][0] == '-')
		return CLI_USAGE;
	return vhdx_check(argv[1], stdout, &why) == 0 ? CLI_OK : CLI_FAIL;
}

static int cmd_convert(int argc, char **argv)
{
	struct disk_create_opts o = {.type = DISK_TYPE_DYNAMIC};
	bool fmt_set;
	int first;

	if (parse_create_opts(argc, argv, &o, &fmt_set, &first, NULL) || first != argc - 2)
		return CLI_USAGE;
	if (o.size || o.parent) {
		fprintf(stderr, "keel disk convert: takes no --size or --parent\n");
		return CLI_USAGE;
	}
	if (!fmt_set)
		o.format = disk_format_from_name(argv[first + 1]);
	if (o.format == DISK_FORMAT_RAW)
		o.type = DISK_TYPE_FIXED;
	return disk_convert(argv[first], argv[first + 1], &o, NULL) == 0 ? CLI_OK : CLI_FAIL;
}

/* Reads the first bytes to route to the raw or VHDX implementation. */
static int is_vhdx(const char *path, bool *vhdx)
{
	char sig[8] = {0};
	FILE *f = fopen(path, "rb");

	if (!f) {
		log_err("cannot open %s: %s", path, strerror(errno));
		return -errno;
	}
	*vhdx = fread(sig, 1, 8, f) == 8 && memcmp(sig, "vhdxfile", 8) == 0;
	fclose(f);
	return 0;
}

static int cmd_resize(int argc, char **argv)
{
	static const struct option opts[] = {
		{"size", required_argument, NULL, 's'},
		{0},
	};
	uint64_t size = 0;
	bool vhdx;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "s:", opts, NULL)) != -1) {
		if (c != 's' || parse_size_opt("--size", optarg, &size))
			return CLI_USAGE;
	}
	if (optind != argc - 1 || !size) {
		fprintf(stderr, "keel disk resize: FILE and --size SIZE are required\n");
		return CLI_USAGE;
	}
	if (is_vhdx(argv[optind], &vhdx))
		return CLI_FAIL;
	if (vhdx)
		return vhdx_resize(argv[optind], size, NULL) == 0 ? CLI_OK : CLI_FAIL;
	if (size % 512) {
		fprintf(stderr, "keel disk resize: size must be a multiple of 512\n");
		return CLI_USAGE;
	}
	return raw_resize(argv[optind], size, NULL) == 0 ? CLI_OK : CLI_FAIL;
}

static int cmd_merge(int argc, char **argv)
{
	char parent[DISK_PATH_MAX];

	if (argc != 2 || argv[1][0] == '-')
		return CLI_USAGE;
	if (vhdx_merge(argv[1], parent, sizeof(parent), NULL) != 0)
		return CLI_FAIL;
	printf("%s: merged into %s and removed\n", argv[1], parent);
	return CLI_OK;
}

static int cmd_compact(int argc, char **argv)
{
	uint64_t freed = 0;
	bool vhdx;

	if (argc != 2 || argv[1][0] == '-')
		return CLI_USAGE;
	if (is_vhdx(argv[1], &vhdx))
		return CLI_FAIL;
	if (!vhdx) {
		fprintf(stderr, "keel disk compact: %s is raw; only VHDX files are compacted\n",
			argv[1]);
		return CLI_FAIL;
	}
	if (vhdx_compact(argv[1], &freed, NULL) != 0)
		return CLI_FAIL;
	printf("%s: %llu bytes given back\n", argv[1], (unsigned long long)freed);
	return CLI_OK;
}

static const struct disk_cmd cmds[] = {
	{"create",
	 "FILE --size SIZE [--type dynamic|fixed|differencing] [--parent FILE]\n"
	 "                  [--block-size SIZE] [--sector-size 512|4096] [--format vhdx|raw]\n"
	 "                  [--pool NAME]  (keeld creates FILE, a name, in the pool)",
	 cmd_create},
	{"info", "FILE [--json]", cmd_info},
	{"check", "FILE", cmd_check},
	{"convert", "SRC DST [--format vhdx|raw] [--type dynamic|fixed]", cmd_convert},
	{"resize", "FILE --size SIZE", cmd_resize},
	{"merge", "CHILD", cmd_merge},
	{"compact", "FILE", cmd_compact},
};

static void disk_usage(FILE *f)
{
	fprintf(f, "usage:\n");
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		fprintf(f, "  keel disk %s %s\n", cmds[i].name, cmds[i].usage);
}

int cli_disk_main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		disk_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? CLI_USAGE : CLI_OK;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (!strcmp(argv[1], cmds[i].name)) {
			int r = cmds[i].run(argc - 1, argv + 1);

			if (r == CLI_USAGE)
				fprintf(stderr, "usage: keel disk %s %s\n", cmds[i].name,
					cmds[i].usage);
			return r;
		}
	}
	fprintf(stderr, "keel disk: unknown command '%s'\n", argv[1]);
	disk_usage(stderr);
	return CLI_USAGE;
}
