/* SPDX-License-Identifier: Apache-2.0 */
/* keel-vmm: runs one VM. See docs/keel-vmm.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "vmm/config.h"
#include "vmm/fail_point.h"
#include "vmm/jail.h"
#include "vmm/vm.h"

int main(int argc, char **argv)
{
	static struct vm vm;
	struct vm_config cfg;
	char err[512];
	const char *verbose = getenv("KEEL_VMM_DEBUG");
	int r;

	log_init("keel-vmm", verbose && *verbose ? LOG_DEBUG : LOG_INFO);
	fail_point_from_env(); /* test builds only */
	r = config_parse(argc, argv, &cfg, err, sizeof(err));
	if (r)
		return r > 0 ? 0 : (log_err("%s", err), 1);
	/* While no other thread exists, so that every thread inherits it (jail.h). */
	r = jail_early(&cfg, err, sizeof(err));
	if (r) {
		log_err("%s", err);
		config_free(&cfg);
		return 1;
	}
	r = vm_create(&vm, &cfg, err, sizeof(err));
	if (r) {
		log_err("%s", err);
		vm_destroy(&vm);
		config_free(&cfg);
		return 1;
	}
	r = vm_run(&vm);
	vm_destroy(&vm);
	config_free(&cfg);
	return r;
}
