/* SPDX-License-Identifier: Apache-2.0 */
/* keel vm disk show|set: one disk of a VM and its storage QoS (docs/cli.md, Hyper-V's
 * Get-/Set-VMHardDiskDrive -MaximumIOPS -MinimumIOPS). */
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "lib/parse.h"

static const char disk_usage[] =
	"usage: keel vm disk show NAME DISK [--json]\n"
	"       keel vm disk set NAME DISK [--max-iops N] [--max-bandwidth BYTES[K|M|G|T]]\n"
	"                                  [--min-iops N] [--json]\n"
	"  DISK is a virtio-blk disk's index (0, 1, ... as keel vm show lists them), scsi:L for\n"
	"  the disk at LUN L of the SCSI controller, or either's path.\n"
	"  IOPS count 8 KiB each (a larger request counts one per 8 KiB started), bandwidth is\n"
	"  bytes per second; 0 is no limit. A running VM's disk changes at once; the values\n"
	"  are kept for its next start.\n";

/* DISK (an index, scsi:L, or a path) as the API names the VM's disk: "N" or "scsi:L". The
 * path of a virtio-blk disk or of a disk on the SCSI controller. */
static int disk_index(const char *vm, const char *disk, char *out, size_t size)
{
	json_object *o = NULL, *arr = NULL, *scsi = NULL;
	char path[512], what[300], abs[PATH_MAX];
	const char *digits = strncmp(disk, "scsi:", 5) ? disk : disk + 5;
	int ret;

	if (digits[0] && strspn(digits, "0123456789") == strlen(digits) && strlen(digits) < 6) {
		snprintf(out, size, "%s", disk);
		return EXIT_OK;
	}
	cli_vm_path(path, sizeof(path), vm, NULL);
	snprintf(what, sizeof(what), "find disk %.100s of VM '%.100s'", disk, vm);
	ret = client_call("GET", path, NULL, &o, what);
	if (ret)
		return ret;
	if (!realpath(disk, abs))
		snprintf(abs, sizeof(abs), "%s", disk);
	for (int bus = 0; bus < 2; bus++) {
		if (!bus)
			json_object_object_get_ex(o, "disks", &arr);
		else if (!json_object_object_get_ex(o, "scsi", &scsi) || !scsi ||
			 !json_object_object_get_ex(scsi, "luns", &arr))
			break;
		for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
			json_object *d = json_object_array_get_idx(arr, i);
			const char *p = client_str_field(d, "path");

			if (bus && strcmp(client_str_field(d, "type"), "disk"))
				continue;
			if (!strcmp(p, disk) || !strcmp(p, abs)) {
				snprintf(out, size, "%s%zu", bus ? "scsi:" : "", i);
				json_object_put(o);
				return EXIT_OK;
			}
		}
		arr = NULL;
	}
	json_object_put(o);
	fprintf(stderr,
		"keel: vm disk: VM '%s' has no disk %s (give its index, scsi:LUN, or its path)\n",
		vm, disk);
	return EXIT_USAGE;
}

/* "500" or "-" for 0 (none); bandwidth as a size ("50M") when it is a whole one. */
static void limit_text(json_object *o, const char *key, bool bytes, char *buf, size_t size)
{
	json_object *v;
	uint64_t n = json_object_object_get_ex(o, key, &v) ? (uint64_t)json_object_get_int64(v) : 0;
	static const char units[] = "KMGT";
	int u = -1;

	if (!n) {
		snprintf(buf, size, "none");
		return;
	}
	while (bytes && u < 3 && n % 1024 == 0) {
		n /= 1024;
		u++;
	}
	snprintf(buf, size, "%llu%s%s", (unsigned long long)n, u >= 0 ? (char[]){units[u], 0} : "",
		 bytes ? (u >= 0 ? "/s" : " bytes/s") : "");
}

void cli_disk_qos_text(json_object *d, char *buf, size_t size)
{
	char a[32], b[32], c[32];

	limit_text(d, "max_iops", false, a, sizeof(a));
	limit_text(d, "max_bandwidth", true, b, sizeof(b));
	limit_text(d, "min_iops", false, c, sizeof(c));
	if (!strcmp(a, "none") && !strcmp(b, "none") && !strcmp(c, "none"))
		buf[0] = '\0';
	else
		snprintf(buf, size, " (QoS: max %s IOPS, max %s, min %s IOPS)", a, b, c);
}

static void print_disk(json_object *d)
{
	json_object *q, *v;
	char a[32], b[32], c[32];

	limit_text(d, "max_iops", false, a, sizeof(a));
	limit_text(d, "max_bandwidth", true, b, sizeof(b));
	limit_text(d, "min_iops", false, c, sizeof(c));
	if (json_object_object_get_ex(d, "lun", &v))
		printf("Disk:           scsi:%d (LUN %d of the SCSI controller)\n",
		       json_object_get_int(v), json_object_get_int(v));
	else
		printf("Disk:           %d\n",
		       json_object_object_get_ex(d, "disk", &v) ? json_object_get_int(v) : -1);
	printf("Path:           %s\n", client_str_field(d, "path"));
	printf("Maximum IOPS:   %s\n", a);
	printf("Max bandwidth:  %s\n", b);
	printf("Minimum IOPS:   %s\n", c);
	if (!json_object_object_get_ex(d, "qos", &q) || !q) {
		printf("Counters:       none (the VM is not running)\n");
		return;
	}
#define Q(k) (json_object_object_get_ex(q, k, &v) ? (long long)json_object_get_int64(v) : 0)
	printf("Requests:       %lld (%lld I/Os of 8 KiB, %lld bytes)\n", Q("requests"), Q("ios"),
	       Q("bytes"));
	printf("Throttled:      %lld requests waited for the limits, %lld waiting now\n",
	       Q("throttled"), Q("waiting"));
	printf("Below minimum:  %lld seconds%s\n", Q("below_min_seconds"),
	       json_object_object_get_ex(q, "below_min", &v) && json_object_get_boolean(v)
		       ? " (the last second too: the disk gets less than its minimum IOPS)"
		       : "");
#undef Q
}

static int set_limit(json_object *body, const char *key, const char *opt, const char *s, bool size)
{
	uint64_t v;
	int r = size ? parse_size(s, 1, &v) : parse_uint(s, 0, UINT64_MAX, &v);

	if (r || v > INT64_MAX)
		return cli_usage_error("vm disk", disk_usage,
				       "%s: '%.40s' is not %s (0 for no limit)", opt, s,
				       size ? "a number of bytes per second, as 50M"
					    : "a whole number of I/Os per second");
	json_object_object_add(body, key, json_object_new_int64((int64_t)v));
	return EXIT_OK;
}

int cli_vm_disk(int argc, char **argv)
{
	const char *vm = NULL, *disk = NULL;
	bool json = false, set;
	json_object *body, *res = NULL;
	char path[600], what[300], idx[48];
	int ret = EXIT_OK;

	if (argc < 2 || (strcmp(argv[1], "show") && strcmp(argv[1], "set")))
		return cli_usage_error("vm disk", disk_usage, "expected show or set");
	set = !strcmp(argv[1], "set");
	body = json_object_new_object();
	for (int i = 2; i < argc && !ret; i++) {
		static const char *const opts[] = {"--max-iops", "--max-bandwidth", "--min-iops"};
		static const char *const keys[] = {"max_iops", "max_bandwidth", "min_iops"};
		int k;

		for (k = 0; k < 3 && strcmp(argv[i], opts[k]); k++)
			;
		if (k < 3 && set && i + 1 < argc)
			ret = set_limit(body, keys[k], opts[k], argv[++i], k == 1);
		else if (!strcmp(argv[i], "--json"))
			json = true;
		else if (argv[i][0] == '-')
			ret = cli_usage_error("vm disk", disk_usage,
					      "unknown or incomplete option %.200s", argv[i]);
		else if (!vm)
			vm = argv[i];
		else if (!disk)
			disk = argv[i];
		else
			ret = cli_usage_error("vm disk", disk_usage, "too many arguments: %.200s",
					      argv[i]);
	}
	if (!ret && (!vm || !disk))
		ret = cli_usage_error("vm disk", disk_usage, "needs NAME and DISK");
	if (!ret && set && !json_object_object_length(body))
		ret = cli_usage_error("vm disk", disk_usage,
				      "give --max-iops, --max-bandwidth or --min-iops");
	if (!ret)
		ret = disk_index(vm, disk, idx, sizeof(idx));
	if (!ret) {
		char sub[64];

		snprintf(sub, sizeof(sub), "disks/%s", idx);
		cli_vm_path(path, sizeof(path), vm, sub);
		snprintf(what, sizeof(what), "%s disk %s of VM '%.100s'",
			 set ? "set the QoS of" : "show", idx, vm);
		ret = client_call(set ? "PATCH" : "GET", path, set ? body : NULL, &res, what);
	}
	json_object_put(body);
	if (!ret && json)
		client_print_json(res);
	else if (!ret)
		print_disk(res);
	json_object_put(res);
	return ret;
}
