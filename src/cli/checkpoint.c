/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keel checkpoint: a VM's checkpoints through keeld's API (docs/cli.md, docs/checkpoints.md).
 *   create VM [--name NAME] [--type production|production-only|standard] [--json] [--no-wait] |
 *   list VM [--json] |
 *   apply VM NAME [--no-wait] | delete VM NAME [--subtree] [--no-wait] | rename VM NAME NEW
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cli/cli.h"
#include "cli/client.h"

static const char ckpt_usage[] =
	"usage: keel checkpoint COMMAND VM [ARGS]\n"
	"  create VM [--name NAME] [--type T] [--json]\n"
	"                                     take a checkpoint (a running VM pauses briefly);\n"
	"                                     T: production (the default: the guest's file\n"
	"                                     systems frozen through keel-agent, disks only;\n"
	"                                     standard when that cannot be done),\n"
	"                                     production-only (fail instead), standard (memory\n"
	"                                     too)\n"
	"  list VM [--json]                   the checkpoint tree, and where the VM is (Now)\n"
	"  apply VM NAME                      return the disks (and memory, if saved) to NAME\n"
	"  delete VM NAME [--subtree]         delete NAME (and everything below it), merging\n"
	"                                     its disk files so the others keep their data\n"
	"  rename VM NAME NEW                 give NAME a new name\n"
	"create, apply and delete run as keeld jobs and wait for them; with --no-wait they\n"
	"print the job and return (GET /v1/jobs/ID follows it; see docs/keeld.md).\n";

#define usage_error(...) cli_usage_error("checkpoint", ckpt_usage, __VA_ARGS__)

/* The states a VM can be in once a checkpoint operation is over. */
#define CK_SETTLED "Running,Paused,Off,Saved"

static void ck_path(char *buf, size_t size, const char *vm, const char *ckpt, const char *tail)
{
	char v[400], c[400];

	snprintf(buf, size, "/v1/vms/%s/checkpoints%s%s%s", client_escape(vm, v, sizeof(v)),
		 ckpt ? "/" : "", ckpt ? client_escape(ckpt, c, sizeof(c)) : "", tail ? tail : "");
}

struct ck_args {
	const char *pos[3];
	unsigned npos;
	const char *name, *type;
	bool json, subtree, no_wait;
};

static int parse(int argc, char **argv, struct ck_args *a, const char *allowed, unsigned npos)
{
	memset(a, 0, sizeof(*a));
	for (int i = 2; i < argc; i++) {
		const char *s = argv[i];

		if (!strcmp(s, "--json") && strstr(allowed, "json")) {
			a->json = true;
		} else if (!strcmp(s, "--subtree") && strstr(allowed, "subtree")) {
			a->subtree = true;
		} else if (!strcmp(s, "--no-wait") && strstr(allowed, "no-wait")) {
			a->no_wait = true;
		} else if (!strcmp(s, "--name") && strstr(allowed, "name") && i + 1 < argc) {
			a->name = argv[++i];
		} else if (!strncmp(s, "--name=", 7) && strstr(allowed, "name")) {
			a->name = s + 7;
		} else if (!strcmp(s, "--type") && strstr(allowed, "type") && i + 1 < argc) {
			a->type = argv[++i];
		} else if (!strncmp(s, "--type=", 7) && strstr(allowed, "type")) {
			a->type = s + 7;
		} else if (s[0] == '-' && s[1] == '-') {
			return usage_error("unknown or incomplete option %.200s for %s", s,
					   argv[1]);
		} else if (a->npos < npos) {
			a->pos[a->npos++] = s;
		} else {
			return usage_error("too many arguments for %s: %.200s", argv[1], s);
		}
	}
	if (a->npos < npos)
		return usage_error("%s needs %u argument%s", argv[1], npos, npos > 1 ? "s" : "");
	return EXIT_OK;
}

static const char *str(json_object *o, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) && v ? json_object_get_string(v) : NULL;
}

/* One line per checkpoint, indented under its parent; "Now" under the VM's parent. */
static void print_tree(json_object *arr, const char *parent_id, const char *now_parent,
		       unsigned depth)
{
	size_t n = json_object_array_length(arr);

	for (size_t i = 0; i < n; i++) {
		json_object *c = json_object_array_get_idx(arr, i);
		const char *p = str(c, "parent_id"), *id = str(c, "id");
		json_object *saved = NULL;

		if (parent_id ? !p || strcmp(p, parent_id) : p != NULL)
			continue;
		json_object_object_get_ex(c, "saved_state", &saved);
		printf("%*s%s  (%s, %s%s)\n", depth * 2, "", str(c, "name"), str(c, "created"),
		       str(c, "type") ? str(c, "type") : "standard",
		       json_object_get_boolean(saved) ? ", saved state" : "");
		print_tree(arr, id, now_parent, depth + 1);
	}
	if (parent_id && now_parent && !strcmp(parent_id, now_parent))
		printf("%*s> Now\n", depth * 2, "");
}

static int cmd_list(int argc, char **argv)
{
	struct ck_args a;
	json_object *o = NULL, *arr = NULL, *now = NULL;
	char path[1024], what[200];
	int ret = parse(argc, argv, &a, "json", 1);

	if (ret)
		return ret;
	ck_path(path, sizeof(path), a.pos[0], NULL, NULL);
	snprintf(what, sizeof(what), "list the checkpoints of VM '%s'", a.pos[0]);
	ret = client_call("GET", path, NULL, &o, what);
	if (ret)
		return ret;
	if (a.json) {
		client_print_json(o);
	} else {
		json_object_object_get_ex(o, "checkpoints", &arr);
		json_object_object_get_ex(o, "now", &now);
		if (!json_object_array_length(arr))
			printf("VM '%s' has no checkpoints\n", a.pos[0]);
		else
			print_tree(arr, NULL, str(now, "parent_id"), 0);
	}
	json_object_put(o);
	return EXIT_OK;
}

/*
 * Create, apply and delete are keeld jobs: start one, and unless --no-wait follow it to its
 * end, then wait until the VM's worker (saved and restored around the operation when it
 * runs) settles. *result gets the job's result (the caller puts *done, which holds it);
 * with --no-wait the job is printed and *result stays NULL.
 */
static int ck_job(const struct ck_args *a, const char *method, const char *path, json_object *body,
		  const char *what, json_object **done, json_object **result)
{
	json_object *job = NULL;
	char href[256];
	int ret = client_call(method, path, body, &job, what);

	*done = *result = NULL;
	if (ret)
		return ret;
	if (a->no_wait) {
		if (a->json)
			client_print_json(job);
		else
			printf("job %s started: %s\n", str(job, "id"), what);
		json_object_put(job);
		return EXIT_OK;
	}
	ret = client_wait_job(job, what);
	snprintf(href, sizeof(href), "%s", str(job, "href"));
	json_object_put(job);
	if (!ret)
		ret = client_call("GET", href, NULL, done, what);
	if (!ret && !json_object_object_get_ex(*done, "result", result)) {
		fprintf(stderr, "keel: %s: keeld's job has no result\n", what);
		ret = EXIT_FAIL;
	}
	if (!ret)
		ret = client_wait_state(a->pos[0], "Starting", CK_SETTLED, 120, what);
	return ret;
}

static int cmd_create(int argc, char **argv)
{
	struct ck_args a;
	json_object *body, *done = NULL, *o = NULL;
	char path[1024], what[200];
	int ret = parse(argc, argv, &a, "json name type no-wait", 1);

	if (ret)
		return ret;
	if (a.type && strcmp(a.type, "production") && strcmp(a.type, "production-only") &&
	    strcmp(a.type, "standard"))
		return usage_error("unknown checkpoint type '%.40s': production, production-only "
				   "or standard",
				   a.type);
	body = json_object_new_object();
	if (a.name)
		json_object_object_add(body, "name", json_object_new_string(a.name));
	if (a.type)
		json_object_object_add(body, "type", json_object_new_string(a.type));
	ck_path(path, sizeof(path), a.pos[0], NULL, NULL);
	snprintf(what, sizeof(what), "checkpoint VM '%s'", a.pos[0]);
	ret = ck_job(&a, "POST", path, body, what, &done, &o);
	json_object_put(body);
	if (!ret && o) {
		if (a.json)
			client_print_json(o);
		else if (str(o, "fallback"))
			printf("checkpoint '%s' of VM '%s' created: %s\n", str(o, "name"), a.pos[0],
			       str(o, "fallback"));
		else
			printf("%s checkpoint '%s' of VM '%s' created\n",
			       str(o, "type") ? str(o, "type") : "standard", str(o, "name"),
			       a.pos[0]);
	}
	json_object_put(done); /* o is its "result" */
	return ret;
}

static int cmd_apply(int argc, char **argv)
{
	struct ck_args a;
	json_object *done = NULL, *o = NULL, *vm = NULL;
	char path[1024], what[200];
	int ret = parse(argc, argv, &a, "json no-wait", 2);

	if (ret)
		return ret;
	ck_path(path, sizeof(path), a.pos[0], a.pos[1], "/apply");
	snprintf(what, sizeof(what), "apply checkpoint '%s' to VM '%s'", a.pos[1], a.pos[0]);
	ret = ck_job(&a, "POST", path, NULL, what, &done, &o);
	json_object_put(done);
	if (ret || !o)
		return ret;
	{
		char v[400];

		snprintf(path, sizeof(path), "/v1/vms/%s", client_escape(a.pos[0], v, sizeof(v)));
	}
	ret = client_call("GET", path, NULL, &vm, what);
	if (ret)
		return ret;
	if (a.json)
		client_print_json(vm);
	else
		printf("checkpoint '%s' applied: VM '%s' is %s\n", a.pos[1], a.pos[0],
		       str(vm, "state"));
	json_object_put(vm);
	return EXIT_OK;
}

static int cmd_delete(int argc, char **argv)
{
	struct ck_args a;
	json_object *done = NULL, *o = NULL;
	char path[1024], what[200];
	int ret = parse(argc, argv, &a, "json subtree no-wait", 2);

	if (ret)
		return ret;
	ck_path(path, sizeof(path), a.pos[0], a.pos[1], a.subtree ? "?subtree=true" : NULL);
	snprintf(what, sizeof(what), "delete checkpoint '%s' of VM '%s'", a.pos[1], a.pos[0]);
	ret = ck_job(&a, "DELETE", path, NULL, what, &done, &o);
	if (!ret && o && a.json)
		client_print_json(o);
	else if (!ret && o)
		printf("checkpoint '%s'%s of VM '%s' deleted\n", a.pos[1],
		       a.subtree ? " and its subtree" : "", a.pos[0]);
	json_object_put(done);
	return ret;
}

static int cmd_rename(int argc, char **argv)
{
	struct ck_args a;
	json_object *body;
	char path[1024], what[200];
	int ret = parse(argc, argv, &a, "", 3);

	if (ret)
		return ret;
	body = json_object_new_object();
	json_object_object_add(body, "name", json_object_new_string(a.pos[2]));
	ck_path(path, sizeof(path), a.pos[0], a.pos[1], NULL);
	snprintf(what, sizeof(what), "rename checkpoint '%s' of VM '%s'", a.pos[1], a.pos[0]);
	ret = client_call("PATCH", path, body, NULL, what);
	json_object_put(body);
	if (ret)
		return ret;
	printf("checkpoint '%s' of VM '%s' renamed to '%s'\n", a.pos[1], a.pos[0], a.pos[2]);
	return EXIT_OK;
}

int cli_checkpoint_main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*run)(int, char **);
	} cmds[] = {
		{"create", cmd_create}, {"list", cmd_list},	{"apply", cmd_apply},
		{"delete", cmd_delete}, {"rename", cmd_rename},
	};

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fputs(ckpt_usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : EXIT_OK;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(argv[1], cmds[i].name))
			return cmds[i].run(argc, argv);
	fprintf(stderr, "keel checkpoint: unknown command '%s'\n%s", argv[1], ckpt_usage);
	return EXIT_USAGE;
}
