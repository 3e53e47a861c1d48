/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keeld's request handling under libFuzzer: the API router, JSON parsing, VM definition
 * validation and the SQLite store, exactly as keeld runs them (no HTTP framing).
 *
 * Input: requests separated by NUL bytes; each is "METHOD PATH\n" then the body. Each
 * input gets a fresh in-memory store and supervisor, so requests in one input can build
 * on each other (create, then set, then start...) without inputs leaking state. The
 * supervisor's keel-vmm does not exist, so start fails cleanly instead of forking.
 * A kernel file exists at FUZZ_DIR/kernel for definitions to validate against, and FUZZ_DIR is
 * the storage pool "fuzz".
 */
#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "daemon/api.h"
#include "daemon/biglock.h"
#include "daemon/jobs.h"
#include "daemon/store.h"
#include "daemon/sup.h"
#include "lib/log.h"

#define FUZZ_DIR "/tmp/keel-fuzz-api"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	FILE *f;

	log_init("fuzz-api", LOG_ERROR);
	mkdir(FUZZ_DIR, 0755);
	f = fopen(FUZZ_DIR "/kernel", "w");
	if (f) {
		fputs("not really a kernel, but a regular file\n", f);
		fclose(f);
	}
	f = fopen(FUZZ_DIR "/disk.img", "w");
	if (f)
		fclose(f);
	return 0;
}

/* Disks the API creates in the pool stay small here: a 64 TiB VHDX is a valid request, but
 * its 512 MiB allocation table is not what this target is for. */
static bool disk_too_big(const char *body, size_t len)
{
	json_tokener *tok = json_tokener_new();
	json_object *o = tok ? json_tokener_parse_ex(tok, body, (int)len) : NULL, *v;
	bool big =
		json_object_object_get_ex(o, "size", &v) && json_object_get_int64(v) > (64 << 20);

	json_object_put(o);
	if (tok)
		json_tokener_free(tok);
	return big;
}

/* The files an input's requests created in the pool go with the input. */
static void clean_pool(void)
{
	DIR *d = opendir(FUZZ_DIR);
	struct dirent *e;

	while (d && (e = readdir(d))) {
		char path[512];

		if (e->d_type != DT_REG || !strcmp(e->d_name, "kernel") ||
		    !strcmp(e->d_name, "disk.img"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", FUZZ_DIR, e->d_name);
		unlink(path);
	}
	if (d)
		closedir(d);
}

static void one_request(struct api_ctx *ctx, const char *req, size_t len)
{
	char method[16], path[600], *query;
	struct api_caller caller;
	const char *nl = memchr(req, '\n', len), *sp;
	struct api_reply r;
	size_t mlen, plen;

	if (!nl)
		nl = req + len;
	sp = memchr(req, ' ', (size_t)(nl - req));
	if (!sp)
		return;
	mlen = (size_t)(sp - req);
	plen = (size_t)(nl - sp - 1);
	if (mlen >= sizeof(method) || plen >= sizeof(path))
		return;
	memcpy(method, req, mlen);
	method[mlen] = '\0';
	memcpy(path, sp + 1, plen);
	path[plen] = '\0';
	if (strlen(path) != plen || strlen(method) != mlen)
		return;
	if (nl < req + len)
		nl++;
	if (strstr(path, "/disks") && disk_too_big(nl, (size_t)(req + len - nl)))
		return;
	/* "PATH?QUERY" as HTTP splits it; an administrator, or a viewer for inputs of odd
	 * length (what they may not do is refused before anything runs). */
	query = strchr(path, '?');
	if (query)
		*query++ = '\0';
	access_root(&caller);
	if (len & 1)
		caller.role = API_ROLE_VIEWER;
	api_handle(ctx, &caller, method, path, query, nl, (size_t)(req + len - nl), &r);
	/* Every reply is a status with a body: JSON for all but the log. */
	if (r.status < 200 || r.status > 599 || !r.content_type)
		abort();
	if (r.status >= 400 && (!r.body || !strstr(r.body, "\"error\"")))
		abort();
	api_reply_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sup_config sc = {
		.state_dir = FUZZ_DIR,
		.vmm_path = FUZZ_DIR "/no-keel-vmm",
		.start_timeout_s = 1,
	};
	struct store *store = NULL;
	struct sup *sup = NULL;
	struct api_ctx ctx;
	char err[256];
	size_t off = 0;

	if (size > 65536)
		return 0;
	if (store_open(":memory:", &store, err, sizeof(err)))
		abort();
	/* FUZZ_DIR is a storage pool, so definitions get past the path policy (pools.c), and
	 * requests can create and delete pools and disks in it. */
	{
		struct store_pool pool = {.name = "fuzz", .path = FUZZ_DIR};

		if (store_pool_insert(store, &pool, err, sizeof(err)))
			abort();
	}
	sc.store = store;
	if (sup_create(&sc, &sup))
		abort();
	ctx = (struct api_ctx){.store = store, .sup = sup, .stop_timeout_s = 1};
	while (off < size) {
		const uint8_t *end = memchr(data + off, '\0', size - off);
		size_t len = end ? (size_t)(end - (data + off)) : size - off;
		one_request(&ctx, (const char *)data + off, len);
		off += len + 1;
	}
	/* A request may have started a job (a checkpoint of a VM that is off): it uses this
	 * input's store and supervisor, so it ends before they go. */
	for (;;) {
		size_t running;

		keeld_lock();
		running = jobs_running(false);
		keeld_unlock();
		if (!running)
			break;
		usleep(1000);
	}
	sup_destroy(sup);
	store_close(store);
	clean_pool();
	return 0;
}
