/* SPDX-License-Identifier: Apache-2.0 */
/* Deleting a storage pool that no VM uses a file of (pools.h, vm_files.h). */
#include "daemon/pools.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "daemon/vm_files.h"
#include "lib/error.h"
#include "lib/log.h"

/* The first file of a VM that pool p holds, into what and path. */
struct held {
	const struct store_pool *p;
	char what[PATH_MAX + 64];
	char path[PATH_MAX];
};

static int held_by(void *ctx, const char *what, const char *path)
{
	struct held *h = ctx;

	if (!pools_holds(h->p, path))
		return 0;
	snprintf(h->what, sizeof(h->what), "%s", what);
	snprintf(h->path, sizeof(h->path), "%s", path);
	return 1;
}

int pools_delete(struct store *st, const char *name, char *err, size_t errlen)
{
	struct store_pool p;
	struct vm_def *defs = NULL;
	size_t n = 0;
	int r = pools_get(st, name, &p, err, errlen);

	if (r)
		return r;
	r = store_vm_list(st, &defs, &n);
	if (r)
		error_set(err, errlen, "cannot read the VMs from the store: %s", strerror(-r));
	for (size_t i = 0; !r && i < n; i++) {
		struct held h = {.p = &p};
		int u = vm_files_each(st, &defs[i], held_by, &h);

		if (u > 0) {
			error_set(
				err, errlen,
				"pool '%s' holds files of VM '%s': %s (its %s); give the VM other "
				"files first",
				name, defs[i].name, h.path, h.what);
			r = -EBUSY;
		} else if (u < 0) {
			error_set(err, errlen,
				  "cannot tell which files VM '%s' uses (%s): pool '%s' is kept",
				  defs[i].name, strerror(-u), name);
			r = u;
		}
	}
	if (!r && !strcmp(name, POOL_DEFAULT)) {
		error_set(err, errlen, "the pool '%s' cannot be deleted", POOL_DEFAULT);
		r = -EBUSY;
	}
	if (!r)
		r = store_pool_delete(st, name);
	if (!r)
		log_info("storage pool '%s' deleted (its files stay)", name);
	store_vm_list_free(defs, n);
	store_pool_free(&p);
	return r;
}
