/* SPDX-License-Identifier: Apache-2.0 */
/* keel-vmm's description of one VM: parsed from the command line, validated here. */
#ifndef KEEL_VMM_CONFIG_H
#define KEEL_VMM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_MAX_CPUS       255 /* xAPIC IDs 0..254; 255 is the broadcast ID */
#define CONFIG_MIN_MEMORY     (2ull << 20)
#define CONFIG_DEFAULT_MEMORY (512ull << 20)

enum chardev_kind { CHARDEV_STDIO, CHARDEV_FILE, CHARDEV_UNIX, CHARDEV_OFF };

struct chardev_spec {
	enum chardev_kind kind;
	const char *path; /* file: and unix: */
};

struct vm_config {
	const char *kernel;
	const char *initrd;
	const char *cmdline;
	unsigned cpus;
	uint64_t memory;
	struct chardev_spec serial;
	bool no_reboot;
	bool debug_exit;
	const char *control_path;
	const char *status_path;
	const char *name;
};

/*
 * Parse keel-vmm's arguments. Returns 0 on success, 1 if --help or --version was given
 * (text already printed), or -EINVAL with a one-line reason in err.
 */
int config_parse(int argc, char **argv, struct vm_config *cfg, char *err, size_t errlen)
	__attribute__((warn_unused_result));
int config_parse_chardev(const char *s, struct chardev_spec *spec)
	__attribute__((warn_unused_result));

#endif
