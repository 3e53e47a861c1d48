/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The guest's side of PCI and virtio-pci for the device fuzz targets (on fake_machine.h):
 * configuration space through ECAM, a driver that brings a virtio device up through its
 * BAR, and each device's I/O thread run on the caller's thread so that every input is
 * served the same way. The real I/O threads stay parked (fake_machine_pause(true)); the
 * target calls fake_virtio_serve() where the thread would have woken.
 */
#ifndef KEEL_TESTS_FUZZ_FAKE_VIRTIO_H
#define KEEL_TESTS_FUZZ_FAKE_VIRTIO_H

#include <linux/virtio_pci.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pci_dev;
struct virtio_dev;

/* The virtio devices, each made on first use at the lowest free slot: virtio-rng,
 * virtio-console (its host side is fake_chardev(0)) and virtio-net on one end of a datagram
 * socket pair (*peer: the other end, the "tap" side, non-blocking; each call discards the
 * frames queued either way). Their I/O threads run until the target calls
 * fake_machine_pause(true). */
struct virtio_dev *fake_virtio_rng(void);
struct virtio_dev *fake_virtio_console(void);
struct virtio_dev *fake_virtio_net(int *peer);
/* A second virtio-net with two queue pairs (multi-queue: MQ and the control queue), each on
 * its own socket pair (peer[k]: pair k's "tap" side), as fake_virtio_net. */
struct virtio_dev *fake_virtio_net_mq(int peer[2]);
/* All three on the machine, their I/O threads parked: rng, console, net. */
#define FAKE_VIRTIO_NDEV 3
void fake_virtio_devices(struct virtio_dev *dev[FAKE_VIRTIO_NDEV], int *net_peer);
/* Serve each (and the console's held input), and drop what virtio-net sent. */
void fake_virtio_serve_all(struct virtio_dev *const dev[FAKE_VIRTIO_NDEV], int net_peer);
/* fake_pci_check and fake_virtio_check of each; every ioeventfd registered is one a device
 * holds. */
void fake_virtio_check_all(struct virtio_dev *const dev[FAKE_VIRTIO_NDEV]);

/* Configuration space of bus 0, slot, function 0 through ECAM. */
uint64_t fake_ecam_read(unsigned slot, unsigned off, unsigned size);
void fake_ecam_write(unsigned slot, unsigned off, unsigned size, uint64_t value);
/* Where BAR bar of d decodes now, or 0. */
uint64_t fake_pci_bar(const struct pci_dev *d, unsigned bar);
/* BAR decoding as the registers say (addresses, sizes, windows, the command register) and
 * MSI-X's flags as its capability says, routes installed for every deliverable vector. */
void fake_pci_check(const struct pci_dev *d);

/* The transport BAR's registers (common configuration at 0, ISR, device, notify); FAKE_CC
 * names a common configuration register's offset. */
#define FAKE_CC(field) offsetof(struct virtio_pci_common_cfg, field)
uint64_t fake_virtio_read(struct virtio_dev *vd, unsigned off, unsigned size);
void fake_virtio_write(struct virtio_dev *vd, unsigned off, unsigned size, uint64_t value);

struct fake_vq {
	uint16_t size;
	uint16_t vector; /* 0xffff: none */
	uint64_t desc, avail, used;
};

/* A driver's bring-up: memory decoding and MSI-X on, reset, ACKNOWLEDGE and DRIVER, the
 * offered features that features (VERSION_1 added) asks for, FEATURES_OK, queues 0 to
 * nq - 1, DRIVER_OK. False when the device refused a step. */
bool fake_virtio_start(struct virtio_dev *vd, uint64_t features, const struct fake_vq *q,
		       unsigned nq);
/* A VM reset, then fake_virtio_start with nq queues of qsize entries, queue i's rings at
 * stride * i (avail at +0x100, used at +0x200: qsize up to 64) and MSI-X vector i + 1. */
bool fake_virtio_restart(struct virtio_dev *vd, uint64_t features, unsigned nq, uint16_t qsize,
			 uint64_t stride);
/* The driver notifies queue q (a 16-bit write of q to its notify address). */
void fake_virtio_notify(struct virtio_dev *vd, unsigned q);
/* The I/O thread's handler of queue q alone (nothing else served: completions stay
 * unreaped), under the device's lock. */
void fake_virtio_queue_notify(struct virtio_dev *vd, unsigned q);
/* The used index of a split ring whose used area is at guest address used. */
uint16_t fake_virtio_used_idx(uint64_t used);
/* Run what the I/O thread would: every kick and fd event pending on the device, until
 * none is left (a device that stays busy for ever fails a check). */
void fake_virtio_serve(struct virtio_dev *vd);
/* The transport's invariants: enabled queues map rings in RAM, vectors exist, features,
 * status, and each ioeventfd the device holds is registered where its notify BAR is.
 * Returns how many ioeventfds it holds. */
unsigned fake_virtio_check(struct virtio_dev *vd);

#endif
