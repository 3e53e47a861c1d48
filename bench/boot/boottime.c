// SPDX-License-Identifier: MIT
/*
 * lab-boottime: the boot benchmark's probe, run inside the nested lab (built static by
 * tests/lab/lab.sh into the lab's initramfs as /bin/lab-boottime).
 *
 *   lab-boottime --marker TEXT --guest-mib N [--timeout SECONDS] [--verbose] [--stamp TEXT]...
 *                -- COMMAND [ARG...]
 *
 * Starts COMMAND (a VMM whose serial console is on its stdout) with stdout and stderr on a
 * pipe, and measures, on CLOCK_MONOTONIC, the time from just before fork() to the moment a
 * line containing TEXT arrives. At that moment it reads /proc/PID/smaps and /proc/PID/status
 * of the VMM and splits its resident memory into guest RAM and the VMM's own memory:
 *
 *   guest RAM   anonymous mappings at least 7/8 of the guest's memory size (N MiB): no VMM
 *               allocates anything that large for itself, and both VMMs map guest RAM as one
 *               anonymous region per RAM range (only ranges below 4 GiB are used here);
 *   own         the Rss of every other mapping: code and data of the VMM and its libraries,
 *               heap, thread stacks, device state, KVM's shared vCPU pages (kvm_run);
 *   own_private the same without pages shared with other processes (library text);
 *   own_anon    the same, anonymous pages only ("Anonymous"): what the VMM allocated, without
 *               the pages of files it maps (its binary, libraries, firmware images: the page
 *               cache's, one copy on the host however many processes map them);
 *   own_pss     the same as Pss: each page divided by the number of processes that map it;
 *   peak_own    VmHWM (peak RSS) minus the guest RAM resident at the marker.
 *
 * With --verbose, every non-guest mapping with 512 KiB or more resident is listed on stderr
 * ("lab-boottime: map ..."), to see where a VMM's own memory goes, and every non-guest
 * mapping with transparent huge pages in it ("lab-boottime: huge ...": 2 MiB resident each);
 * then every non-guest mapping with anything resident, one line each ("lab-boottime: vma
 * RSS KiB huge KiB pss KiB HEADER"), to tell which mapping is which.
 *
 * Each --stamp TEXT (at most 16) prints "lab-boottime: stamp MS TEXT" on stderr when the first
 * line containing TEXT arrives (MS from the same start): the phases of a boot (the firmware's
 * banner, the boot loader, the kernel).
 *
 * Then it kills the VMM (SIGKILL) and prints one line:
 *   boottime: ms=M own_kib=K own_private_kib=K own_anon_kib=K own_pss_kib=K peak_own_kib=K
 *             guest_kib=K rss_kib=K
 * Exit status 0 on success; 1 with a one-line reason when the marker never came.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct mem {
	uint64_t own_kib, own_private_kib, own_anon_kib, own_pss_kib, guest_kib, rss_kib, hwm_kib;
};

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Parse "Key:   123 kB" lines; returns the number or 0. */
static uint64_t field_kib(const char *line, const char *key)
{
	size_t n = strlen(key);

	if (strncmp(line, key, n) != 0 || line[n] != ':')
		return 0;
	return strtoull(line + n + 1, NULL, 10);
}

static int read_mem(pid_t pid, uint64_t guest_bytes, int verbose, struct mem *m)
{
	char path[64], line[512], head[512] = "";
	FILE *f;
	int in_guest = 0;
	uint64_t vma_rss = 0, vma_huge = 0, vma_pss = 0;

	memset(m, 0, sizeof(*m));
	snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		char perms[8];
		int name_at = 0;

		/* A mapping header: "lo-hi perms offset dev inode [name]". */
		if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %n", &lo, &hi, perms, &name_at) >= 3 &&
		    name_at > 0 && strchr(line, '-') < strchr(line, ' ')) {
			const char *name = line + name_at;
			int anon = name[0] == '\n' || name[0] == '\0' ||
				   strncmp(name, "[anon", 5) == 0;

			if (verbose && head[0] && !in_guest && vma_rss)
				fprintf(stderr, "lab-boottime: vma %6llu KiB huge %llu pss %llu %s\n",
					(unsigned long long)vma_rss, (unsigned long long)vma_huge,
					(unsigned long long)vma_pss, head);
			vma_rss = vma_huge = vma_pss = 0;
			in_guest = anon && (uint64_t)(hi - lo) >= guest_bytes / 8 * 7;
			snprintf(head, sizeof(head), "%s", line);
			head[strcspn(head, "\n")] = '\0';
			continue;
		}
		uint64_t v;
		if ((v = field_kib(line, "Pss"))) {
			vma_pss = v;
			if (!in_guest)
				m->own_pss_kib += v;
		}
		if ((v = field_kib(line, "Anonymous")) && !in_guest)
			m->own_anon_kib += v;
		if ((v = field_kib(line, "Rss"))) {
			vma_rss = v;
			m->rss_kib += v;
			if (verbose && !in_guest && v >= 512)
				fprintf(stderr, "lab-boottime: map %6llu KiB %s\n",
					(unsigned long long)v, head);
			if (in_guest)
				m->guest_kib += v;
			else
				m->own_kib += v;
		} else if ((v = field_kib(line, "AnonHugePages"))) {
			vma_huge = v;
			if (verbose && !in_guest)
				fprintf(stderr, "lab-boottime: huge %6llu KiB %s\n",
					(unsigned long long)v, head);
		} else if ((v = field_kib(line, "Private_Clean")) ||
			   (v = field_kib(line, "Private_Dirty"))) {
			if (!in_guest)
				m->own_private_kib += v;
		}
	}
	if (verbose && head[0] && !in_guest && vma_rss)
		fprintf(stderr, "lab-boottime: vma %6llu KiB huge %llu pss %llu %s\n",
			(unsigned long long)vma_rss, (unsigned long long)vma_huge,
			(unsigned long long)vma_pss, head);
	fclose(f);
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "VmHWM:", 6) == 0)
			m->hwm_kib = field_kib(line, "VmHWM");
	fclose(f);
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: lab-boottime --marker TEXT --guest-mib N [--timeout SECONDS] "
			"[--verbose] [--stamp TEXT]... -- COMMAND [ARG...]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *marker = NULL, *stamp[16];
	int nstamp = 0, stamped[16] = {0};
	uint64_t guest_mib = 0;
	int timeout_s = 120, verbose = 0, i, fds[2], in[2];

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		}
		if (strcmp(argv[i], "--verbose") == 0) {
			verbose = 1;
			continue;
		}
		if (i + 1 >= argc)
			usage();
		if (strcmp(argv[i], "--marker") == 0)
			marker = argv[++i];
		else if (strcmp(argv[i], "--guest-mib") == 0)
			guest_mib = strtoull(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--timeout") == 0)
			timeout_s = atoi(argv[++i]);
		else if (strcmp(argv[i], "--stamp") == 0 && nstamp < 16)
			stamp[nstamp++] = argv[++i];
		else
			usage();
	}
	if (!marker || !guest_mib || i >= argc || timeout_s <= 0)
		usage();
	/* The VMM's stdin: a pipe that stays open and silent, like an idle console. */
	if (pipe2(fds, O_CLOEXEC) || pipe2(in, O_CLOEXEC)) {
		perror("lab-boottime: pipe");
		return 1;
	}

	double t0 = now_ms();
	pid_t pid = fork();
	if (pid < 0) {
		perror("lab-boottime: fork");
		return 1;
	}
	if (pid == 0) {
		dup2(in[0], 0);
		dup2(fds[1], 1);
		dup2(fds[1], 2);
		execvp(argv[i], argv + i);
		fprintf(stderr, "lab-boottime: cannot run %s: %s\n", argv[i], strerror(errno));
		_exit(127);
	}
	close(fds[1]);
	close(in[0]);

	char buf[65536];
	size_t have = 0;
	double t1 = -1;
	while (t1 < 0) {
		int left = (int)(t0 + timeout_s * 1e3 - now_ms());
		struct pollfd p = { .fd = fds[0], .events = POLLIN };

		if (left <= 0) {
			fprintf(stderr, "lab-boottime: no line with '%s' within %ds\n", marker,
				timeout_s);
			break;
		}
		if (poll(&p, 1, left) <= 0)
			continue;
		ssize_t n = read(fds[0], buf + have, sizeof(buf) - 1 - have);
		if (n <= 0) {
			fprintf(stderr, "lab-boottime: the VMM exited before printing '%s'\n", marker);
			break;
		}
		/* Echo the console, so that the lab log shows each boot. */
		if (write(2, buf + have, (size_t)n) < 0) {
			/* the log is best effort */
		}
		have += (size_t)n;
		buf[have] = '\0';
		/* Look for the marker in complete lines; keep the unfinished tail. */
		char *nl, *line = buf;
		while ((nl = strchr(line, '\n'))) {
			*nl = '\0';
			for (int k = 0; k < nstamp; k++)
				if (!stamped[k] && strstr(line, stamp[k])) {
					stamped[k] = 1;
					fprintf(stderr, "\nlab-boottime: stamp %.1f %s\n",
						now_ms() - t0, stamp[k]);
				}
			if (strstr(line, marker)) {
				t1 = now_ms();
				break;
			}
			line = nl + 1;
		}
		if (t1 < 0) {
			have = strlen(line);
			memmove(buf, line, have + 1);
			if (have == sizeof(buf) - 1)
				have = 0;
		}
	}

	struct mem m;
	int r = t1 >= 0 ? read_mem(pid, guest_mib << 20, verbose, &m) : -1;
	/*
	 * A VMM whose vCPU thread is stuck inside KVM cannot die; say so instead of waiting
	 * forever (the lab's console log then has the kernel's own report of it).
	 */
	kill(pid, SIGKILL);
	for (i = 0; waitpid(pid, NULL, WNOHANG) == 0; i++) {
		if (i == 100) {
			fprintf(stderr, "lab-boottime: the VMM (pid %d) did not exit 10 s after SIGKILL: "
					"stuck in the kernel\n", (int)pid);
			return 1;
		}
		usleep(100 * 1000);
	}
	if (t1 < 0)
		return 1;
	if (r) {
		fprintf(stderr, "lab-boottime: cannot read /proc/%d memory: %s\n", (int)pid,
			strerror(-r));
		return 1;
	}
	printf("boottime: ms=%.1f own_kib=%llu own_private_kib=%llu own_anon_kib=%llu "
	       "own_pss_kib=%llu peak_own_kib=%llu guest_kib=%llu rss_kib=%llu\n",
	       t1 - t0, (unsigned long long)m.own_kib, (unsigned long long)m.own_private_kib,
	       (unsigned long long)m.own_anon_kib, (unsigned long long)m.own_pss_kib,
	       (unsigned long long)(m.hwm_kib > m.guest_kib ? m.hwm_kib - m.guest_kib : 0),
	       (unsigned long long)m.guest_kib, (unsigned long long)m.rss_kib);
	return 0;
}
