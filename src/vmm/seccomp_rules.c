/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What each thread class of a jailed worker may call (seccomp_filter.h, docs/security.md): the one
 * place to extend. A call that is not here ends the worker with its name as the VM's crash
 * reason. Each rule is in one table; a class lists its tables (seccomp_classes, at the end).
 * Add a call to the table of the threads that make it, with arguments narrowed where the
 * kernel would otherwise do more than the worker needs (ioctl requests, clone flags).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <linux/vhost.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include "vmm/seccomp_filter.h"

#define ANY(nr)                                                                                    \
	{                                                                                          \
		(nr), SECCOMP_ANY, 0, NULL, 0, 0                                                   \
	}
#define ARG_IN(nr, arg, list)                                                                      \
	{                                                                                          \
		(nr), SECCOMP_ARG_IN, (arg), (list), sizeof(list) / sizeof((list)[0]), 0           \
	}
#define ARG_BITS(nr, arg, bits)                                                                    \
	{                                                                                          \
		(nr), SECCOMP_ARG_BITS, (arg), (bits), 1, 0                                        \
	}
#define ARG_CLEAR(nr, arg, bits)                                                                   \
	{                                                                                          \
		(nr), SECCOMP_ARG_CLEAR, (arg), (bits), 1, 0                                       \
	}
#define FAIL(nr, e)                                                                                \
	{                                                                                          \
		(nr), SECCOMP_ANY, 0, NULL, 0, (e)                                                 \
	}
#define TABLE(n, r)                                                                                \
	{                                                                                          \
		(n), (r), sizeof(r) / sizeof((r)[0])                                               \
	}

/* The vCPU state a vCPU thread reads and writes (runs, pauses, crash reports, saves). */
#define VCPU_IOCTLS                                                                                \
	KVM_RUN, KVM_GET_REGS, KVM_SET_REGS, KVM_GET_SREGS, KVM_SET_SREGS, KVM_GET_FPU,            \
		KVM_SET_FPU, KVM_GET_MSRS, KVM_SET_MSRS, KVM_GET_LAPIC, KVM_SET_LAPIC,             \
		KVM_GET_VCPU_EVENTS, KVM_SET_VCPU_EVENTS, KVM_GET_MP_STATE, KVM_SET_MP_STATE,      \
		KVM_GET_XSAVE, KVM_GET_XSAVE2, KVM_SET_XSAVE, KVM_GET_XCRS, KVM_SET_XCRS,          \
		KVM_GET_DEBUGREGS, KVM_SET_DEBUGREGS, KVM_SET_CPUID2

/* The main thread builds and rebuilds the machine (reset, restore), so it keeps the whole
 * KVM interface keel-vmm uses (kvm.c), and nothing else: no terminal, socket or tap ioctls. */
static const uint64_t main_ioctls[] = {
	VCPU_IOCTLS,
	KVM_CHECK_EXTENSION,
	KVM_GET_API_VERSION,
	KVM_GET_VCPU_MMAP_SIZE,
	KVM_GET_SUPPORTED_CPUID,
	KVM_GET_MSR_INDEX_LIST,
	KVM_CREATE_VM,
	KVM_CREATE_VCPU,
	KVM_GET_STATS_FD, /* a new vCPU's statistics for keeld (reset, restore rebuild them) */
	KVM_CREATE_IRQCHIP,
	KVM_CREATE_PIT2,
	KVM_SET_TSS_ADDR,
	KVM_SET_IDENTITY_MAP_ADDR,
	KVM_SET_USER_MEMORY_REGION,
	KVM_SET_GSI_ROUTING,
	KVM_IRQ_LINE,
	KVM_IRQFD,
	KVM_IOEVENTFD,
	KVM_GET_IRQCHIP,
	KVM_SET_IRQCHIP,
	KVM_GET_PIT2,
	KVM_SET_PIT2,
	KVM_GET_CLOCK,
	KVM_SET_CLOCK,
};
static const uint64_t vcpu_ioctls[] = {VCPU_IOCTLS};
/* What a guest's port or MMIO access makes a vCPU thread do to the VM: interrupt lines (serial,
 * RTC, PM timer), MSI routes and their irqfds (MSI-X table writes), ioeventfds (a virtio
 * queue enabled or a BAR moved), the variable flash's memory slot (mapped in read-array
 * mode, taken away for a command: machine_rom_window). */
static const uint64_t vcpu_vm_ioctls[] = {KVM_IRQ_LINE, KVM_SET_GSI_ROUTING, KVM_IRQFD,
					  KVM_IOEVENTFD, KVM_SET_USER_MEMORY_REGION};
/* pthread_create's clone: threads only, never a new process. */
static const uint64_t clone_thread[] = {CLONE_THREAD};
/* No new executable memory once jailed: code injected into the worker cannot be run from
 * pages it maps or makes executable (everything it executes was mapped before the jail). */
static const uint64_t prot_exec[] = {PROT_EXEC};
static const uint64_t prctl_name[] = {PR_SET_NAME};
/* virtio-vsock's guest connects: Unix sockets only. */
static const uint64_t af_unix[] = {AF_UNIX};
static const uint64_t at_empty_path[] = {AT_EMPTY_PATH};
/* The tap's offloads, and attaching and detaching a multi-queue tap's queues as the guest
 * enables queue pairs (virtio/net.c). */
static const uint64_t net_ioctls[] = {TUNSETOFFLOAD, TUNSETQUEUE};
/* virtio-net's kernel data path (virtio/vhost_net.c): the rings handed to vhost-net when the
 * driver starts (a vCPU thread's status write) or the VM resumes or is restored (the main
 * loop) or the driver enables a queue pair (the device's I/O thread, which serves the
 * control queue), and taken back on a reset, a pause or a pair disabled; the tap's offloads
 * are set as the rings go. The
 * owner and the features are set when the adapter is made: before the jail for the adapters
 * the VM starts with, after it (the main loop: vhost_open_ioctls) for one hot-added. Only on
 * an open /dev/vhost-net (and the tap) do these numbers mean anything. */
static const uint64_t vhost_ioctls[] = {
	VHOST_SET_FEATURES,   VHOST_SET_MEM_TABLE,   VHOST_SET_LOG_BASE,   VHOST_SET_VRING_NUM,
	VHOST_SET_VRING_BASE, VHOST_SET_VRING_ADDR,  VHOST_SET_VRING_KICK, VHOST_SET_VRING_CALL,
	VHOST_GET_VRING_BASE, VHOST_NET_SET_BACKEND, TUNSETOFFLOAD,
};
/* A network adapter hot-added with keeld's /dev/vhost-net (control "nic-add" with
 * "vhost_fd", hotplug.c, on the main loop): the card is made there, and vhost_net_open makes
 * the worker the instance's owner (VHOST_SET_OWNER, once per instance: a second is EBUSY)
 * and reads what the kernel offers (VHOST_GET_FEATURES), as it does for the adapters the VM
 * starts with before the jail. The main loop only: no vCPU or I/O thread makes a card. Its
 * interrupt relays' eventfds and their watches are register_rules' and watch_rules'. */
static const uint64_t vhost_open_ioctls[] = {VHOST_SET_OWNER, VHOST_GET_FEATURES};
/* A medium inserted through the control socket that is a block device: its size
 * (disk/raw.c). */
static const uint64_t media_ioctls[] = {BLKGETSIZE64};
/* rt_sigaction: every signal but SIGSYS (1-64, x86-64's numbers). The worker's SIGSYS handler,
 * which reports a refused call and ends the worker, is set before the first filter; a
 * taken-over worker that could replace it (or ignore SIGSYS) would survive its refused calls.
 * A list of allowed values, each compared on the low 32 bits the kernel reads (an inequality
 * on the 64-bit register would let SIGSYS through with high bits set). */
_Static_assert(SIGSYS == 31, "rt_sigaction's list assumes x86-64's signal numbers");
static const uint64_t not_sigsys[] = {
	1,  2,	3,  4,	5,  6,	7,  8,	9,  10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
	22, 23, 24, 25, 26, 27, 28, 29, 30, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43,
	44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64};

/* Every thread of every class: memory, locks, time, signals (vCPU kicks, the I/O threads'
 * confinement), ending, and what the SIGSYS handler calls to report a forbidden call
 * (seccomp_filter.c). sched_getaffinity reads the caller's own CPU mask: glibc's
 * __get_nprocs falls back to it when /sys and /proc cannot be opened (the jail), and its
 * malloc counts CPUs that way when a thread needs a new arena while more than 8 exist
 * (the jail also caps the arenas first, seccomp_install_process). */
static const struct seccomp_rule thread_rules[] = {
	ANY(SYS_read),
	ANY(SYS_write),
	ANY(SYS_pwrite64),
	ANY(SYS_ftruncate),
	ANY(SYS_fsync),
	ANY(SYS_futex),
	ARG_CLEAR(SYS_mmap, 2, prot_exec),
	ANY(SYS_munmap),
	ARG_CLEAR(SYS_mprotect, 2, prot_exec),
	ANY(SYS_madvise),
	ANY(SYS_brk),
	ANY(SYS_clock_gettime),
	ANY(SYS_clock_nanosleep),
	ANY(SYS_nanosleep),
	ANY(SYS_sched_yield),
	ANY(SYS_sched_getaffinity),
	ANY(SYS_getpid),
	ANY(SYS_gettid),
	ANY(SYS_tgkill),
	ANY(SYS_rt_sigprocmask),
	ANY(SYS_rt_sigreturn),
	ANY(SYS_restart_syscall),
	ANY(SYS_exit),
	ANY(SYS_exit_group),
};

/* The event loop: control and console sockets, signals, saving and restoring (files in the
 * jail), resetting the machine, starting vCPU threads. */
static const struct seccomp_rule main_rules[] = {
	ARG_IN(SYS_ioctl, 1, main_ioctls),
	ARG_IN(SYS_ioctl, 1, media_ioctls),
	ANY(SYS_readv),
	ANY(SYS_pread64),
	ANY(SYS_accept4),
	ANY(SYS_recvfrom),
	ANY(SYS_recvmsg),
	ANY(SYS_shutdown),
	ANY(SYS_fcntl),
	ANY(SYS_timerfd_settime), /* pflash's paced save, virtio-net's link wait (control "link") */
	/* A network adapter hot-added (control "nic-add", hotplug.c): its I/O thread's epoll set
	 * and link timer here; the thread starts under this filter and adds the virtio-net
	 * class's (seccomp_threads.c), so this filter allows all that class needs: its tap's
	 * offloads too. */
	ANY(SYS_epoll_create1),
	ANY(SYS_timerfd_create),
	ARG_IN(SYS_ioctl, 1, net_ioctls),
	/* ... and on keeld's /dev/vhost-net, becoming its owner (vhost_open_ioctls). */
	ARG_IN(SYS_ioctl, 1, vhost_open_ioctls),
	ANY(SYS_openat),
	ANY(SYS_mkdir),
	ANY(SYS_mkdirat),
	ANY(SYS_rename),
	ANY(SYS_renameat),
	ANY(SYS_renameat2),
	ANY(SYS_unlink),
	ANY(SYS_unlinkat),
	ANY(SYS_fdatasync),
	ANY(SYS_fallocate),
	ANY(SYS_lseek),
	ANY(SYS_fstat),
	ANY(SYS_newfstatat),
	ANY(SYS_statx),
	ANY(SYS_mremap),
#if defined(KEEL_TEST_HOOKS)
	/* Test builds note the uid a saved state is parsed as (parse_euid.c), also a restore's
	 * into the running worker (control "restore"). */
	ANY(SYS_geteuid),
#endif
	ARG_IN(SYS_rt_sigaction, 0, not_sigsys),
	ARG_BITS(SYS_clone, 0, clone_thread),
	/* clone3's flags are behind a pointer a filter cannot read: glibc falls back to
	 * clone when it is not there. */
	FAIL(SYS_clone3, ENOSYS),
	ANY(SYS_set_robust_list),
	ANY(SYS_rseq),
	ARG_IN(SYS_prctl, 0, prctl_name),
	/* A vCPU thread, started under this filter, adds its own (a filter only narrows). */
	ANY(SYS_seccomp),
};

/* A vCPU thread: KVM_RUN and its own state, interrupt lines. */
static const struct seccomp_rule vcpu_rules[] = {
	ARG_IN(SYS_ioctl, 1, vcpu_ioctls),
	ARG_IN(SYS_ioctl, 1, vcpu_vm_ioctls),
};

/* Handing virtio-net's rings to vhost-net and back (vhost_ioctls): vCPU threads, the main
 * loop and virtio-net's I/O thread (queue pairs enabled and disabled). */
static const struct seccomp_rule vhost_rules[] = {
	ARG_IN(SYS_ioctl, 1, vhost_ioctls),
};

/* The end of a thread the main loop outlives (vCPU and device threads): glibc's malloc,
 * trimming the thread's heap, reads /proc/sys/vm/overcommit_memory once; it takes a failure
 * for "no". */
static const struct seccomp_rule thread_end_rules[] = {
	FAIL(SYS_openat, EACCES),
};

/* What a guest's register write makes a device do on the thread that takes it (the main loop
 * or a vCPU thread): a device's eventfds come and go (queue enable, device reset). */
static const struct seccomp_rule register_rules[] = {
	ANY(SYS_eventfd2),
};

/* A device's watches in its I/O thread's epoll set (virtio_dev_watch) change on the thread
 * that serves it: the main loop and vCPU threads (queue enable, device reset), and the I/O
 * thread itself (virtio-net's tap as the guest's buffers run out and come back,
 * virtio-vsock's sockets). */
static const struct seccomp_rule watch_rules[] = {
	ANY(SYS_epoll_ctl),
};

/* Random bytes: virtio-rng's, a VHDX's new GUIDs (its data-write GUID at the first write). */
static const struct seccomp_rule random_rules[] = {
	ANY(SYS_getrandom),
};

/* Output to the console's clients (chardev.c): the serial port's (on a vCPU thread's port
 * exit), virtio-console's (its I/O thread), the loop's; a client that went away is closed. */
static const struct seccomp_rule chardev_rules[] = {
	ANY(SYS_writev),
	ANY(SYS_sendto),
	ANY(SYS_sendmsg),
	ANY(SYS_close),
};

/* Waiting in an epoll set: the main loop, and every virtio device's I/O thread (virtio/pci.c)
 * on its queues' eventfds and its device's watches (it reads the eventfds and signals irqfds
 * with read and write). */
static const struct seccomp_rule wait_rules[] = {
	ANY(SYS_epoll_wait),
	ANY(SYS_epoll_pwait),
};

/* A disk's file, on a disk device's I/O thread and the block thread pool (blkio/pool.c), which
 * runs the disk library's slow operations too: reads, writes and flushes, VHDX metadata,
 * block allocation, write-zeroes and discards (fallocate). */
static const struct seccomp_rule disk_rules[] = {
	ANY(SYS_preadv),
	ANY(SYS_pwritev),
	ANY(SYS_pread64),
	ANY(SYS_fdatasync),
	ANY(SYS_fallocate),
	ANY(SYS_fstat),
	/* glibc's fstat is newfstatat(fd, "", AT_EMPTY_PATH) */
	ARG_BITS(SYS_newfstatat, 3, at_empty_path),
};

/* A disk device's I/O thread submits to and reaps its io_uring rings, which are set up with
 * the device, before the filter (so no io_uring_setup or io_uring_register). The main loop
 * and vCPU threads too: a device reset from a guest's status write (a vCPU thread) drains
 * the requests in flight (blkio_reap waits in io_uring_enter), and a pause's quiesce or a
 * medium change on the main loop commits (io_uring_submit). The rings themselves run only
 * reads, writes and flushes (blkio_uring_restrict). */
static const struct seccomp_rule uring_rules[] = {
	ANY(SYS_io_uring_enter),
};

/* A disk device's I/O thread arms its storage QoS timer (virtio/blk_throttle.c). */
static const struct seccomp_rule qos_rules[] = {
	ANY(SYS_timerfd_settime),
};

/* virtio-net's I/O thread: frames from and to the tap, whose offloads follow what the
 * guest's driver negotiated (virtio/net.c). */
static const struct seccomp_rule net_rules[] = {
	ARG_IN(SYS_ioctl, 1, net_ioctls),
	ANY(SYS_readv),
	ANY(SYS_writev),
};

/* virtio-vsock's I/O thread (virtio/vsock.c): host clients accepted, guest connects to
 * PATH_<port> in the jail (AF_UNIX only), data, half-closes and closes, its deadline timer. */
/* clang-format off */
static const struct seccomp_rule vsock_rules[] = {
	ANY(SYS_accept4),
	ARG_IN(SYS_socket, 0, af_unix),
	ANY(SYS_connect),
	ANY(SYS_sendto),
	ANY(SYS_recvfrom),
	ANY(SYS_shutdown),
	ANY(SYS_close),
	ANY(SYS_timerfd_settime),
};
/* clang-format on */

/* Sanitizer builds only (the test suite's): what ASan and UBSan's runtimes call on their own,
 * mostly to report an error (the process's maps, its limits, stopping other threads). */
/* clang-format off */
static const struct seccomp_rule sanitizer_rules[] = {
	ANY(SYS_openat),    ANY(SYS_close),	ANY(SYS_fstat),	     ANY(SYS_newfstatat),
	ANY(SYS_lseek),	    ANY(SYS_readlink),	ANY(SYS_readlinkat), ANY(SYS_mincore),
	ANY(SYS_getppid),   ANY(SYS_kill),	ANY(SYS_prctl),	     ANY(SYS_sigaltstack),
	ANY(SYS_getrlimit), ANY(SYS_prlimit64), ANY(SYS_uname),
	/* Never SIGSYS (the runtimes set their handlers before the jail). */
	ARG_IN(SYS_rt_sigaction, 0, not_sigsys),
};
/* clang-format on */

static const struct seccomp_table thread_tab = TABLE("thread", thread_rules),
				  main_tab = TABLE("main", main_rules),
				  vcpu_tab = TABLE("vcpu", vcpu_rules),
				  thread_end_tab = TABLE("thread-end", thread_end_rules),
				  register_tab = TABLE("register", register_rules),
				  watch_tab = TABLE("watch", watch_rules),
				  random_tab = TABLE("random", random_rules),
				  chardev_tab = TABLE("chardev", chardev_rules),
				  wait_tab = TABLE("wait", wait_rules),
				  uring_tab = TABLE("uring", uring_rules),
				  disk_tab = TABLE("disk", disk_rules),
				  qos_tab = TABLE("qos", qos_rules),
				  net_tab = TABLE("net", net_rules),
				  vhost_tab = TABLE("vhost", vhost_rules),
				  vsock_tab = TABLE("vsock", vsock_rules);

const struct seccomp_table seccomp_sanitizer = TABLE("sanitizer", sanitizer_rules);

/* Each class's filter: its tables (every class starts with the every-thread table). A vCPU
 * thread is started by the main loop and inherits its filter, so the vCPU class must stay
 * within the main loop's: each of its tables but its own is one of main's, and its own
 * allows nothing main's does not. */
#define CLASS(n, ...)                                                                              \
	{                                                                                          \
		(n), {__VA_ARGS__},                                                                \
			sizeof((const struct seccomp_table *[]){__VA_ARGS__}) /                    \
				sizeof(const struct seccomp_table *)                               \
	}

const struct seccomp_class_list seccomp_classes[SECCOMP_NCLASSES] = {
	[SECCOMP_MAIN] = CLASS("main loop", &thread_tab, &main_tab, &wait_tab, &watch_tab,
			       &register_tab, &random_tab, &chardev_tab, &uring_tab, &vhost_tab),
	[SECCOMP_VCPU] = CLASS("vCPU", &thread_tab, &vcpu_tab, &watch_tab, &register_tab,
			       &random_tab, &chardev_tab, &uring_tab, &vhost_tab, &thread_end_tab),
	[SECCOMP_DISK] = CLASS("disk I/O", &thread_tab, &wait_tab, &watch_tab, &disk_tab,
			       &uring_tab, &random_tab, &qos_tab, &thread_end_tab),
	[SECCOMP_BLOCK_POOL] =
		CLASS("block pool", &thread_tab, &disk_tab, &random_tab, &thread_end_tab),
	[SECCOMP_NET] = CLASS("virtio-net I/O", &thread_tab, &wait_tab, &watch_tab, &net_tab,
			      &vhost_tab, &thread_end_tab),
	[SECCOMP_VSOCK] = CLASS("virtio-vsock I/O", &thread_tab, &wait_tab, &watch_tab, &vsock_tab,
				&thread_end_tab),
	[SECCOMP_CONSOLE] = CLASS("virtio-console I/O", &thread_tab, &wait_tab, &watch_tab,
				  &chardev_tab, &thread_end_tab),
	[SECCOMP_RNG] = CLASS("virtio-rng I/O", &thread_tab, &wait_tab, &watch_tab, &random_tab,
			      &thread_end_tab),
};
