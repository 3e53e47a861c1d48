/* SPDX-License-Identifier: Apache-2.0 */
/* Attaching to a tap device (tap.h). */
#include "lib/tap.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/log.h"

int tap_open(const char *name, char *ifname, char *err, size_t errlen)
{
	struct ifreq ifr;
	int hdr = TAP_VNET_HDR_SIZE, fd, s, e;

	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		e = errno;
		snprintf(err, errlen, "--net tap=%s: cannot open /dev/net/tun: %s%s", name,
			 strerror(e), e == ENOENT ? " (load the tun module)" : "");
		return -e;
	}
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0 || ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0 ||
	    ioctl(fd, TUNSETOFFLOAD, 0) < 0) {
		e = errno;
		snprintf(err, errlen, "--net tap=%s: cannot attach to the tap device: %s%s", name,
			 strerror(e),
			 e == EPERM ? " (this needs CAP_NET_ADMIN, or a tap owned by the user)"
				    : "");
		close(fd);
		return -e;
	}
	memcpy(ifname, ifr.ifr_name, IFNAMSIZ);
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s >= 0 && ioctl(s, SIOCGIFFLAGS, &ifr) == 0 && !(ifr.ifr_flags & IFF_UP)) {
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
			log_warn("%s: cannot bring the tap up: %s", ifname, strerror(errno));
	}
	if (s >= 0)
		close(s);
	return fd;
}
