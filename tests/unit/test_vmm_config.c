/* SPDX-License-Identifier: Apache-2.0 */
/* keel-vmm option parsing: defaults, every option, --config documents, PCI slots, and every
 * kind of bad value. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "vmm/config.h"
#include "lib/unix_socket.h"

static int parse(char **argv, int argc, struct vm_config *cfg, char *err)
{
	return config_parse(argc, argv, cfg, err, 256);
}

/* Files named on the command line are made absolute against the working directory, so
 * that a saved state's description names them wherever the restore runs. */
static void assert_cwd_path(const char *got, const char *rel)
{
	char want[4200], cwd[4096];

	assert_non_null(getcwd(cwd, sizeof(cwd)));
	snprintf(want, sizeof(want), "%s/%s", cwd, rel);
	assert_string_equal(got, want);
}

static void test_defaults(void **state)
{
	char *argv[] = {"keel-vmm", "--kernel", "vmlinuz", NULL};
	struct vm_config cfg;
	char err[256];

	assert_int_equal(parse(argv, 3, &cfg, err), 0);
	assert_cwd_path(cfg.def.kernel, "vmlinuz");
	assert_null(cfg.def.initrd);
	assert_null(cfg.def.cmdline);
	assert_int_equal(cfg.def.cpus, 1);
	assert_int_equal(cfg.def.memory, 512ull << 20);
	assert_int_equal(cfg.serial.kind, CHARDEV_STDIO);
	assert_false(cfg.no_reboot);
	assert_false(cfg.def.debug_exit);
	assert_true(cfg.def.rng.present);
	assert_int_equal(cfg.def.rng.pci_slot, 1);
	assert_false(cfg.def.console.present);
	config_free(&cfg);
}

static void test_all_options(void **state)
{
	char *argv[] = {"keel-vmm",
			"--kernel",
			"k",
			"--initrd",
			"i",
			"--cmdline",
			"console=ttyS0 quiet",
			"--cpus",
			"4",
			"--memory",
			"2G",
			"--serial",
			"unix:/run/s.sock",
			"--no-reboot",
			"--debug-exit",
			"--control",
			"/run/c",
			"--status-file",
			"/run/st",
			"--name",
			"vm1",
			NULL};
	struct vm_config cfg;
	char err[256];

	assert_int_equal(parse(argv, 21, &cfg, err), 0);
	assert_cwd_path(cfg.def.initrd, "i");
	assert_string_equal(cfg.def.cmdline, "console=ttyS0 quiet");
	assert_int_equal(cfg.def.cpus, 4);
	assert_int_equal(cfg.def.memory, 2ull << 30);
	assert_int_equal(cfg.serial.kind, CHARDEV_UNIX);
	assert_string_equal(cfg.serial.path, "/run/s.sock");
	assert_true(cfg.no_reboot);
	assert_true(cfg.def.debug_exit);
	assert_string_equal(cfg.control_path, "/run/c");
	assert_string_equal(cfg.status_path, "/run/st");
	assert_string_equal(cfg.def.name, "vm1");
	config_free(&cfg);
}

static void test_memory_units(void **state)
{
	char *a[] = {"keel-vmm", "--kernel", "k", "--memory", "256", NULL};
	char *b[] = {"keel-vmm", "--kernel", "k", "--memory=1536M", NULL};
	struct vm_config cfg;
	char err[256];

	assert_int_equal(parse(a, 5, &cfg, err), 0);
	assert_int_equal(cfg.def.memory, 256ull << 20); /* plain numbers are MiB */
	config_free(&cfg);
	assert_int_equal(parse(b, 4, &cfg, err), 0);
	assert_int_equal(cfg.def.memory, 1536ull << 20);
	config_free(&cfg);
}

/* Devices without slot= get the lowest free slots in the order keel always used (disks,
 * NICs, console, rng); slot= pins one, and the others flow around it. */
static void test_device_slots(void **state)
{
	char *a[] = {"keel-vmm",
		     "--kernel",
		     "k",
		     "--disk",
		     "path=/d0",
		     "--disk",
		     "path=/d1,serial=s1,readonly=on",
		     "--net",
		     "tap=t0,mac=02:00:00:00:00:01",
		     "--console",
		     "file:/tmp/c",
		     NULL};
	char *b[] = {"keel-vmm", "--kernel",	  "k",	   "--disk", "path=/d0,slot=7",
		     "--net",	 "tap=t0,slot=2", "--net", "tap=t1", NULL};
	char *clash[] = {"keel-vmm", "--kernel",      "k", "--disk", "path=/d0,slot=3",
			 "--net",    "tap=t0,slot=3", NULL};
	char *bad[] = {"keel-vmm", "--kernel", "k", "--disk", "path=/d0,slot=31", NULL};
	struct vm_config cfg;
	char err[256];

	assert_int_equal(parse(a, 11, &cfg, err), 0);
	assert_int_equal(cfg.def.ndisks, 2);
	assert_int_equal(cfg.def.disks[0].pci_slot, 1);
	assert_int_equal(cfg.def.disks[1].pci_slot, 2);
	assert_true(cfg.def.disks[1].readonly);
	assert_string_equal(cfg.def.disks[1].serial, "s1");
	assert_int_equal(cfg.def.nics[0].pci_slot, 3);
	assert_string_equal(cfg.def.nics[0].mac, "02:00:00:00:00:01");
	assert_true(cfg.def.console.present);
	assert_int_equal(cfg.def.console.pci_slot, 4);
	assert_int_equal(cfg.def.rng.pci_slot, 5);
	config_free(&cfg);

	assert_int_equal(parse(b, 9, &cfg, err), 0);
	assert_int_equal(cfg.def.disks[0].pci_slot, 7);
	assert_int_equal(cfg.def.nics[0].pci_slot, 2);
	assert_int_equal(cfg.def.nics[1].pci_slot, 1);
	assert_int_equal(cfg.def.rng.pci_slot, 3);
	/* An adapter without mac= has its stable default in the description. */
	assert_memory_equal(cfg.def.nics[1].mac, "52:54:00:", 9);
	config_free(&cfg);

	assert_int_equal(parse(clash, 7, &cfg, err), -EINVAL);
	assert_non_null(strstr(err, "both ask for PCI slot 3"));
	assert_int_equal(parse(bad, 5, &cfg, err), -EINVAL);
	assert_non_null(strstr(err, "slot=1..30"));
}

/* An adapter's data path (nets[].vhost, --net ...,vhost=): auto by default, off or on, the same
 * in the description's JSON and back; another word refused saying what is allowed. A
 * /dev/vhost-net for an adapter the VM does not have is refused. */
static void test_net_vhost(void **state)
{
	char *a[] = {"keel-vmm", "--kernel", "k",     "--net",		 "tap=t0,vhost=off",
		     "--net",	 "tap=t1",   "--net", "tap=t2,vhost=on", NULL};
	char *bad[] = {"keel-vmm", "--kernel", "k", "--net", "tap=t0,vhost=maybe", NULL};
	char fdarg[32];
	char *extra[] = {"keel-vmm", "--kernel", "k", "--net", "tap=t0", "--fd", fdarg, NULL};
	struct vm_config cfg;
	struct vm_def back;
	json_object *j, *nets, *v;
	char err[256];
	int fd = open("/dev/null", O_RDONLY);

	assert_int_equal(parse(a, 9, &cfg, err), 0);
	assert_int_equal(cfg.def.nics[0].vhost, VM_VHOST_OFF);
	assert_int_equal(cfg.def.nics[1].vhost, VM_VHOST_AUTO);
	assert_int_equal(cfg.def.nics[2].vhost, VM_VHOST_ON);
	j = vmdef_to_json(&cfg.def);
	assert_true(json_object_object_get_ex(j, "nets", &nets));
	assert_true(json_object_object_get_ex(json_object_array_get_idx(nets, 0), "vhost", &v));
	assert_string_equal(json_object_get_string(v), "off");
	assert_false(json_object_object_get_ex(json_object_array_get_idx(nets, 1), "vhost", NULL));
	vmdef_init(&back);
	assert_int_equal(vmdef_apply_json(&back, j, VMDEF_JSON_DOCUMENT, err, sizeof(err)), 0);
	assert_int_equal(back.nics[0].vhost, VM_VHOST_OFF);
	assert_int_equal(back.nics[1].vhost, VM_VHOST_AUTO);
	assert_int_equal(back.nics[2].vhost, VM_VHOST_ON);
	assert_null(vmdef_hw_change(&cfg.def, &back));
	vmdef_free(&back);
	json_object_object_add(json_object_array_get_idx(nets, 1), "vhost",
			       json_object_new_string("fast"));
	vmdef_init(&back);
	assert_int_equal(vmdef_apply_json(&back, j, VMDEF_JSON_DOCUMENT, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "nets[1].vhost 'fast' is not auto, off or on"));
	vmdef_free(&back);
	json_object_put(j);
	config_free(&cfg);

	assert_int_equal(parse(bad, 5, &cfg, err), -EINVAL);
	assert_non_null(strstr(err, "vhost=auto|off|on"));
	assert_true(fd >= 3);
	snprintf(fdarg, sizeof(fdarg), "vhost.1=%d", fd);
	assert_int_equal(parse(extra, 7, &cfg, err), -EINVAL);
	assert_non_null(strstr(err, "--fd vhost.1: the VM has 1 network card"));
	/* One /dev/vhost-net per queue pair: vhost.0.q1 for a card of one pair is refused. */
	snprintf(fdarg, sizeof(fdarg), "vhost.0.q1=%d", fd);
	assert_int_equal(parse(extra, 7, &cfg, err), -EINVAL);
	assert_non_null(strstr(err, "--fd vhost.0.q1: that network card has 1 queue pair"));
	snprintf(fdarg, sizeof(fdarg), "vhost.0.q8=%d", fd);
	assert_int_equal(parse(extra, 7, &cfg, err), -EINVAL);
	assert_non_null(strstr(err, "expected NAME=N"));
	snprintf(fdarg, sizeof(fdarg), "vhost.0=%d", fd);
	assert_int_equal(parse(extra, 7, &cfg, err), 0);
	assert_int_equal(cfg.vhost_fds[0][0], fd);
	config_free(&cfg);
	close(fd);
}

/* What a saved state must match (vmdef_guest_change): each device the guest saw, found by
 * its PCI slot, with what the guest saw of it; host wiring may change. And what needs the VM
 * off (vmdef_hw_change). Both are driven by the description's table of device kinds. */
/* Which adapters of a running VM keeld moves (vmdef_net_move_change): the same adapters (MAC,
 * slot) on switches whose switch or switch settings differ, and nothing else that differs. */
static void test_net_move_change(void **state)
{
	static struct vm_def a, b;

	vmdef_init(&a);
	a.nnics = 2;
	for (unsigned i = 0; i < 2; i++) {
		snprintf(a.nics[i].sw, sizeof(a.nics[i].sw), "%s", i ? "wan" : "lan");
		snprintf(a.nics[i].mac, sizeof(a.nics[i].mac), "02:00:00:00:00:0%u", i + 1);
		vmdef_switch_tap(a.nics[i].mac, a.nics[i].tap);
		a.nics[i].pci_slot = (uint8_t)(3 + i);
	}
	b = a;
	b.nics[0].tap[0] = '\0'; /* as a request has it: keeld names the tap after the MAC */
	assert_int_equal(vmdef_net_move_change(&a, &b), 0);
	snprintf(b.nics[0].sw, sizeof(b.nics[0].sw), "other");
	assert_int_equal(vmdef_net_move_change(&a, &b), 1);
	b.nics[1].vlan = 10;
	b.nics[1].router_guard = true;
	assert_int_equal(vmdef_net_move_change(&a, &b), 3);
	b.cpus = 2; /* and another change: the VM must be off */
	assert_int_equal(vmdef_net_move_change(&a, &b), 0);
	b.cpus = a.cpus;
	snprintf(b.nics[1].mac, sizeof(b.nics[1].mac), "02:00:00:00:00:09"); /* another adapter */
	assert_int_equal(vmdef_net_move_change(&a, &b), 0);
	b.nics[1] = a.nics[1];
	b.nics[1].pci_slot = 9;
	assert_int_equal(vmdef_net_move_change(&a, &b), 0);
	b.nics[1] = a.nics[1];
	b.nics[1].sw[0] = '\0'; /* off the switch onto a tap of its own */
	snprintf(b.nics[1].tap, sizeof(b.nics[1].tap), "tap9");
	assert_int_equal(vmdef_net_move_change(&a, &b), 0);
	b.nics[1] = a.nics[1];
	b.nnics = 1;
	assert_int_equal(vmdef_net_move_change(&a, &b), 0);
	b = a; /* port mirroring changed alone: its adapter "moves" on the same switch */
	b.nics[1].port_mirroring = VM_MIRROR_SOURCE;
	assert_int_equal(vmdef_net_move_change(&a, &b), 2);
	vmdef_free(&a);
}

/* The firmware's boot menu: --boot-menu (off without it), written as "boot_menu" and read
 * back; a change needs the VM off (a hardware change); a VM that boots its kernel directly
 * has no firmware to offer one; the field is a boolean. */
static void test_boot_menu(void **state)
{
	char *argv[] = {"keel-vmm", "--firmware", "bios", "--boot-menu", NULL};
	char *direct[] = {"keel-vmm", "--kernel", "/k", "--boot-menu", NULL};
	struct vm_config cfg;
	struct vm_def back;
	json_object *j, *v;
	char err[256] = "";

	(void)state;
	assert_int_equal(config_parse(3, argv, &cfg, err, sizeof(err)), 0);
	assert_false(cfg.def.boot_menu);
	j = vmdef_to_json(&cfg.def);
	assert_true(json_object_object_get_ex(j, "boot_menu", &v));
	assert_false(json_object_get_boolean(v));
	json_object_put(j);
	config_free(&cfg);
	assert_int_equal(config_parse(4, argv, &cfg, err, sizeof(err)), 0);
	assert_true(cfg.def.boot_menu);
	j = vmdef_to_json(&cfg.def);
	assert_true(json_object_object_get_ex(j, "boot_menu", &v));
	assert_true(json_object_get_boolean(v));
	vmdef_init(&back);
	assert_int_equal(vmdef_apply_json(&back, j, VMDEF_JSON_DOCUMENT, err, sizeof(err)), 0);
	assert_true(back.boot_menu);
	assert_null(vmdef_hw_change(&cfg.def, &back));
	back.boot_menu = false;
	assert_string_equal(vmdef_hw_change(&cfg.def, &back), "boot_menu");
	vmdef_free(&back);
	json_object_object_add(j, "boot_menu", json_object_new_string("yes"));
	vmdef_init(&back);
	assert_int_equal(vmdef_apply_json(&back, j, VMDEF_JSON_DOCUMENT, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "boot_menu"));
	vmdef_free(&back);
	json_object_put(j);
	config_free(&cfg);
	assert_int_equal(config_parse(4, direct, &cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "a 'boot_menu' is the firmware's"));
	config_free(&cfg);
}

/* The one line keeld and keel-vmm give for a missing Debian firmware file names the
 * generation, the file and the package to install; a short buffer is cut, not overrun. */
static void check_firmware_missing(void)
{
	struct vm_def def = {.firmware = VM_FIRMWARE_BIOS};
	char msg[256], small[16];

	vmdef_firmware_missing(&def, msg, sizeof(msg));
	assert_string_equal(msg, "Generation 1 (BIOS)'s firmware file "
				 "/usr/share/seabios/bios-256k.bin is missing: install Debian's "
				 "'seabios' package");
	def.firmware = VM_FIRMWARE_UEFI;
	vmdef_firmware_missing(&def, msg, sizeof(msg));
	assert_string_equal(msg, "Generation 2 (UEFI)'s firmware file "
				 "/usr/share/OVMF/OVMF_CODE_4M.fd is missing: install Debian's "
				 "'ovmf' package");
	vmdef_firmware_missing(&def, small, sizeof(small));
	assert_string_equal(small, "Generation 2 (U");
	vmdef_firmware_missing(&def, NULL, 0);
}

/* The one line keeld (a VM's first store) and keel-vmm (a VM without a store file) give when
 * Debian's variable store template is missing; a short buffer is cut, not overrun. */
static void check_vars_template_missing(void)
{
	char msg[256], small[16];

	vmdef_vars_template_missing(msg, sizeof(msg));
	assert_string_equal(msg, "UEFI variable store template /usr/share/OVMF/OVMF_VARS_4M.fd "
				 "is missing: install Debian's 'ovmf' package");
	vmdef_vars_template_missing(small, sizeof(small));
	assert_string_equal(small, "UEFI variable s");
	vmdef_vars_template_missing(NULL, 0);
}

/* A firmware VM: keel-vmm's options fill the description (the generation, the firmware, the
 * store, the boot order); keeld (vmdef_validate) checks the firmware file is there; the
 * document writes "generation" and round-trips; the rules between the fields. */
static void test_firmware(void **state)
{
	char *argv[] = {"keel-vmm", "--firmware", "uefi=/fw/code.fd", "--nvram",   "/vm/vars.fd",
			"--dvd",    "/x.iso",	  "--boot-order",     "dvd,disk0", NULL};
	char *bad_order[] = {"keel-vmm", "--firmware", "bios", "--boot-order", "dvd,dvd", NULL};
	char *direct_order[] = {"keel-vmm", "--kernel", "/k", "--boot-order", "disk", NULL};
	struct vm_config cfg;
	struct vm_def back;
	json_object *j, *v;
	char err[256] = "";

	assert_int_equal(config_parse(5, bad_order, &cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "'dvd' is named twice"));
	config_free(&cfg);
	assert_int_equal(config_parse(5, direct_order, &cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "boots its kernel directly has none"));
	config_free(&cfg);
	/* disk0 names a disk the VM lacks. */
	assert_int_equal(config_parse(9, argv, &cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "has no disk0"));
	config_free(&cfg);
	argv[8] = "dvd,disk";
	assert_int_equal(config_parse(9, argv, &cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "has no disk"));
	config_free(&cfg);
	argv[8] = "dvd";
	assert_int_equal(config_parse(9, argv, &cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg.def.nboot, 1);
	j = vmdef_to_json(&cfg.def);
	assert_true(json_object_object_get_ex(j, "generation", &v));
	assert_int_equal(json_object_get_int(v), 2);
	assert_false(json_object_object_get_ex(j, "firmware", NULL));
	assert_false(json_object_object_get_ex(j, "kernel", NULL));
	vmdef_init(&back);
	assert_int_equal(vmdef_apply_json(&back, j, VMDEF_JSON_DOCUMENT, err, sizeof(err)), 0);
	assert_int_equal(back.firmware, VM_FIRMWARE_UEFI);
	assert_int_equal(back.nboot, 1);
	assert_int_equal(back.boot_order[0].kind, VM_BOOT_DVD);
	assert_null(vmdef_hw_change(&cfg.def, &back));
	back.nboot = 0;
	assert_string_equal(vmdef_hw_change(&cfg.def, &back), "boot_order");
	back.firmware = VM_FIRMWARE_BIOS;
	assert_string_equal(vmdef_hw_change(&cfg.def, &back), "generation");
	/* Generation 1 has no NVRAM; generation is 1 or 2. */
	assert_int_equal(vmdef_check(&back, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "Generation 1 (BIOS) has none"));
	vmdef_free(&back);
	json_object_object_add(j, "generation", json_object_new_int(3));
	vmdef_init(&back);
	assert_int_equal(vmdef_apply_json(&back, j, VMDEF_JSON_DOCUMENT, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "generation"));
	json_object_object_add(j, "generation", json_object_new_int(2));
	/* The integration services turned off: names, written back in service order. */
	json_object_object_add(j, "integration_disabled",
			       json_tokener_parse("[\"exec\", \"heartbeat\"]"));
	assert_int_equal(vmdef_apply_json(&back, j, VMDEF_JSON_DOCUMENT, err, sizeof(err)), 0);
	assert_int_equal(back.integration_off, 1u << 0 | 1u << 4);
	{
		json_object *w = vmdef_to_json(&back), *a;

		assert_true(json_object_object_get_ex(w, "integration_disabled", &a));
		assert_string_equal(json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN),
				    "[\"heartbeat\",\"exec\"]");
		json_object_put(w);
	}
	json_object_object_add(j, "integration_disabled", json_tokener_parse("[\"tea\"]"));
	assert_int_equal(vmdef_apply_json(&back, j, VMDEF_JSON_DOCUMENT, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "item 0 is not a service"));
	json_object_object_del(j, "integration_disabled");
	/* 'firmware', the older name of 'generation': read in documents (old saved states),
	 * refused when it disagrees with 'generation', refused in requests. */
	{
		json_object *req = json_tokener_parse("{\"firmware\": \"uefi\"}");

		assert_int_equal(vmdef_apply_json(&back, req, VMDEF_JSON_REQUEST, err, sizeof(err)),
				 -EINVAL);
		assert_non_null(strstr(err, "unknown field 'firmware'"));
		json_object_put(req);
	}
	json_object_object_add(j, "firmware", json_object_new_string("uefi"));
	back.firmware = VM_FIRMWARE_NONE;
	assert_int_equal(vmdef_apply_json(&back, j, VMDEF_JSON_DOCUMENT, err, sizeof(err)), 0);
	assert_int_equal(back.firmware, VM_FIRMWARE_UEFI);
	json_object_object_add(j, "generation", json_object_new_int(1));
	assert_int_equal(vmdef_apply_json(&back, j, VMDEF_JSON_DOCUMENT, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "disagree"));
	json_object_object_del(j, "generation");
	json_object_object_add(j, "firmware", json_object_new_string("bios"));
	assert_int_equal(vmdef_apply_json(&back, j, VMDEF_JSON_DOCUMENT, err, sizeof(err)), 0);
	assert_int_equal(back.firmware, VM_FIRMWARE_BIOS);
	json_object_object_add(j, "firmware", json_object_new_string("floppy"));
	assert_int_equal(vmdef_apply_json(&back, j, VMDEF_JSON_DOCUMENT, err, sizeof(err)),
			 -EINVAL);
	json_object_object_del(j, "firmware");
	json_object_object_add(j, "generation", json_object_new_int(2));
	vmdef_free(&back);
	json_object_put(j);
	config_free(&cfg);

	assert_int_equal(config_parse(5, argv, &cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg.def.firmware, VM_FIRMWARE_UEFI);
	assert_string_equal(cfg.def.firmware_file, "/fw/code.fd");
	assert_string_equal(cfg.def.nvram, "/vm/vars.fd");
	assert_null(cfg.def.kernel);
	assert_string_equal(vmdef_firmware_file(&cfg.def), "/fw/code.fd");
	strcpy(cfg.def.name, "fw");
	assert_int_equal(vmdef_validate(&cfg.def, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "firmware file /fw/code.fd"));
	free(cfg.def.firmware_file);
	cfg.def.firmware_file = NULL;
	assert_string_equal(vmdef_firmware_file(&cfg.def), VMDEF_OVMF_CODE_FILE);
	cfg.def.firmware = VM_FIRMWARE_BIOS;
	assert_string_equal(vmdef_firmware_file(&cfg.def), VMDEF_SEABIOS_FILE);
	config_free(&cfg);
	check_firmware_missing();
	check_vars_template_missing();
}

/* An adapter's queue pairs: one per vCPU by default (at most 8), queues=N from 1 to the
 * vCPUs, a tap queue passed per pair or none, and a save's recorded pairs against the
 * description (a save without them: one pair, from before multi-queue). */
static void test_net_queues(void **state)
{
	char *two[] = {"keel-vmm", "--kernel", "k", "--cpus", "2", "--net", "tap=t0", NULL};
	char *many[] = {"keel-vmm", "--kernel", "k", "--cpus", "16", "--net", "tap=t0", NULL};
	char *one[] = {"keel-vmm", "--kernel",	      "k", "--cpus", "2",
		       "--net",	   "tap=t0,queues=1", NULL};
	char *over[] = {"keel-vmm", "--kernel",	       "k", "--cpus", "2",
			"--net",    "tap=t0,queues=3", NULL};
	char *nine[] = {"keel-vmm", "--kernel",	       "k", "--cpus", "16",
			"--net",    "tap=t0,queues=9", NULL};
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC), fd2 = dup(fd);
	char q0[32], q1[32], q2[32], err[256];
	struct vm_config cfg, saved;
	char why[512];

	(void)state;
	assert_true(fd >= 3 && fd2 >= 3);
	assert_int_equal(parse(two, 7, &cfg, err), 0);
	assert_int_equal(vmdef_nic_queues(&cfg.def, 0), 2);
	config_free(&cfg);
	assert_int_equal(parse(many, 7, &cfg, err), 0);
	assert_int_equal(vmdef_nic_queues(&cfg.def, 0), 8);
	config_free(&cfg);
	assert_int_equal(parse(one, 7, &cfg, err), 0);
	assert_int_equal(vmdef_nic_queues(&cfg.def, 0), 1);
	config_free(&cfg);
	assert_int_equal(parse(over, 7, &cfg, err), -EINVAL);
	assert_non_null(strstr(err, "queues 3 is more than the VM's 2 vCPUs"));
	assert_int_equal(parse(nine, 7, &cfg, err), -EINVAL);
	assert_non_null(strstr(err, "queues=1..8"));
	/* The tap's queues: all of them or none. */
	snprintf(q0, sizeof(q0), "net.0=%d", fd);
	snprintf(q1, sizeof(q1), "net.0.q1=%d", fd2);
	snprintf(q2, sizeof(q2), "net.0.q2=%d", fd2);
	{
		char *a[] = {"keel-vmm", "--kernel", "k", "--cpus", "2", "--net",
			     "tap=t0",	 "--fd",     q0,  "--fd",   q1,	 NULL};

		assert_int_equal(parse(a, 11, &cfg, err), 0);
		assert_int_equal(cfg.net_fds[0][0], fd);
		assert_int_equal(cfg.net_fds[0][1], fd2);
		config_free(&cfg);
	}
	{
		char *a[] = {"keel-vmm", "--kernel", "k",    "--cpus", "2",
			     "--net",	 "tap=t0",   "--fd", q0,       NULL};

		assert_int_equal(parse(a, 9, &cfg, err), -EINVAL);
		assert_non_null(strstr(err, "--fd net.0.q1 is missing"));
	}
	{
		char *a[] = {"keel-vmm", "--kernel", "k",    "--cpus", "2",
			     "--net",	 "tap=t0",   "--fd", q1,       NULL};

		assert_int_equal(parse(a, 9, &cfg, err), -EINVAL);
		assert_non_null(strstr(err, "--fd net.0.q1 without --fd net.0"));
	}
	{
		char *a[] = {"keel-vmm",	"--kernel", "k", "--cpus", "2", "--net",
			     "tap=t0,queues=1", "--fd",	    q0,	 "--fd",   q2,	NULL};

		assert_int_equal(parse(a, 11, &cfg, err), -EINVAL);
		assert_non_null(strstr(err, "--fd net.0.q2: that network card has 1 queue pair"));
	}
	/* keeld's /dev/vhost-net, one per pair (vhost.0, vhost.0.q1): all or none. */
	{
		int v0 = dup(fd), v1 = dup(fd);
		char h0[32], h1[32];
		char *a[] = {"keel-vmm", "--kernel", "k", "--cpus", "2", "--net", "tap=t0", "--fd",
			     q0,	 "--fd",     q1,  "--fd",   h0,	 "--fd",  h1,	    NULL};

		assert_true(v0 >= 3 && v1 >= 3);
		snprintf(h0, sizeof(h0), "vhost.0=%d", v0);
		snprintf(h1, sizeof(h1), "vhost.0.q1=%d", v1);
		assert_int_equal(parse(a, 15, &cfg, err), 0);
		assert_int_equal(cfg.vhost_fds[0][0], v0);
		assert_int_equal(cfg.vhost_fds[0][1], v1);
		config_free(&cfg);
		assert_int_equal(parse(a, 13, &cfg, err), -EINVAL);
		assert_non_null(strstr(err, "--fd vhost.0.q1 is missing: network card 0 has 2 "
					    "queue pairs, a /dev/vhost-net each"));
		a[12] = h1;
		assert_int_equal(parse(a, 13, &cfg, err), -EINVAL);
		assert_non_null(strstr(err, "--fd vhost.0.q1 without --fd vhost.0"));
		close(v0);
		close(v1);
	}
	/* A save records the pairs; one without them had one pair. */
	assert_int_equal(parse(two, 7, &cfg, err), 0);
	assert_int_equal(parse(two, 7, &saved, err), 0);
	saved.def.nics[0].queues = 2; /* as the save writes it */
	assert_false(vmdef_guest_change(&saved.def, &cfg.def, why, sizeof(why)));
	saved.def.nics[0].queues = 0; /* before multi-queue */
	assert_true(vmdef_guest_change(&saved.def, &cfg.def, why, sizeof(why)));
	assert_non_null(strstr(why, "saved with 1 queue pair (by a keel-vmm before multi-queue)"));
	cfg.def.nics[0].queues = 1;
	assert_false(vmdef_guest_change(&saved.def, &cfg.def, why, sizeof(why)));
	config_free(&cfg);
	config_free(&saved);
	close(fd);
	close(fd2);
}

static void test_guest_change(void **state)
{
	char *saved_a[] = {"keel-vmm",
			   "--kernel",
			   "k",
			   "--disk",
			   "path=/d0,serial=s0",
			   "--net",
			   "tap=t0,mac=02:00:00:00:00:01",
			   NULL};
	char *renamed[] = {"keel-vmm",
			   "--kernel",
			   "k",
			   "--disk",
			   "path=/copy,serial=s0",
			   "--net",
			   "tap=other,mac=02:00:00:00:00:01",
			   NULL};
	char *serial[] = {"keel-vmm",
			  "--kernel",
			  "k",
			  "--disk",
			  "path=/d0,serial=s9",
			  "--net",
			  "tap=t0,mac=02:00:00:00:00:01",
			  NULL};
	char *mac[] = {"keel-vmm",
		       "--kernel",
		       "k",
		       "--disk",
		       "path=/d0,serial=s0",
		       "--net",
		       "tap=t0,mac=02:00:00:00:00:02",
		       NULL};
	char *moved[] = {"keel-vmm",
			 "--kernel",
			 "k",
			 "--disk",
			 "path=/d0,serial=s0,slot=9",
			 "--net",
			 "tap=t0,mac=02:00:00:00:00:01",
			 NULL};
	char *nodisk[] = {"keel-vmm", "--kernel", "k", "--net", "tap=t0,mac=02:00:00:00:00:01",
			  NULL};
	char *norng[] = {"keel-vmm",
			 "--kernel",
			 "k",
			 "--disk",
			 "path=/d0,serial=s0",
			 "--net",
			 "tap=t0,mac=02:00:00:00:00:01",
			 "--no-rng",
			 NULL};
	struct vm_config a, b;
	char err[256], why[256];

	assert_int_equal(parse(saved_a, 7, &a, err), 0);
	assert_int_equal(parse(renamed, 7, &b, err), 0);
	assert_false(vmdef_guest_change(&a.def, &b.def, why, sizeof(why)));
	assert_string_equal(vmdef_hw_change(&a.def, &b.def), "disks");
	config_free(&b);

	assert_int_equal(parse(serial, 7, &b, err), 0);
	assert_true(vmdef_guest_change(&a.def, &b.def, why, sizeof(why)));
	assert_non_null(strstr(why, "disk at PCI slot 1 was saved with serial 's0'"));
	config_free(&b);

	assert_int_equal(parse(mac, 7, &b, err), 0);
	assert_true(vmdef_guest_change(&a.def, &b.def, why, sizeof(why)));
	assert_non_null(strstr(why, "saved with MAC 02:00:00:00:00:01"));
	assert_string_equal(vmdef_hw_change(&a.def, &b.def), "nets");
	config_free(&b);

	assert_int_equal(parse(moved, 7, &b, err), 0);
	assert_true(vmdef_guest_change(&a.def, &b.def, why, sizeof(why)));
	assert_non_null(strstr(why, "a device of 'disks' at PCI slot 1"));
	config_free(&b);

	assert_int_equal(parse(nodisk, 5, &b, err), 0);
	assert_true(vmdef_guest_change(&a.def, &b.def, why, sizeof(why)));
	assert_non_null(strstr(why, "1 device in 'disks'; its description has 0"));
	config_free(&b);

	assert_int_equal(parse(norng, 8, &b, err), 0);
	assert_true(vmdef_guest_change(&a.def, &b.def, why, sizeof(why)));
	assert_non_null(strstr(why, "in 'rng'"));
	assert_string_equal(vmdef_hw_change(&a.def, &b.def), "rng");
	config_free(&b);
	config_free(&a);
}

/* A disk's format comes from format= or from its name, never from the file (it is not even
 * opened here). */
static void test_disk_formats(void **state)
{
	char *a[] = {"keel-vmm",
		     "--kernel",
		     "k",
		     "--disk",
		     "path=/a.vhdx",
		     "--disk",
		     "path=/b.AVHDX",
		     "--disk",
		     "path=/c.img",
		     "--disk",
		     "path=/d.img,format=vhdx",
		     "--disk",
		     "path=/e.vhdx,format=raw,cache=writeback",
		     "--disk",
		     "path=/f.img,cache=unsafe",
		     NULL};
	char *bad[] = {"keel-vmm", "--kernel", "k", "--disk", "path=/a,format=qcow2", NULL};
	char *badcache[] = {"keel-vmm", "--kernel", "k", "--disk", "path=/a,cache=directsync",
			    NULL};
	struct vm_config cfg;
	char err[256];

	assert_int_equal(parse(a, 15, &cfg, err), 0);
	assert_int_equal(cfg.def.disks[0].format, VM_DISK_VHDX);
	assert_int_equal(cfg.def.disks[1].format, VM_DISK_VHDX);
	assert_int_equal(cfg.def.disks[2].format, VM_DISK_RAW);
	assert_int_equal(cfg.def.disks[3].format, VM_DISK_VHDX);
	assert_int_equal(cfg.def.disks[4].format, VM_DISK_RAW);
	/* cache: none by default */
	assert_int_equal(cfg.def.disks[0].cache, VM_DISK_CACHE_NONE);
	assert_int_equal(cfg.def.disks[4].cache, VM_DISK_CACHE_WRITEBACK);
	assert_int_equal(cfg.def.disks[5].cache, VM_DISK_CACHE_UNSAFE);
	config_free(&cfg);
	assert_int_equal(parse(bad, 5, &cfg, err), -EINVAL);
	assert_non_null(strstr(err, "format=raw|vhdx"));
	assert_int_equal(parse(badcache, 5, &cfg, err), -EINVAL);
	assert_non_null(strstr(err, "cache=none|writeback|unsafe"));
}

/* The description doc is refused with an error that says msg. */
static void json_refused(const char *doc, const char *msg)
{
	struct vm_def def;
	json_object *o = json_tokener_parse(doc);
	char err[256];

	assert_non_null(o);
	vmdef_init(&def);
	assert_int_equal(vmdef_apply_json(&def, o, VMDEF_JSON_REQUEST, err, sizeof(err)), -EINVAL);
	if (!strstr(err, msg))
		fail_msg("%s: %s", doc, err);
	json_object_put(o);
	vmdef_free(&def);
}

/* A disk's QoS fields as its description writes them. */
static void assert_qos_json(json_object *d, int64_t max_iops, int64_t max_bw, int64_t min_iops)
{
	assert_int_equal(json_object_get_int64(json_object_object_get(d, "max_iops")), max_iops);
	assert_int_equal(json_object_get_int64(json_object_object_get(d, "max_bandwidth")), max_bw);
	assert_int_equal(json_object_get_int64(json_object_object_get(d, "min_iops")), min_iops);
}

/* Storage QoS on --disk and in a description: taken, written back, bad values refused with
 * what is wrong (docs/vm-config.md); on the SCSI controller's disks too, not on a DVD drive. */
static void test_disk_qos(void **state)
{
	char *a[] = {"keel-vmm",
		     "--kernel",
		     "k",
		     "--disk",
		     "path=/a.img,max-iops=500,max-bandwidth=50M,min-iops=100",
		     NULL};
	static const struct {
		const char *arg, *msg;
	} bad[] = {
		{"path=/a,max-iops=lots", "max-iops=N"},
		{"path=/a,max-iops=2000000000", "max-iops=N"},
		{"path=/a,max-bandwidth=5X", "max-bandwidth=BYTES"},
		{"path=/a,max-iops=10,min-iops=20", "min_iops 20 is above max_iops 10"},
		{"path=/a,bus=scsi,max-iops=10,min-iops=20", "min_iops 20 is above max_iops 10"},
	};
	static const struct {
		const char *json, *msg;
	} badjson[] = {
		{"{\"path\":\"/a\",\"max_iops\":-1}", "max_iops"},
		{"{\"path\":\"/a\",\"max_iops\":1.5}", "max_iops"},
		{"{\"path\":\"/a\",\"max_bandwidth\":\"50M\"}", "max_bandwidth"},
		{"{\"path\":\"/a\",\"max_iops\":5,\"min_iops\":6}", "min_iops 6 is above"},
	};
	/* The same on the SCSI controller's disks; a DVD drive has none. */
	static const struct {
		const char *json, *msg;
	} badlun[] = {
		{"{\"type\":\"disk\",\"path\":\"/a\",\"max_iops\":5,\"min_iops\":6}",
		 "scsi.luns[0]: min_iops 6 is above"},
		{"{\"type\":\"disk\",\"path\":\"/a\",\"max_bandwidth\":-1}", "max_bandwidth"},
		{"{\"type\":\"dvd\",\"path\":null,\"max_iops\":5}", "a DVD drive has only a path"},
	};
	char *sa[] = {"keel-vmm",
		      "--kernel",
		      "k",
		      "--disk",
		      "path=/s.img,bus=scsi,max-iops=300,max-bandwidth=20M,min-iops=50",
		      NULL};
	struct vm_config cfg;
	json_object *o, *d;
	char err[256], doc[160];

	assert_int_equal(parse(a, 5, &cfg, err), 0);
	assert_true(cfg.def.disks[0].max_iops == 500 && cfg.def.disks[0].max_bw == 50ull << 20 &&
		    cfg.def.disks[0].min_iops == 100);
	o = vmdef_to_json(&cfg.def);
	assert_qos_json(json_object_array_get_idx(json_object_object_get(o, "disks"), 0), 500,
			50 << 20, 100);
	json_object_put(o);
	config_free(&cfg);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *b[] = {"keel-vmm", "--kernel", "k", "--disk", (char *)bad[i].arg, NULL};

		assert_int_equal(parse(b, 5, &cfg, err), -EINVAL);
		if (!strstr(err, bad[i].msg))
			fail_msg("--disk %s: %s", bad[i].arg, err);
	}
	for (size_t i = 0; i < sizeof(badjson) / sizeof(badjson[0]); i++) {
		snprintf(doc, sizeof(doc), "{\"kernel\":\"/k\",\"disks\":[%s]}", badjson[i].json);
		json_refused(doc, badjson[i].msg);
	}
	assert_int_equal(parse(sa, 5, &cfg, err), 0);
	assert_int_equal(cfg.def.scsi.nluns, 1);
	assert_true(cfg.def.scsi.luns[0].disk.max_iops == 300 &&
		    cfg.def.scsi.luns[0].disk.max_bw == 20ull << 20 &&
		    cfg.def.scsi.luns[0].disk.min_iops == 50);
	o = vmdef_to_json(&cfg.def);
	d = json_object_object_get(json_object_object_get(o, "scsi"), "luns");
	assert_qos_json(json_object_array_get_idx(d, 0), 300, 20 << 20, 50);
	json_object_put(o);
	config_free(&cfg);
	for (size_t i = 0; i < sizeof(badlun) / sizeof(badlun[0]); i++) {
		snprintf(doc, sizeof(doc), "{\"kernel\":\"/k\",\"scsi\":{\"luns\":[%s]}}",
			 badlun[i].json);
		json_refused(doc, badlun[i].msg);
	}
}

/* --fd control|serial|console|vsock=N: a socket keeld bound at the path the worker serves;
 * one bound elsewhere, a file, or a socket the worker does not serve is refused. */
static void test_passed_sockets(void **state)
{
	char dir[] = "/tmp/keel-cfg-XXXXXX", ctl[64], ser[64], arg_ctl[32], arg_ser[32], copt[80],
	     sopt[80];
	struct vm_config cfg;
	char err[256];
	int cfd, sfd, nfd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(ctl, sizeof(ctl), "%s/control.sock", dir);
	snprintf(ser, sizeof(ser), "%s/serial.sock", dir);
	cfd = unix_bind_for(ctl, 0600, (gid_t)-1);
	sfd = unix_bind_for(ser, 0600, (gid_t)-1);
	assert_true(cfd >= 3 && sfd >= 3 && nfd >= 3);
	snprintf(copt, sizeof(copt), "--control=%s", ctl);
	snprintf(sopt, sizeof(sopt), "--serial=unix:%s", ser);
	snprintf(arg_ctl, sizeof(arg_ctl), "control=%d", cfd);
	snprintf(arg_ser, sizeof(arg_ser), "serial=%d", sfd);
	{
		char *a[] = {"keel-vmm", "--kernel", "k",    copt,    sopt,
			     "--fd",	 arg_ctl,    "--fd", arg_ser, NULL};

		assert_int_equal(parse(a, 9, &cfg, err), 0);
		assert_int_equal(cfg.control_fd, cfd);
		assert_int_equal(cfg.serial_fd, sfd);
		assert_int_equal(cfg.console_fd, -1);
		assert_int_equal(cfg.vsock_fd, -1);
		{ /* config_socket: the one list of what the worker serves, and where */
			int fd;

			assert_string_equal(config_socket(&cfg, CONFIG_SOCK_CONTROL, &fd), ctl);
			assert_int_equal(fd, cfd);
			assert_string_equal(config_socket(&cfg, CONFIG_SOCK_SERIAL, &fd), ser);
			assert_int_equal(fd, sfd);
			assert_null(config_socket(&cfg, CONFIG_SOCK_CONSOLE, &fd));
			assert_int_equal(fd, -1);
			assert_null(config_socket(&cfg, CONFIG_SOCK_VSOCK, &fd));
		}
		config_free(&cfg);
	}
	{ /* the serial socket given as the control socket: bound elsewhere */
		char *a[] = {"keel-vmm", "--kernel", "k", copt, "--fd", arg_ser, NULL};

		snprintf(arg_ser, sizeof(arg_ser), "control=%d", sfd);
		assert_int_equal(parse(a, 6, &cfg, err), -EINVAL);
		assert_non_null(strstr(err, "not a Unix stream socket bound to"));
		assert_non_null(strstr(err, "bound elsewhere or not at all"));
		snprintf(arg_ser, sizeof(arg_ser), "control=%d", nfd);
		assert_int_equal(parse(a, 6, &cfg, err), -EINVAL);
		assert_non_null(strstr(err, "not a Unix stream socket bound to"));
	}
	{ /* no --control: the worker serves no control socket */
		char *a[] = {"keel-vmm", "--kernel", "k", "--fd", arg_ctl, NULL};

		assert_int_equal(parse(a, 5, &cfg, err), -EINVAL);
		assert_non_null(strstr(err, "--fd control: the worker serves no control socket"));
	}
	{ /* a VM without virtio-vsock */
		char *a[] = {"keel-vmm", "--kernel", "k", "--fd", arg_ctl, NULL};

		snprintf(arg_ctl, sizeof(arg_ctl), "vsock=%d", cfd);
		assert_int_equal(parse(a, 5, &cfg, err), -EINVAL);
		assert_non_null(strstr(err, "--fd vsock: the worker serves no vsock socket"));
	}
	close(cfd);
	close(sfd);
	close(nfd);
	unlink(ctl);
	unlink(ser);
	rmdir(dir);
}

/* --fd NAME=N: a passed descriptor for a file the description names. */
static void test_passed_fds(void **state)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	char kern[32], initrd[32], disk[32], twice[32], high[32];
	struct vm_config cfg;
	char err[512];

	int fd2 = dup(fd); /* each passed file its own descriptor */

	assert_true(fd >= 3 && fd2 >= 3);
	snprintf(initrd, sizeof(initrd), "initrd=%d", fd);
	snprintf(kern, sizeof(kern), "kernel=%d", fd);
	snprintf(disk, sizeof(disk), "disk.1=%d", fd2);
	snprintf(twice, sizeof(twice), "disk.0=%d", fd);
	snprintf(high, sizeof(high), "disk.0=%d", 60000);
	{
		char *a[] = {"keel-vmm", "--kernel", "k",  "--disk", "path=/a", "--disk",
			     "path=/b",	 "--fd",     kern, "--fd",   disk,	NULL};

		assert_int_equal(parse(a, 11, &cfg, err), 0);
		assert_int_equal(cfg.kernel_fd, fd);
		assert_int_equal(cfg.initrd_fd, -1);
		assert_int_equal(cfg.disk_fds[0], -1);
		assert_int_equal(cfg.disk_fds[1], fd2);
		config_free(&cfg);
	}
	{ /* one descriptor given as two files: it would be closed twice */
		char *a[] = {"keel-vmm", "--kernel", "k",    "--disk", "path=/a",
			     "--fd",	 kern,	     "--fd", twice,    NULL};

		assert_int_equal(parse(a, 9, &cfg, err), -EINVAL);
		assert_non_null(strstr(err, "--fd disk.0: descriptor"));
		assert_non_null(strstr(err, "is already given"));
	}
	{
		char *a[] = {"keel-vmm", "--kernel", "k", "--fd", disk, NULL};

		assert_int_equal(parse(a, 5, &cfg, err), -EINVAL);
		assert_non_null(strstr(err, "--fd disk.1: the VM has 0 disks"));
	}
	{
		char *a[] = {"keel-vmm", "--kernel", "k",    "--disk", "path=/a",
			     "--fd",	 twice,	     "--fd", twice,    NULL};

		assert_int_equal(parse(a, 9, &cfg, err), -EINVAL);
		assert_non_null(strstr(err, "given twice"));
	}
	{
		char *a[] = {"keel-vmm", "--kernel", "k", "--disk", "path=/a", "--fd", high, NULL};

		assert_int_equal(parse(a, 7, &cfg, err), -EINVAL);
		assert_non_null(strstr(err, "an open descriptor"));
	}
	{
		char *a[] = {"keel-vmm", "--kernel", "k", "--fd", "disk.x=3", NULL};

		assert_int_equal(parse(a, 5, &cfg, err), -EINVAL);
		assert_non_null(strstr(err,
				       "expected NAME=N, N an open descriptor, 3 or above, "
				       "NAME one of kernel, initrd, kvm, firmware, nvram, "
				       "control, serial, console, vsock, config, status, state, "
				       "memory, vars, disk.I (I 0 to 15)"));
	}
	{
		char *a[] = {"keel-vmm", "--kernel", "k", "--fd", "lun.8=3", NULL};

		assert_int_equal(parse(a, 5, &cfg, err), -EINVAL);
		assert_non_null(strstr(err, "lun.I (0 to 7)"));
	}
	{
		char *a[] = {"keel-vmm", "--kernel", "k", "--fd", initrd, NULL};

		assert_int_equal(parse(a, 5, &cfg, err), -EINVAL);
		assert_non_null(strstr(err, "the VM has no initrd"));
	}
	/* A firmware VM's image and its store's directory (keeld's, sup_firmware.c). */
	{
		int dfd = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		char fw[32], nv[32], nvfile[32];
		char *a[] = {"keel-vmm", "--firmware", "uefi", "--nvram", "/tmp/v.fd",
			     "--fd",	 fw,	       "--fd", nv,	  NULL};
		char *direct[] = {"keel-vmm", "--kernel", "k", "--fd", fw, NULL};
		char *nostore[] = {"keel-vmm", "--firmware", "uefi", "--fd", nv, NULL};

		assert_true(dfd >= 3);
		snprintf(fw, sizeof(fw), "firmware=%d", fd);
		snprintf(nv, sizeof(nv), "nvram=%d", dfd);
		snprintf(nvfile, sizeof(nvfile), "nvram=%d", fd2);
		assert_int_equal(parse(a, 9, &cfg, err), 0);
		assert_int_equal(cfg.firmware_fd, fd);
		assert_int_equal(cfg.nvram_dir_fd, dfd);
		config_free(&cfg);
		a[8] = nvfile; /* a file, not its directory */
		assert_int_equal(parse(a, 9, &cfg, err), -EINVAL);
		assert_non_null(strstr(err, "not a directory"));
		assert_int_equal(parse(direct, 5, &cfg, err), -EINVAL);
		assert_non_null(strstr(err, "--fd firmware: the VM boots its kernel directly"));
		assert_int_equal(parse(nostore, 5, &cfg, err), -EINVAL);
		assert_non_null(strstr(err, "--fd nvram: the VM has no NVRAM file"));
		close(dfd);
	}
	close(fd2);
	close(fd);
}

/* --fd disk.I.pJ=N, lun.I.pJ=N: a passed VHDX disk's parents, in order, with their disk. */
static void test_chain_fds(void **state)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	char d0[32], p0[32], p1[32], l0[32], lp0[32];
	struct vm_config cfg;
	char err[256];

	int fd2 = dup(fd), fd3 = dup(fd);
	char dup0[32], dup1[32];

	assert_true(fd >= 3 && fd2 >= 3 && fd3 >= 3);
	snprintf(d0, sizeof(d0), "disk.0=%d", fd);
	snprintf(p0, sizeof(p0), "disk.0.p0=%d", fd2);
	snprintf(p1, sizeof(p1), "disk.0.p1=%d", fd3);
	snprintf(l0, sizeof(l0), "lun.0=%d", fd);
	snprintf(lp0, sizeof(lp0), "lun.0.p0=%d", fd2);
	snprintf(dup0, sizeof(dup0), "disk.0.p0=%d", fd);  /* the disk's own descriptor */
	snprintf(dup1, sizeof(dup1), "disk.0.p1=%d", fd2); /* the level above's */
	{
		char *a[] = {"keel-vmm", "--kernel", "k",    "--disk", "path=/a.vhdx",
			     "--fd",	 d0,	     "--fd", p0,       "--fd",
			     p1,	 NULL};

		assert_int_equal(parse(a, 11, &cfg, err), 0);
		assert_int_equal(cfg.disk_chains[0].n, 2);
		assert_int_equal(cfg.disk_chains[0].fd[1], fd3);
		assert_int_equal(cfg.disk_chains[1].n, 0);
		config_free(&cfg);
	}
	{ /* the disk's descriptor again as its parent, or one parent as two levels: refused
	   * (each would be closed twice) */
		char *a[] = {"keel-vmm", "--kernel", "k",    "--disk", "path=/a.vhdx",
			     "--fd",	 d0,	     "--fd", dup0,     NULL};
		char *b[] = {"keel-vmm", "--kernel", "k", "--disk", "path=/a.vhdx", "--fd",
			     d0,	 "--fd",     p0,  "--fd",   dup1,	    NULL};

		assert_int_equal(parse(a, 9, &cfg, err), -EINVAL);
		assert_non_null(strstr(err, "--fd disk.0.p0: descriptor"));
		assert_non_null(strstr(err, "is already given"));
		assert_int_equal(parse(b, 11, &cfg, err), -EINVAL);
		assert_non_null(strstr(err, "--fd disk.0.p1: descriptor"));
	}
	{ /* out of order */
		char *a[] = {"keel-vmm", "--kernel", "k",    "--disk", "path=/a.vhdx",
			     "--fd",	 d0,	     "--fd", p1,       NULL};

		assert_int_equal(parse(a, 9, &cfg, err), -EINVAL);
		assert_non_null(strstr(err, "parents go in order from p0 (expected p0)"));
	}
	{ /* without the disk itself */
		char *a[] = {"keel-vmm",     "--kernel", "k", "--disk",
			     "path=/a.vhdx", "--fd",	 p0,  NULL};

		assert_int_equal(parse(a, 7, &cfg, err), -EINVAL);
		assert_non_null(strstr(
			err, "--fd disk.0.p0: parents go with a VHDX disk passed as --fd disk.0"));
	}
	{ /* a raw disk has none */
		char *a[] = {"keel-vmm", "--kernel", "k",    "--disk", "path=/a.img",
			     "--fd",	 d0,	     "--fd", p0,       NULL};

		assert_int_equal(parse(a, 9, &cfg, err), -EINVAL);
		assert_non_null(strstr(err, "parents go with a VHDX disk"));
	}
	{ /* a SCSI LUN's */
		char *a[] = {"keel-vmm", "--kernel", "k",    "--disk", "path=/s.vhdx,bus=scsi",
			     "--fd",	 l0,	     "--fd", lp0,      NULL};

		assert_int_equal(parse(a, 9, &cfg, err), 0);
		assert_int_equal(cfg.lun_chains[0].n, 1);
		config_free(&cfg);
	}
	{
		char *a[] = {"keel-vmm", "--kernel", "k", "--fd", "disk.0.px=3", NULL};

		assert_int_equal(parse(a, 5, &cfg, err), -EINVAL);
		assert_non_null(strstr(err, "expected disk.I.pJ=N or lun.I.pJ=N"));
	}
	close(fd3);
	close(fd2);
	close(fd);
}

/* --fd kvm and net.I, --jail-user and --jail-root (jail.h). */
static void test_jail_options(void **state)
{
	static const char *const names[] = {"kvm", "net.0", "net.1"};
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	char opt[3][32], *kvm = opt[0], *net = opt[1], *net1 = opt[2], err[256];
	struct vm_config cfg;

	int fd2 = dup(fd);

	assert_true(fd >= 3 && fd2 >= 3);
	for (unsigned i = 0; i < 3; i++)
		snprintf(opt[i], sizeof(opt[i]), "%s=%d", names[i], i ? fd2 : fd);
	{
		char *a[] = {"keel-vmm",  "--kernel",	 "k",	    "--net", "tap=t0",
			     "--fd",	  kvm,		 "--fd",    net,     "--jail-user",
			     "1000:1001", "--jail-root", "/srv/vm", NULL};

		assert_int_equal(parse(a, 13, &cfg, err), 0);
		assert_int_equal(cfg.kvm_fd, fd);
		assert_int_equal(cfg.net_fds[0][0], fd2);
		assert_int_equal(cfg.net_fds[1][0], -1);
		assert_true(cfg.jail);
		assert_int_equal(cfg.jail_uid, 1000);
		assert_int_equal(cfg.jail_gid, 1001);
		assert_string_equal(cfg.jail_root, "/srv/vm");
		config_free(&cfg);
	}
	{
		char *a[] = {"keel-vmm", "--kernel", "k", "--net", "tap=t0", "--fd", net1, NULL};

		assert_int_equal(parse(a, 7, &cfg, err), -EINVAL);
		assert_non_null(strstr(err, "--fd net.1: the VM has 1 network card"));
	}
	{
		char *a[] = {"keel-vmm", "--kernel", "k", "--jail-user", "1000:1000", NULL};

		assert_int_equal(parse(a, 5, &cfg, err), -EINVAL);
		assert_non_null(strstr(err, "--jail-user and --jail-root go together"));
	}
	{
		char *a[] = {"keel-vmm", "--kernel", "k", "--jail-user", "0:5", NULL};

		assert_int_equal(parse(a, 5, &cfg, err), -EINVAL);
		assert_non_null(strstr(err, "expected UID:GID, two numbers from 1"));
	}
	{
		char *a[] = {"keel-vmm", "--kernel", "k", "--jail-user", "7", NULL};

		assert_int_equal(parse(a, 5, &cfg, err), -EINVAL);
		assert_non_null(strstr(err, "expected UID:GID"));
	}
	for (unsigned i = 0; i < 3; i++) {
		const char *roots[] = {"relative", "/", "/a/../b"};
		char *a[] = {"keel-vmm", "--kernel", "k", "--jail-root", (char *)roots[i], NULL};

		assert_int_equal(parse(a, 5, &cfg, err), -EINVAL);
		assert_non_null(strstr(err, "expected an absolute directory other than /"));
	}
	close(fd2);
	close(fd);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* --fd config, status, state, memory: the worker's own files, opened by keeld. The
 * description is read from the descriptor (closed once read; the path is never opened), and
 * each stands for its by-path option, never beside it. */
static void test_own_files_fd(void **state)
{
	char dir[] = "/tmp/keel-ownfd-XXXXXX", path[128], cfd[32], sfd[32], stfd[32], mfd[32];
	struct vm_config cfg;
	char err[256];
	int fd, st, mem;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/vm.json", dir);
	write_file(path, "{\"version\": 1, \"name\": \"v1\", \"memory\": 67108864,"
			 " \"kernel\": \"/k\"}");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_int_equal(unlink(path), 0); /* only the descriptor can reach it now */
	st = open("/dev/null", O_RDONLY | O_CLOEXEC);
	mem = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 3 && st >= 3 && mem >= 3);
	snprintf(cfd, sizeof(cfd), "config=%d", fd);
	snprintf(sfd, sizeof(sfd), "status=%d", st);
	snprintf(stfd, sizeof(stfd), "state=%d", st);
	snprintf(mfd, sizeof(mfd), "memory=%d", mem);
	{
		char *a[] = {"keel-vmm", "--fd", cfd, "--fd", stfd, "--fd", mfd, NULL};

		assert_int_equal(parse(a, 7, &cfg, err), 0);
		assert_string_equal(cfg.def.name, "v1");
		assert_string_equal(cfg.config_path, CONFIG_FD_NAME);
		assert_int_equal(cfg.config_fd, -1);
		assert_int_equal(fcntl(fd, F_GETFD), -1); /* read whole and closed */
		assert_string_equal(cfg.restore_dir, RESTORE_FD_NAME);
		assert_int_equal(cfg.state_fd, st);
		assert_int_equal(cfg.memory_fd, mem);
		config_free(&cfg);
	}
	{
		char *a[] = {"keel-vmm", "--config", path, "--fd", cfd, NULL};

		fd = dup(st);
		snprintf(cfd, sizeof(cfd), "config=%d", fd);
		assert_int_equal(parse(a, 5, &cfg, err), -EINVAL);
		assert_non_null(strstr(err, "--fd config and --config name the same file"));
		close(fd);
	}
	{
		char *a[] = {"keel-vmm", "--kernel", "k", "--status-file", "/s", "--fd", sfd, NULL};

		assert_int_equal(parse(a, 7, &cfg, err), -EINVAL);
		assert_non_null(strstr(err, "--fd status and --status-file name the same file"));
	}
	{
		char *a[] = {"keel-vmm", "--kernel", "k", "--restore", "/r", "--fd", mfd, NULL};

		assert_int_equal(parse(a, 7, &cfg, err), -EINVAL);
		assert_non_null(strstr(err, "--fd memory and --restore name the same file"));
	}
	{
		char *a[] = {"keel-vmm", "--kernel", "k", "--fd", stfd, NULL};

		assert_int_equal(parse(a, 5, &cfg, err), -EINVAL);
		assert_non_null(strstr(err, "--fd state and --fd memory go together"));
	}
	close(st);
	close(mem);
	assert_int_equal(rmdir(dir), 0);
}

/* --config FILE: the same structure from a JSON document; strings reach the VM as they are
 * (a disk path with commas and "path=" in it), and description options cannot be mixed in. */
static void test_config_file(void **state)
{
	char dir[] = "/tmp/keel-config-XXXXXX", path[128];
	char *run[] = {"keel-vmm", "--config", path, "--serial", "off", NULL};
	char *mixed[] = {"keel-vmm", "--config", path, "--cpus", "2", NULL};
	char *noconsole[] = {"keel-vmm", "--config", path, "--console", "file:/tmp/c", NULL};
	struct vm_config cfg;
	char err[256];

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/vm.json", dir);
	write_file(path, "{\"version\": 1, \"name\": \"v1\", \"cpus\": 2, \"memory\": 67108864,"
			 " \"kernel\": \"/k\", \"cmdline\": \"console=ttyS0\","
			 " \"disks\": [{\"path\": \"/d/a,readonly=on,path=/etc/shadow\"},"
			 " {\"path\": \"/d/b\", \"pci_slot\": 9, \"serial\": \"SER\"}],"
			 " \"nets\": [{\"tap\": \"kt0\", \"mac\": \"02:AA:00:00:00:01\"}],"
			 " \"rng\": null}");
	assert_int_equal(parse(run, 5, &cfg, err), 0);
	assert_string_equal(cfg.def.name, "v1");
	assert_int_equal(cfg.def.cpus, 2);
	assert_int_equal(cfg.def.memory, 64ull << 20);
	assert_string_equal(cfg.def.kernel, "/k");
	assert_int_equal(cfg.def.ndisks, 2);
	assert_string_equal(cfg.def.disks[0].path, "/d/a,readonly=on,path=/etc/shadow");
	assert_false(cfg.def.disks[0].readonly);
	assert_int_equal(cfg.def.disks[0].pci_slot, 1);
	assert_int_equal(cfg.def.disks[1].pci_slot, 9);
	assert_string_equal(cfg.def.disks[1].serial, "SER");
	assert_string_equal(cfg.def.nics[0].mac, "02:aa:00:00:00:01");
	assert_int_equal(cfg.def.nics[0].pci_slot, 2);
	assert_false(cfg.def.rng.present);
	assert_int_equal(cfg.serial.kind, CHARDEV_OFF);
	config_free(&cfg);

	assert_int_equal(parse(mixed, 5, &cfg, err), -EINVAL);
	assert_non_null(strstr(err, "--cpus describes the VM"));
	assert_int_equal(parse(noconsole, 5, &cfg, err), -EINVAL);
	assert_non_null(strstr(err, "has no virtio console"));

	write_file(path, "{\"kernel\": \"/k\", \"cpus\": 0}");
	assert_int_equal(parse(run, 5, &cfg, err), -EINVAL);
	assert_non_null(strstr(err, "vm.json: field 'cpus' must be between 1 and 255"));
	write_file(path, "{\"kernel\": \"/k\", \"state\": \"running\"}");
	assert_int_equal(parse(run, 5, &cfg, err), -EINVAL);
	assert_non_null(strstr(err, "runtime state"));
	write_file(path, "{\"kernel\": \"/k\"} {}");
	assert_int_equal(parse(run, 5, &cfg, err), -EINVAL);
	assert_non_null(strstr(err, "not one JSON object"));
	write_file(path, "{\"kernel\": \"/k\", \"version\": 99}");
	assert_int_equal(parse(run, 5, &cfg, err), -EINVAL);
	assert_non_null(strstr(err, "use a newer keel"));
	write_file(path, "{\"cpus\": 1}");
	assert_int_equal(parse(run, 5, &cfg, err), -EINVAL);
	assert_non_null(strstr(err, "needs a 'kernel'"));
	unlink(path);
	assert_int_equal(parse(run, 5, &cfg, err), -ENOENT);
	assert_non_null(strstr(err, "No such file"));
	rmdir(dir);
}

static void test_serial_specs(void **state)
{
	struct chardev_spec s;

	assert_int_equal(vmdef_chardev_parse("stdio", &s), 0);
	assert_int_equal(s.kind, CHARDEV_STDIO);
	assert_int_equal(vmdef_chardev_parse("off", &s), 0);
	assert_int_equal(s.kind, CHARDEV_OFF);
	assert_int_equal(vmdef_chardev_parse("file:/tmp/x", &s), 0);
	assert_int_equal(s.kind, CHARDEV_FILE);
	assert_string_equal(s.path, "/tmp/x");
	assert_int_equal(vmdef_chardev_parse("file:", &s), -EINVAL);
	assert_int_equal(vmdef_chardev_parse("unix:", &s), -EINVAL);
	assert_int_equal(vmdef_chardev_parse("tcp:1234", &s), -EINVAL);
	assert_int_equal(vmdef_chardev_parse("", &s), -EINVAL);
}

/* Each bad command line is refused with a message that names the problem. */
static void expect_error(char **argv, int argc, const char *needle)
{
	struct vm_config cfg;
	char err[256] = "";

	assert_int_equal(parse(argv, argc, &cfg, err), -EINVAL);
	if (!strstr(err, needle))
		fail_msg("error '%s' does not mention '%s'", err, needle);
}

static void test_errors(void **state)
{
	char *nokernel[] = {"keel-vmm", "--cpus", "2", NULL};
	char *cpus0[] = {"keel-vmm", "--kernel", "k", "--cpus", "0", NULL};
	char *cpus256[] = {"keel-vmm", "--kernel", "k", "--cpus", "256", NULL};
	char *cpusx[] = {"keel-vmm", "--kernel", "k", "--cpus", "two", NULL};
	char *memx[] = {"keel-vmm", "--kernel", "k", "--memory", "lots", NULL};
	char *memsmall[] = {"keel-vmm", "--kernel", "k", "--memory", "1M", NULL};
	char *mempage[] = {"keel-vmm", "--kernel", "k", "--memory", "4100K", NULL};
	char *memhuge[] = {"keel-vmm", "--kernel", "k", "--memory", "99999999999T", NULL};
	char *serial[] = {"keel-vmm", "--kernel", "k", "--serial", "pty", NULL};
	char *unknown[] = {"keel-vmm", "--kernel", "k", "--frobnicate", NULL};
	char *novalue[] = {"keel-vmm", "--kernel", NULL};
	char *extra[] = {"keel-vmm", "--kernel", "k", "stray", NULL};

	expect_error(nokernel, 3,
		     "--kernel FILE, --firmware bios|uefi or --config FILE is required");
	expect_error(cpus0, 5, "--cpus 0");
	expect_error(cpus256, 5, "1 to 255");
	expect_error(cpusx, 5, "--cpus two");
	expect_error(memx, 5, "--memory lots");
	expect_error(memsmall, 5, "must be from 2M");
	expect_error(mempage, 5, "whole number of MiB");
	expect_error(memhuge, 5, "overflows");
	expect_error(serial, 5, "--serial pty");
	expect_error(unknown, 4, "unknown option --frobnicate");
	expect_error(novalue, 2, "--kernel needs a value");
	expect_error(extra, 4, "unexpected argument 'stray'");
}

/* A value for every device option, to reach it through config_parse: a new option adds its
 * own here (the test below fails until it does). */
static const struct {
	const char *name, *value;
} option_samples[] = {
	{"disk", "path=/tmp/table-disk.img"},
	{"net", "tap=tap-table"},
	{"console", "file:/tmp/table-console"},
	{"no-rng", NULL},
	{"vsock", "socket=/tmp/table.sock"},
	{"vsock-socket", "/tmp/table,with=comma.sock"},
	{"dvd", "none"},
};

/* config_run_words: the words of a command line that say how the worker runs the VM, which go
 * beside --config when the description travels as a document (the lab's launcher does so,
 * tests/lab/jailrun.c); with the description saved and given as --config, the same VM and the
 * same host side come back. */
static void test_run_words(void **state)
{
	char *a[] = {"keel-vmm",
		     "--name",
		     "rw",
		     "--kernel",
		     "/k",
		     "--memory",
		     "64M",
		     "--control",
		     "/tmp/rw.ctl",
		     "--disk",
		     "path=/d.raw",
		     "--vsock",
		     "cid=3,socket=/tmp/rw.sock",
		     "--no-reboot",
		     "--serial=off",
		     "--console",
		     "stdio",
		     "--restore",
		     "/tmp/rw-save",
		     NULL};
	const char *want[] = {
		"--control",   "/tmp/rw.ctl",  "--vsock",   "cid=3,socket=/tmp/rw.sock",
		"--no-reboot", "--serial=off", "--console", "stdio",
		"--restore",   "/tmp/rw-save"};
	char dir[] = "/tmp/keel-rw-XXXXXX", path[64], copt[80], err[256] = "", *out[32],
	     *b[40] = {"keel-vmm"};
	struct vm_config cfg, again;
	int n;

	(void)state;
	assert_int_equal(parse(a, 19, &cfg, err), 0);
	n = config_run_words(19, a, out, 32, err, sizeof(err));
	assert_int_equal(n, 10);
	for (int i = 0; i < n; i++)
		assert_string_equal(out[i], want[i]);
	/* Too few slots is an error, not a cut list. */
	assert_int_equal(config_run_words(19, a, out, 3, err, sizeof(err)), -E2BIG);
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/config.json", dir);
	assert_int_equal(vmdef_save_file(&cfg.def, path, err, sizeof(err)), 0);
	snprintf(copt, sizeof(copt), "--config=%s", path);
	b[1] = copt;
	for (int i = 0; i < n; i++)
		b[2 + i] = out[i];
	assert_int_equal(parse(b, 2 + n, &again, err), 0);
	assert_string_equal(again.def.name, "rw");
	assert_int_equal(again.def.memory, 64u << 20);
	assert_int_equal(again.def.ndisks, 1);
	assert_int_equal(again.def.disks[0].pci_slot, cfg.def.disks[0].pci_slot);
	assert_string_equal(again.control_path, "/tmp/rw.ctl");
	assert_string_equal(again.restore_dir, "/tmp/rw-save");
	assert_string_equal(again.host.vsock_socket, "/tmp/rw.sock");
	assert_true(again.no_reboot);
	assert_int_equal(again.serial.kind, CHARDEV_OFF);
	assert_int_equal(again.host.console.kind, CHARDEV_STDIO);
	config_free(&again);
	config_free(&cfg);
	unlink(path);
	rmdir(dir);
}

/* The option table: keel-vmm's own options and every kind's, each once; every device option
 * reaches its own kind through config_parse. */
static void test_option_table(void **state)
{
	struct config_optable t;
	struct vm_config base, cfg;
	char err[256] = "";
	char *plain[] = {"keel-vmm", "--kernel", "/k", NULL};
	size_t seen = 0;

	assert_int_equal(config_options_build(&t, vmdef_devices, vmdef_ndevices, err, sizeof(err)),
			 0);
	for (size_t i = 0; i < t.n; i++)
		for (size_t j = i + 1; j < t.n; j++)
			if (!strcmp(t.opt[i].name, t.opt[j].name))
				fail_msg("option --%s is in the table twice", t.opt[i].name);
	assert_null(t.opt[t.n].name);
	assert_int_equal(parse(plain, 3, &base, err), 0);
	for (size_t k = 0; k < vmdef_ndevices; k++) {
		const struct vmdef_device_kind *kind = vmdef_devices[k];

		for (const struct vmdef_option *o = kind->options; o && o->name; o++) {
			const char *value = NULL;
			bool sampled = false;
			size_t i;

			seen++;
			/* In the table, with its argument, pointing back at this option. */
			for (i = 0; i < t.n && strcmp(t.opt[i].name, o->name); i++)
				;
			assert_true(i < t.n);
			assert_int_equal(t.opt[i].has_arg,
					 o->value ? required_argument : no_argument);
			assert_true(t.opt[i].val >= CONFIG_OPT_DEVICE);
			assert_ptr_equal(t.dev[t.opt[i].val - CONFIG_OPT_DEVICE], o);
			assert_ptr_equal(t.dev_kind[t.opt[i].val - CONFIG_OPT_DEVICE], kind);
			assert_non_null(o->help);
			assert_non_null(o->parse);
			/* Through config_parse: the kind's device count changes. */
			for (size_t j = 0; j < sizeof(option_samples) / sizeof(option_samples[0]);
			     j++)
				if (!strcmp(option_samples[j].name, o->name)) {
					value = option_samples[j].value;
					sampled = true;
				}
			if (!sampled)
				fail_msg("--%s (kind %s) has no sample in option_samples", o->name,
					 kind->field);
			{
				char opt[64];
				char *argv[] = {"keel-vmm", "--kernel",	   "/k",
						opt,	    (char *)value, NULL};

				snprintf(opt, sizeof(opt), "--%s", o->name);
				if (parse(argv, value ? 5 : 4, &cfg, err))
					fail_msg("--%s %s: %s", o->name, value ? value : "", err);
				if (kind->count(&cfg.def) == kind->count(&base.def))
					fail_msg("--%s did not reach kind %s", o->name,
						 kind->field);
				config_free(&cfg);
			}
		}
	}
	assert_int_equal(seen, t.ndev);
	assert_int_equal(seen, sizeof(option_samples) / sizeof(option_samples[0]));
	config_free(&base);
}

static int fake_parse(struct vm_def *def, struct vmdef_host *host, const char *arg, char *err,
		      size_t errlen)
{
	return 0;
}

/* Two kinds may not declare the same option, nor one of keel-vmm's own. */
static void test_option_duplicates(void **state)
{
	static const struct vmdef_option again_disk[] = {
		{"disk", "X", "a second --disk", false, fake_parse}, {0}};
	static const struct vmdef_option again_kernel[] = {
		{"kernel", "X", "a second --kernel", false, fake_parse}, {0}};
	static const struct vmdef_option fresh[] = {
		{"fresh-device", NULL, "a new device", false, fake_parse}, {0}};
	const struct vmdef_device_kind dup_disk = {.field = "twin", .options = again_disk};
	const struct vmdef_device_kind dup_kernel = {.field = "boot", .options = again_kernel};
	const struct vmdef_device_kind ok = {.field = "fresh", .options = fresh};
	const struct vmdef_device_kind *kinds[] = {&vmdef_disk_kind, &ok, &dup_disk};
	const struct vmdef_device_kind *kinds2[] = {&dup_kernel};
	const struct vmdef_device_kind *kinds3[] = {&vmdef_disk_kind, &ok};
	struct config_optable t;
	char err[256] = "";

	assert_int_equal(config_options_build(&t, kinds, 3, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "option --disk of device kind 'twin' is also one of device kind "
				 "disks");
	assert_int_equal(config_options_build(&t, kinds2, 1, err, sizeof(err)), -EINVAL);
	assert_string_equal(err,
			    "option --kernel of device kind 'boot' is also one of keel-vmm's own "
			    "options");
	/* A new kind's option is simply there. */
	assert_int_equal(config_options_build(&t, kinds3, 2, err, sizeof(err)), 0);
	assert_int_equal(t.ndev, 2);
	assert_string_equal(t.opt[t.n - 1].name, "fresh-device");
	assert_int_equal(t.opt[t.n - 1].has_arg, no_argument);
	assert_ptr_equal(t.dev[t.ndev - 1], &fresh[0]);
}

/* --help lists every device option from the table, and an unknown option says so. */
static void test_help_lists_devices(void **state)
{
	char path[] = "/tmp/keel-vmm-help-XXXXXX", text[8192] = "", err[256] = "";
	char *help[] = {"keel-vmm", "--help", NULL};
	char *unknown[] = {"keel-vmm", "--kernel", "/k", "--no-such-device", NULL};
	char *noarg[] = {"keel-vmm", "--kernel", "/k", "--no-rng=1", NULL};
	int fd = mkstemp(path), saved = dup(STDOUT_FILENO);
	struct vm_config cfg;
	ssize_t n;

	assert_true(fd >= 0 && saved >= 0);
	fflush(stdout);
	assert_int_equal(dup2(fd, STDOUT_FILENO), STDOUT_FILENO);
	assert_int_equal(parse(help, 2, &cfg, err), 1);
	fflush(stdout);
	assert_int_equal(dup2(saved, STDOUT_FILENO), STDOUT_FILENO);
	close(saved);
	n = pread(fd, text, sizeof(text) - 1, 0);
	close(fd);
	unlink(path);
	assert_true(n > 0);
	for (size_t k = 0; k < vmdef_ndevices; k++)
		for (const struct vmdef_option *o = vmdef_devices[k]->options; o && o->name; o++) {
			char line[256];

			snprintf(line, sizeof(line), "\n  --%s%s%s\n        %s\n", o->name,
				 o->value ? " " : "", o->value ? o->value : "", o->help);
			if (!strstr(text, line))
				fail_msg("--help does not list --%s as '%s'", o->name, line);
		}
	expect_error(unknown, 4, "unknown option --no-such-device (see keel-vmm --help)");
	expect_error(noarg, 4, "unknown option --no-rng=1");
}

/* --disk ...,bus=scsi and --dvd: LUNs of the SCSI controller, in order, which takes the slot
 * after every other device; its description round-trips through JSON. */
static void test_scsi_options(void **state)
{
	char *a[] = {"keel-vmm",
		     "--kernel",
		     "k",
		     "--disk",
		     "path=/d0",
		     "--disk",
		     "path=/s.vhdx,bus=scsi,serial=q",
		     "--dvd",
		     "/x.iso",
		     "--dvd",
		     "none",
		     NULL};
	char *slot[] = {"keel-vmm", "--kernel", "k", "--disk", "path=/s,bus=scsi,slot=4", NULL};
	char *bus[] = {"keel-vmm", "--kernel", "k", "--disk", "path=/s,bus=ide", NULL};
	char *twice[] = {"keel-vmm", "--kernel", "k", "--dvd", "/x.iso", "--dvd", "/x.iso", NULL};
	char *many[32] = {"keel-vmm", "--kernel", "k"};
	struct vm_config cfg;
	struct vm_def back;
	json_object *doc;
	char err[256];

	assert_int_equal(parse(a, 11, &cfg, err), 0);
	assert_int_equal(cfg.def.ndisks, 1);
	assert_int_equal(cfg.def.scsi.nluns, 3);
	assert_int_equal(cfg.def.scsi.luns[0].type, VM_LUN_DISK);
	assert_int_equal(cfg.def.scsi.luns[0].disk.format, VM_DISK_VHDX);
	assert_string_equal(cfg.def.scsi.luns[0].disk.serial, "q");
	assert_int_equal(cfg.def.scsi.luns[1].type, VM_LUN_DVD);
	assert_string_equal(cfg.def.scsi.luns[1].disk.path, "/x.iso");
	assert_true(cfg.def.scsi.luns[1].disk.readonly);
	assert_null(cfg.def.scsi.luns[2].disk.path);
	assert_int_equal(cfg.def.disks[0].pci_slot, 1);
	assert_int_equal(cfg.def.rng.pci_slot, 2);
	assert_int_equal(cfg.def.scsi.pci_slot, 3);
	doc = vmdef_to_json(&cfg.def);
	vmdef_init(&back);
	assert_int_equal(vmdef_apply_json(&back, doc, VMDEF_JSON_DOCUMENT, err, sizeof(err)), 0);
	assert_null(vmdef_hw_change(&cfg.def, &back));
	assert_int_equal(back.scsi.nluns, 3);
	assert_null(back.scsi.luns[2].disk.path);
	json_object_put(doc);
	vmdef_free(&back);
	config_free(&cfg);

	assert_int_equal(parse(slot, 5, &cfg, err), -EINVAL);
	assert_non_null(strstr(err, "has no PCI slot of its own"));
	assert_int_equal(parse(bus, 5, &cfg, err), -EINVAL);
	assert_int_equal(parse(twice, 7, &cfg, err), -EINVAL);
	assert_non_null(strstr(err, "/x.iso is on SCSI LUNs 0 and 1"));
	for (int i = 0; i < 9; i++) {
		many[3 + 2 * i] = "--dvd";
		many[4 + 2 * i] = "none";
	}
	assert_int_equal(parse(many, 21, &cfg, err), -EINVAL);
	assert_non_null(strstr(err, "at most 8 LUNs"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_all_options),
		cmocka_unit_test(test_memory_units),
		cmocka_unit_test(test_serial_specs),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_device_slots),
		cmocka_unit_test(test_config_file),
		cmocka_unit_test(test_guest_change),
		cmocka_unit_test(test_net_queues),
		cmocka_unit_test(test_disk_formats),
		cmocka_unit_test(test_disk_qos),
		cmocka_unit_test(test_passed_fds),
		cmocka_unit_test(test_passed_sockets),
		cmocka_unit_test(test_chain_fds),
		cmocka_unit_test(test_jail_options),
		cmocka_unit_test(test_scsi_options),
		cmocka_unit_test(test_firmware),
		cmocka_unit_test(test_boot_menu),
		cmocka_unit_test(test_option_table),
		cmocka_unit_test(test_run_words),
		cmocka_unit_test(test_option_duplicates),
		cmocka_unit_test(test_own_files_fd),
		cmocka_unit_test(test_help_lists_devices),
		cmocka_unit_test(test_net_move_change),
		cmocka_unit_test(test_net_vhost),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
