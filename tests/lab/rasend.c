/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lab-ra: send router advertisements, as a rogue router in a guest would, for the router
 * guard's lab check (69-switch-guards, docs/networking.md "Guards"):
 *
 *   lab-ra IFNAME COUNT    COUNT RAs (router lifetime 0, no options) to ff02::1 on IFNAME,
 *                          hop limit 255, 100 ms apart
 *
 * The receiving guest counts them in /proc/net/snmp6 (Icmp6InRouterAdvertisements). Exit
 * status 0 once all were sent, or 1 with a message on stderr. Built static by
 * tests/lab/lab.sh into the guest's initramfs.
 */
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sockaddr_in6 to = {.sin6_family = AF_INET6};
	struct nd_router_advert ra = {.nd_ra_type = ND_ROUTER_ADVERT, .nd_ra_curhoplimit = 64};
	int fd, hops = 255, loop = 0, count = argc == 3 ? atoi(argv[2]) : 0;
	unsigned ifindex = argc == 3 ? if_nametoindex(argv[1]) : 0;

	if (!ifindex || count < 1) {
		fprintf(stderr,
			"usage: lab-ra IFNAME COUNT (an interface that exists, COUNT >= 1)\n");
		return 1;
	}
	fd = socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6); /* the kernel sums ICMPv6 */
	if (fd < 0 || setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &hops, sizeof(hops)) < 0 ||
	    setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &ifindex, sizeof(ifindex)) < 0 ||
	    setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &loop, sizeof(loop)) < 0) {
		perror("lab-ra: raw ICMPv6 socket");
		return 1;
	}
	inet_pton(AF_INET6, "ff02::1", &to.sin6_addr);
	to.sin6_scope_id = ifindex;
	for (int i = 0; i < count; i++) {
		if (sendto(fd, &ra, sizeof(ra), 0, (struct sockaddr *)&to, sizeof(to)) !=
		    (ssize_t)sizeof(ra)) {
			perror("lab-ra: sendto ff02::1");
			return 1;
		}
		usleep(100000);
	}
	printf("sent %d\n", count);
	return 0;
}
