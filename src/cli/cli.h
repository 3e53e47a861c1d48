/* SPDX-License-Identifier: Apache-2.0 */
/* The keel command line: one file per command group, each with one entry point. */
#ifndef KEEL_CLI_CLI_H
#define KEEL_CLI_CLI_H

#include <stddef.h>

/* Exit codes of every command. */
#define CLI_OK	  0
#define CLI_FAIL  1 /* the operation failed; a message says why */
#define CLI_USAGE 2 /* bad command line */

/* A bad command line: "keel GROUP: MESSAGE", then the group's usage, on stderr; returns
 * CLI_USAGE. */
int cli_usage_error(const char *group, const char *usage, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* vm.c: "/v1/vms/NAME[/SUB]" with NAME escaped, into buf. */
void cli_vm_path(char *buf, size_t size, const char *name, const char *sub);
/* agent.c: `keel vm kvp|integration|exec|copy-file` (argv[0] is the verb). */
int cli_vm_kvp(int argc, char **argv);
int cli_vm_integration(int argc, char **argv);
int cli_vm_exec(int argc, char **argv);
int cli_vm_copy_file(int argc, char **argv);
/* backup.c: `keel vm backup NAME --to DIR` (argv[0] is the verb). */
int cli_vm_backup(int argc, char **argv);
int cli_vm_import(int argc, char **argv);
/* vm_disk.c: `keel vm disk show|set NAME DISK` (argv[0] is the verb). */
int cli_vm_disk(int argc, char **argv);
/* A disk object's storage QoS as " (QoS: max 500 IOPS, max 50M/s, min none IOPS)", or ""
 * when it has none (keel vm show). */
struct json_object;
void cli_disk_qos_text(struct json_object *disk, char *buf, size_t size);
/* agent.c: the heartbeat of a VM's "integration" object, as one line's text (no newline):
 * "OK (keel-agent 0.1.0)", "Lost communication (keel-agent 0.1.0; agent gone: ...)". */
struct json_object;
void cli_print_heartbeat(struct json_object *integration);
/* "LABEL+0.412 ms (...)\n" from the integration object's clock_offset_ms; nothing without. */
void cli_print_clock_offset(struct json_object *integration, const char *label);
/* Copy clock_offset_ms from GET .../integration into vm's integration (keel vm show). */
void cli_add_clock_offset(struct json_object *vm, const char *name);
/* argv[0] is the group name ("disk"); returns an exit code. */
int cli_disk_main(int argc, char **argv);
int cli_vm_main(int argc, char **argv);		/* vm.c: VMs through keeld's API */
int cli_console_main(int argc, char **argv);	/* console.c: a VM's serial console */
int cli_checkpoint_main(int argc, char **argv); /* checkpoint.c: a VM's checkpoints */
int cli_host_main(int argc, char **argv);	/* host.c: the host's life cycle */
int cli_audit_main(int argc, char **argv);	/* audit.c: the API's audit log */
int cli_pool_main(int argc, char **argv);	/* pool.c: storage pools */
int cli_switch_main(int argc, char **argv);	/* switch.c: virtual switches */

#endif
