/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-vsock (virtio 1.2, 5.10) emulated in the worker, with the host's side on Unix
 * sockets (Firecracker's and Cloud Hypervisor's "hybrid vsock"; docs/virtio.md):
 *   - host to guest: a host process connects to PATH and writes "CONNECT <port>\n"; the
 *     worker answers "OK <host_port>\n" once the guest accepted, or closes the connection
 *     when the guest refuses or does not answer within VSOCK_HANDSHAKE_MS;
 *   - guest to host: a guest connect to CID 2 port P makes the worker connect to
 *     PATH_P; when nobody listens there the guest gets a RST.
 * Then bytes flow both ways under virtio-vsock's credit flow control. After a resume or a
 * restore the device drops every connection and sends the guest TRANSPORT_RESET, so both
 * sides reconnect.
 */
#ifndef KEEL_VMM_VIRTIO_VSOCK_H
#define KEEL_VMM_VIRTIO_VSOCK_H

#include <stddef.h>
#include <stdint.h>

/* The host side's listen backlog. */
#define VSOCK_BACKLOG 16

struct machine;
struct virtio_dev;

#define VSOCK_HANDSHAKE_MS 5000 /* for the CONNECT line, and for the guest's answer */
#define VSOCK_CLOSE_MS	   5000 /* to hand the host what the guest sent before it closed */
#define VSOCK_MAX_CONNS	   64	/* connections at once, either way */

/* The device at slot with guest CID cid, its host side listening on path (bound now, so
 * before the jail; later connects to path_P are made inside it). */
int virtio_vsock_create(struct machine *m, unsigned slot, uint32_t cid, const char *path,
			struct virtio_dev **out, char *err, size_t errlen)
	__attribute__((warn_unused_result));

#endif
