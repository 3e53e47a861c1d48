/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Virtio 1.x devices over the modern PCI transport (virtio 1.2, 4.1), with split virtqueues
 * (queue.h), indirect descriptors and event index.
 *
 * A device is a const virtio_dev_ops table plus its private state (DESIGN.md habit 1);
 * virtio_dev_create() puts it on the PCI bus (pending, out of the guest's sight, in a VM that
 * runs, until its owner publishes it: pci.h). Each device has one I/O thread, or one per
 * group of independent queues where its ops say so (virtio-net: one per queue pair, as QEMU's
 * multiqueue iothreads and Cloud Hypervisor's epoll thread per pair), that waits on its queues'
 * notification eventfds (KVM ioeventfds on the notify BAR; notifications that reach user
 * space are forwarded to the same eventfds) and on the device's own fds (a tap, console
 * input); interrupts leave through MSI-X irqfds. Device I/O therefore never runs on a vCPU
 * thread.
 *
 * Locking: vd->lock protects the transport state, the queues and the device's private
 * state. vCPU threads take it for register accesses; an I/O thread holds it while it
 * serves a queue (a device may let it go around work on its own buffers: virtio-net's tap
 * reads and writes, so that its pairs' threads run at once). A guest that breaks the protocol gets
 * its device marked DEVICE_NEEDS_RESET (virtio_needs_reset), never an abort; the driver recovers by
 * resetting the device.
 */
#ifndef KEEL_VMM_VIRTIO_VIRTIO_H
#define KEEL_VMM_VIRTIO_VIRTIO_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/log.h"
#include "vmm/pci.h"
#include "vmm/seccomp_filter.h"
#include "vmm/virtio/queue.h"
#include "vmm/vthread.h"

struct machine;

#define VIRTIO_MAX_QUEUES  17 /* virtio-net: 8 queue pairs and its control queue */
#define VIRTIO_MAX_FDS	   4
#define VIRTIO_MAX_THREADS 8 /* I/O threads of one device: virtio-net's 8 queue pairs */
#define VIRTIO_NO_VECTOR   0xffff

/* Device types (virtio 1.2, 5). */
#define VIRTIO_ID_NET	  1
#define VIRTIO_ID_BLOCK	  2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_RNG	  4
#define VIRTIO_ID_VSOCK	  19
#define VIRTIO_ID_SCSI	  8

/* Feature bits common to every device. */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX     29
#define VIRTIO_F_VERSION_1     32

/* Device status bits. */
#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER	  2
#define VIRTIO_STATUS_DRIVER_OK	  4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED	  0x80

/* Layout of the transport BAR (BAR 2, 64-bit; the MSI-X table is BAR 0). */
#define VIRTIO_BAR	   2
#define VIRTIO_BAR_SIZE	   0x4000
#define VIRTIO_COMMON_OFF  0x0000
#define VIRTIO_ISR_OFF	   0x1000
#define VIRTIO_DEVICE_OFF  0x2000
#define VIRTIO_NOTIFY_OFF  0x3000
#define VIRTIO_NOTIFY_MULT 4
#define VIRTIO_MSIX_BAR	   0

struct virtio_dev;

struct virtio_dev_ops {
	const char *name;	    /* "virtio-blk" */
	uint16_t device_type;	    /* VIRTIO_ID_* */
	uint32_t class_code;	    /* PCI class, subclass, programming interface */
	enum seccomp_class seccomp; /* its I/O thread's filter in a jailed worker */
	/* Queue q has chains (a notification came, or the device asked). I/O thread. */
	void (*queue_notify)(struct virtio_dev *vd, unsigned q);
	/* Device-specific configuration (virtio_dev.config_size bytes). vCPU threads. */
	void (*config_read)(struct virtio_dev *vd, unsigned off, void *buf, unsigned len);
	void (*config_write)(struct virtio_dev *vd, unsigned off, const void *buf, unsigned len);
	/* The driver set DRIVER_OK (optional). */
	void (*driver_ok)(struct virtio_dev *vd);
	/* The VM is pausing and the I/O thread is parked: complete the requests still in
	 * flight, waiting for them until deadline_ms (clock_mono_ms) at most: what is still in
	 * flight then fails the pause (optional; vd->lock held). */
	void (*quiesce)(struct virtio_dev *vd, long long deadline_ms);
	/* The device was reset by the driver or by a VM reset (optional). */
	void (*reset)(struct virtio_dev *vd);
	/* One of the fds given to virtio_dev_watch() is ready (optional). I/O thread. */
	void (*fd_event)(struct virtio_dev *vd, int fd, uint32_t events);
	/* A queue's MSI-X vector, or whether a vector may be signalled, changed (optional;
	 * vd->lock held; a vCPU thread). */
	void (*vectors_changed)(struct virtio_dev *vd);
	/* The device's state was just loaded from a save (optional; vd->lock held). */
	void (*loaded)(struct virtio_dev *vd);
	/* Free the private state once the I/O thread has stopped (default: free(priv)). */
	void (*release)(struct virtio_dev *vd);
	/* The device's I/O threads (optional: 1; at most VIRTIO_MAX_THREADS) and the one that
	 * waits on queue q's notifications (optional: 0). Asked once, when the device is
	 * created (vd->priv set). */
	unsigned (*threads)(const struct virtio_dev *vd);
	unsigned (*queue_thread)(const struct virtio_dev *vd, unsigned q);
};

/* One I/O thread of a device: its epoll set (its queues' kick eventfds, the fds watched on
 * it) and stop_fd, which wakes it to park or end. */
struct virtio_iothread {
	struct virtio_dev *vd;
	unsigned index;
	struct vthread thread;
	bool started;
	int epfd;
	int stop_fd;
	bool parked;	 /* vd->lock */
	uint64_t served; /* events it served (vd->lock): which thread did the work, for tests */
};

struct virtio_queue {
	uint16_t size, max;
	uint16_t vector;
	bool enabled;
	uint64_t desc, driver, device;
	struct vq vq;
	int kick_fd;	      /* eventfd: the driver notified this queue */
	bool ioeventfd;	      /* kick_fd registered with KVM (host lock) */
	uint64_t notify_addr; /* where (host lock) */
	bool irq_owed;	      /* restored: interrupt the driver once when the VM runs */
	unsigned thread;      /* the I/O thread waiting on kick_fd (ops->queue_thread) */
};

struct virtio_dev {
	/* Set by virtio_dev_create(). */
	const struct virtio_dev_ops *ops;
	void *priv;
	struct machine *m;
	struct pci_dev pci;
	uint64_t host_features;
	unsigned config_size;
	unsigned nqueues;

	/* lock protects everything below. */
	pthread_mutex_t lock;
	uint64_t driver_features;
	uint32_t dfselect, gfselect;
	uint8_t status;
	uint8_t config_gen;
	uint8_t isr;
	uint16_t config_vector;
	uint16_t queue_sel;
	struct virtio_queue q[VIRTIO_MAX_QUEUES];
	uint8_t pcicfg_cap; /* offset of the VIRTIO_PCI_CAP_PCI_CFG capability */
	uint32_t epoch;	    /* counts resets: work begun before one must not complete */
	bool host_reading;  /* a save or restore reads the configuration (state.c), not the
			     * driver */
	struct log_ratelimit rl;

	/* The I/O threads. They park while the VM is paused (paused, nparked, each one's
	 * parked and stopping are under lock; cond signals changes to them); a thread's
	 * stop_fd wakes it for either. */
	unsigned nthreads, nstarted;
	struct virtio_iothread io[VIRTIO_MAX_THREADS];
	pthread_cond_t cond;
	unsigned nparked;
	bool paused, stopping;
};

/* Create a device on the VM's PCI bus at slot (0: the lowest free one) with nqueues queues
 * of at most queue_max entries and config_size bytes of device configuration; starts its
 * I/O thread. */
int virtio_dev_create(struct machine *m, unsigned slot, const struct virtio_dev_ops *ops,
		      void *priv, uint64_t features, unsigned nqueues, uint16_t queue_max,
		      unsigned config_size, struct virtio_dev **out)
	__attribute__((warn_unused_result));
/* Stop the I/O thread and free the device (main thread, vCPUs stopped). */
void virtio_dev_destroy(struct virtio_dev *vd);
/* A device class's last step: the machine destroys vd with the VM (machine_add_teardown).
 * On failure vd is left as it is (the machine's hooks point at it; the VM is not built and
 * the process ends). */
int virtio_dev_keep(struct machine *m, struct virtio_dev *vd) __attribute__((warn_unused_result));
/* Watch fd (EPOLLIN etc.) on the device's (first) I/O thread; events go to ops->fd_event. */
int virtio_dev_watch(struct virtio_dev *vd, int fd, uint32_t events)
	__attribute__((warn_unused_result));
int virtio_dev_watch_mod(struct virtio_dev *vd, int fd, uint32_t events)
	__attribute__((warn_unused_result));
/* Stop watching fd (a device that cannot take an fd's input now: level-triggered hang-ups
 * would otherwise wake the thread for ever). */
int virtio_dev_unwatch(struct virtio_dev *vd, int fd) __attribute__((warn_unused_result));
/* The same on I/O thread t (ops->threads). */
int virtio_dev_watch_on(struct virtio_dev *vd, unsigned t, int fd, uint32_t events)
	__attribute__((warn_unused_result));
int virtio_dev_watch_mod_on(struct virtio_dev *vd, unsigned t, int fd, uint32_t events)
	__attribute__((warn_unused_result));
/* Stop the I/O thread waiting on queue q's notifications (watch false: the host kernel
 * serves the queue, virtio/vhost_net.c) or have it wait again (the queue starts watched). */
int virtio_queue_watch(struct virtio_dev *vd, unsigned q, bool watch)
	__attribute__((warn_unused_result));

/* With vd->lock held (device code on the I/O thread): */
/* Is the device running (DRIVER_OK, not NEEDS_RESET) with queue q enabled? */
/* Take vd->lock once the device holds no chain it took from a ring (a chain is taken once
 * and returned once, so a queue is idle when its next avail entry to read is its next used
 * entry to fill); -EBUSY, lock not held, if that does not happen within
 * VIRTIO_IDLE_WAIT_MS. */
#define VIRTIO_IDLE_WAIT_MS 5000u
int virtio_lock_idle(struct virtio_dev *vd) __attribute__((warn_unused_result));
/* The same, until deadline_ms (clock_mono_ms) rather than VIRTIO_IDLE_WAIT_MS from now. */
int virtio_lock_idle_until(struct virtio_dev *vd, long long deadline_ms)
	__attribute__((warn_unused_result));
bool virtio_queue_ready(struct virtio_dev *vd, unsigned q);
bool virtio_has_feature(const struct virtio_dev *vd, unsigned bit);
/* Take the next valid chain of queue q: 1 (in c), or 0 when there is none or the device
 * is now broken. Malformed chains are completed with 0 bytes and skipped. */
int virtio_pop(struct virtio_dev *vd, unsigned q, struct vq_chain *c);
/* Interrupt the driver for queue q if it wants one. */
void virtio_queue_interrupt(struct virtio_dev *vd, unsigned q);
/* The guest broke the protocol: mark DEVICE_NEEDS_RESET and tell the driver. */
void virtio_needs_reset(struct virtio_dev *vd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Device configuration changed: new generation, configuration interrupt. */
void virtio_config_changed(struct virtio_dev *vd);
/* Ask the I/O thread to run queue_notify for q (any thread, no lock needed). */
void virtio_kick(struct virtio_dev *vd, unsigned q);

/* Device creation from the VM's configuration (vm_create). */
int virtio_rng_create(struct machine *m, unsigned slot, struct virtio_dev **out)
	__attribute__((warn_unused_result));
struct chardev_spec;
struct loop;
int virtio_console_create(struct machine *m, unsigned slot, const struct chardev_spec *spec,
			  struct loop *loop, struct virtio_dev **out, char *err, size_t errlen)
	__attribute__((warn_unused_result));

#endif
