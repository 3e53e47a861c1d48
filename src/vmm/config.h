/* SPDX-License-Identifier: Apache-2.0 */
/* keel-vmm's description of one VM: parsed from the command line, validated here. */
#ifndef KEEL_VMM_CONFIG_H
#define KEEL_VMM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_MAX_CPUS	      255 /* xAPIC IDs 0..254; 255 is the broadcast ID */
#define CONFIG_MIN_MEMORY     (2ull << 20)
#define CONFIG_DEFAULT_MEMORY (512ull << 20)

enum chardev_kind { CHARDEV_STDIO, CHARDEV_FILE, CHARDEV_UNIX, CHARDEV_OFF };

struct chardev_spec {
	enum chardev_kind kind;
	const char *path; /* file: and unix: */
};

#define CONFIG_MAX_DISKS 8
#define CONFIG_MAX_NETS	 8

/* --disk path=FILE[,readonly=on][,serial=STRING] */
struct disk_spec {
	char path[4096];
	bool readonly;
	char serial[21]; /* virtio-blk's id: at most 20 bytes */
};

/* --net tap=IFNAME[,mac=MAC] */
struct net_spec {
	char tap[16];
	bool has_mac;
	uint8_t mac[6];
};

struct vm_config {
	const char *kernel;
	const char *initrd;
	const char *cmdline;
	unsigned cpus;
	uint64_t memory;
	struct chardev_spec serial;
	bool no_reboot;
	bool paused; /* --paused: the vCPUs wait for "resume" on the control socket */
	bool debug_exit;
	const char *control_path;
	const char *status_path;
	const char *restore_dir; /* --restore: carry on from a saved state (docs/state.md) */
	const char *name;
	struct disk_spec disks[CONFIG_MAX_DISKS];
	unsigned ndisks;
	struct net_spec nets[CONFIG_MAX_NETS];
	unsigned nnets;
	struct chardev_spec console; /* virtio-console; CHARDEV_OFF: no device */
	bool no_rng;
};

/*
 * Parse keel-vmm's arguments. Returns 0 on success, 1 if --help or --version was given
 * (text already printed), or -EINVAL with a one-line reason in err.
 */
int config_parse(int argc, char **argv, struct vm_config *cfg, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* One --disk or --net value; -EINVAL with a one-line reason in err. */
int config_parse_disk(const char *s, struct disk_spec *d, char *err, size_t errlen)
	__attribute__((warn_unused_result));
int config_parse_net(const char *s, struct net_spec *n, char *err, size_t errlen)
	__attribute__((warn_unused_result));
int config_parse_chardev(const char *s, struct chardev_spec *spec)
	__attribute__((warn_unused_result));

#endif
