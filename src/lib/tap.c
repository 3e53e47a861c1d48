/* SPDX-License-Identifier: Apache-2.0 */
/* Attaching to a tap device (tap.h). */
#include "lib/tap.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/log.h"

/* One queue of tap name (the first creates it): multi-queue or not, as the tap must be. */
static int tap_queue(const char *name, bool multi, char *ifname, char *err, size_t errlen)
{
	struct ifreq ifr;
	int hdr = TAP_VNET_HDR_SIZE, fd, e;

	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		e = errno;
		snprintf(err, errlen, "--net tap=%s: cannot open /dev/net/tun: %s%s", name,
			 strerror(e), e == ENOENT ? " (load the tun module)" : "");
		return -e;
	}
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | (multi ? IFF_MULTI_QUEUE : 0);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0 || ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0 ||
	    ioctl(fd, TUNSETOFFLOAD, 0) < 0) {
		e = errno;
		snprintf(err, errlen, "--net tap=%s: cannot attach to the tap device: %s%s", name,
			 strerror(e),
			 e == EPERM ? " (this needs CAP_NET_ADMIN, or a tap owned by the user)"
			 : e == EINVAL
				 ? (multi ? " (a tap made without multi_queue takes one queue "
					    "pair: queues=1, or `ip tuntap add NAME mode tap "
					    "multi_queue vnet_hdr`)"
					  : " (a multi-queue tap: give the adapter queues=N)")
				 : "");
		close(fd);
		return -e;
	}
	memcpy(ifname, ifr.ifr_name, IFNAMSIZ);
	return fd;
}

int tap_open_queues(const char *name, unsigned n, int *fds, char *ifname, char *err, size_t errlen)
{
	struct ifreq ifr;
	unsigned i;
	int s;

	for (i = 0; i < n; i++) {
		fds[i] = tap_queue(name, n > 1, ifname, err, errlen);
		if (fds[i] < 0) {
			int e = fds[i];

			while (i--)
				close(fds[i]);
			return e;
		}
	}
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, ifname, IFNAMSIZ);
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s >= 0 && ioctl(s, SIOCGIFFLAGS, &ifr) == 0 && !(ifr.ifr_flags & IFF_UP)) {
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
			log_warn("%s: cannot bring the tap up: %s", ifname, strerror(errno));
	}
	if (s >= 0)
		close(s);
	return 0;
}

int tap_open(const char *name, char *ifname, char *err, size_t errlen)
{
	int fd, r = tap_open_queues(name, 1, &fd, ifname, err, errlen);

	return r ? r : fd;
}

int tap_queue_enable(int fd, bool on)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = on ? IFF_ATTACH_QUEUE : IFF_DETACH_QUEUE;
	return ioctl(fd, TUNSETQUEUE, &ifr) < 0 ? -errno : 0;
}
