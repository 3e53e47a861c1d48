/* SPDX-License-Identifier: Apache-2.0 */
/* A VM's directory (STATE_DIR/vms/UUID): paths, the worker log and its rotation, the status
 * file a worker leaves, the saved-state files (sup_internal.h). */
#include "daemon/sup_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/error.h"
#include "lib/log.h"

int sup_path(const struct sup *sup, const char *uuid, const char *file, char *buf, size_t size)
{
	int n = snprintf(buf, size, "%s/%s%s%s", sup->vms_dir, uuid, file ? "/" : "",
			 file ? file : "");

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

int sup_log_path(struct sup *sup, const char *uuid, char *buf, size_t size)
{
	return sup_path(sup, uuid, "worker.log", buf, size);
}

/* Append one line from keeld to the VM's worker log, so the log tells the whole story. */
void sup_vm_log(struct sup *sup, const struct sup_vm *vm, const char *fmt, ...)
{
	char path[PATH_MAX], line[1024], stamp[CLOCK_UTC_LEN];
	va_list ap;
	int fd, n;

	if (sup_path(sup, vm->uuid, "worker.log", path, sizeof(path)))
		return;
	clock_utc_text(time(NULL), stamp);
	va_start(ap, fmt);
	n = snprintf(line, sizeof(line), "keeld: %s: ", stamp);
	if (n > 0 && (size_t)n < sizeof(line))
		n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line) - 1)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0)
		return;
	if (write(fd, line, (size_t)n) != n)
		log_warn("cannot append to %s: %s", path, strerror(errno));
	close(fd);
}

/* The last non-empty line of the worker's log that keeld did not write: its error line. */
void sup_last_worker_line(struct sup *sup, const struct sup_vm *vm, char *out, size_t size)
{
	char path[PATH_MAX], buf[4096];
	off_t size_now;
	ssize_t n;
	int fd;

	out[0] = '\0';
	if (sup_path(sup, vm->uuid, "worker.log", path, sizeof(path)))
		return;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	size_now = lseek(fd, 0, SEEK_END);
	if (size_now > 0 &&
	    lseek(fd, size_now > (off_t)sizeof(buf) - 1 ? size_now - (off_t)sizeof(buf) + 1 : 0,
		  SEEK_SET) >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		if (n > 0) {
			char *line, *save = NULL, *last = NULL;
			buf[n] = '\0';
			for (line = strtok_r(buf, "\n", &save); line;
			     line = strtok_r(NULL, "\n", &save))
				if (strncmp(line, "keeld: ", 7) && line[strspn(line, " \t\r")])
					last = line;
			if (last)
				snprintf(out, size, "%s", last);
		}
	}
	close(fd);
}

/* The worker's status file, parsed: at most SUP_STATUS_MAX bytes of a regular file, never
 * through a link (a jailed worker wrote it and could make it a terabyte sparse file to stall
 * keeld, or a FIFO); NULL when it is missing or not such a file. */
#define SUP_STATUS_MAX 16384
static json_object *read_status_json(const char *path)
{
	json_object *o = NULL;
	struct stat st;
	char *buf;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size > SUP_STATUS_MAX ||
	    !(buf = malloc(SUP_STATUS_MAX + 1))) {
		close(fd);
		return NULL;
	}
	n = pread(fd, buf, SUP_STATUS_MAX, 0);
	close(fd);
	if (n >= 0) {
		buf[n] = '\0';
		o = json_tokener_parse(buf);
	}
	free(buf);
	return o;
}

/* Read and remove the status file: 0 with reason (and detail) filled in, or -ENOENT. */
int sup_read_status_file(struct sup *sup, const struct sup_vm *vm, char *reason, size_t rsize,
			 char *detail, size_t dsize, int *status)
{
	char path[PATH_MAX];
	json_object *o, *v;

	reason[0] = detail[0] = '\0';
	*status = 0;
	if (sup_path(sup, vm->uuid, "status.json", path, sizeof(path)))
		return -ENAMETOOLONG;
	o = read_status_json(path);
	if (!o)
		return -ENOENT;
	if (json_object_object_get_ex(o, "reason", &v))
		snprintf(reason, rsize, "%s", json_object_get_string(v));
	if (json_object_object_get_ex(o, "detail", &v))
		snprintf(detail, dsize, "%s", json_object_get_string(v));
	if (json_object_object_get_ex(o, "status", &v))
		*status = json_object_get_int(v);
	json_object_put(o);
	return reason[0] ? 0 : -EBADMSG;
}

/* Remove the VM's saved state files (and their directory). */
void sup_remove_saved(struct sup *sup, const struct sup_vm *vm)
{
	static const char *const files[] = {SUP_SAVED_DIR "/state", SUP_SAVED_DIR "/memory",
					    SUP_SAVED_DIR "/state.tmp",
					    SUP_SAVED_DIR "/memory.tmp"};
	char path[PATH_MAX];

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		if (!sup_path(sup, vm->uuid, files[i], path, sizeof(path)))
			unlink(path);
	if (!sup_path(sup, vm->uuid, SUP_SAVED_DIR, path, sizeof(path)) && rmdir(path) < 0 &&
	    errno != ENOENT)
		log_warn("VM %s: cannot remove %s: %s", vm->name, path, strerror(errno));
}

int sup_save_intent(struct sup *sup, const struct sup_vm *vm)
{
	char path[PATH_MAX], dir[PATH_MAX];
	int fd, dfd, ret = 0;

	if (sup_path(sup, vm->uuid, SUP_SAVING, path, sizeof(path)) ||
	    sup_path(sup, vm->uuid, NULL, dir, sizeof(dir)))
		return -ENAMETOOLONG;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (fsync(fd))
		ret = -errno;
	close(fd);
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd))
		ret = ret ?: -errno;
	if (dfd >= 0)
		close(dfd);
	if (ret)
		unlink(path);
	return ret;
}

void sup_save_intent_drop(struct sup *sup, const struct sup_vm *vm)
{
	char path[PATH_MAX];

	if (!sup_path(sup, vm->uuid, SUP_SAVING, path, sizeof(path)) && unlink(path) < 0 &&
	    errno != ENOENT)
		log_warn("VM %s: cannot remove %s: %s", vm->name, path, strerror(errno));
}

bool sup_save_completed(struct sup *sup, const struct sup_vm *vm)
{
	char intent[PATH_MAX], state[PATH_MAX];

	return !sup_path(sup, vm->uuid, SUP_SAVING, intent, sizeof(intent)) &&
	       !sup_path(sup, vm->uuid, SUP_SAVED_DIR "/state", state, sizeof(state)) &&
	       access(intent, F_OK) == 0 && access(state, F_OK) == 0;
}

void sup_remove_sockets(struct sup *sup, const struct sup_vm *vm)
{
	static const char *const socks[] = {"control.sock", "serial.sock", "hvc0.sock",
					    "vsock.sock"};

	for (size_t i = 0; i < sizeof(socks) / sizeof(socks[0]); i++) {
		char path[PATH_MAX];

		if (!sup_path(sup, vm->uuid, socks[i], path, sizeof(path)) && unlink(path) < 0 &&
		    errno != ENOENT)
			log_warn("VM %s: cannot remove %s: %s", vm->name, path, strerror(errno));
	}
}

void sup_rotate_log(const char *path)
{
	struct stat st;
	char old[PATH_MAX];

	if (stat(path, &st) == 0 && st.st_size > SUP_LOG_ROTATE &&
	    snprintf(old, sizeof(old), "%s.1", path) < (int)sizeof(old))
		(void)!rename(path, old);
}

int sup_vm_dir(struct sup *sup, const char *uuid, char *buf, size_t size)
{
	return sup_path(sup, uuid, NULL, buf, size);
}

/* Link dir/name to the VM's saved directory (same file system: no copy). */
static int link_saved(struct sup *sup, const struct sup_vm *vm, const char *dir, const char *name,
		      char *err, size_t errlen)
{
	char from[PATH_MAX], to[PATH_MAX];

	if (snprintf(from, sizeof(from), "%s/%s", dir, name) >= (int)sizeof(from) ||
	    sup_path(sup, vm->uuid, SUP_SAVED_DIR, to, sizeof(to)) ||
	    strlen(to) + strlen(name) + 2 > sizeof(to))
		return -ENAMETOOLONG;
	strcat(to, "/");
	strcat(to, name);
	if (link(from, to) < 0) {
		int ret = -errno;
		error_set(err, errlen, "cannot link %s to %s: %s", from, to, strerror(errno));
		return ret;
	}
	return 0;
}

int sup_set_saved(struct sup *sup, const struct vm_def *def, const char *from_dir,
		  const char *reason, char *err, size_t errlen)
{
	struct sup_vm *vm = sup_get_vm(sup, def->uuid, def->name);
	char dir[PATH_MAX];
	int ret;

	if (!vm)
		return -ENOMEM;
	ret = sup_need_state(vm, from_dir ? VM_EV_APPLY_SAVED : VM_EV_DROP_SAVED, err, errlen);
	if (ret)
		return ret;
	sup_remove_saved(sup, vm);
	if (!from_dir)
		return sup_event(sup, vm, VM_EV_DROP_SAVED, "%s", reason);
	if (sup_path(sup, def->uuid, NULL, dir, sizeof(dir)) ||
	    (mkdir(dir, 0750) < 0 && errno != EEXIST) ||
	    sup_path(sup, def->uuid, SUP_SAVED_DIR, dir, sizeof(dir)) ||
	    (mkdir(dir, 0700) < 0 && errno != EEXIST)) {
		error_set(err, errlen, "cannot create the saved-state directory of VM '%s'",
			  vm->name);
		return -EIO;
	}
	ret = link_saved(sup, vm, from_dir, "memory", err, errlen);
	if (!ret)
		ret = link_saved(sup, vm, from_dir, "state", err, errlen);
	if (ret) {
		sup_remove_saved(sup, vm);
		(void)!sup_event(sup, vm, VM_EV_DROP_SAVED, "%s", err);
		return ret;
	}
	return sup_event(sup, vm, VM_EV_APPLY_SAVED, "%s", reason);
}

int sup_saved_file(struct sup *sup, const char *uuid, const char *name, char *buf, size_t size)
{
	char rel[64];

	snprintf(rel, sizeof(rel), "%s/%s", SUP_SAVED_DIR, name);
	return sup_path(sup, uuid, rel, buf, size);
}
