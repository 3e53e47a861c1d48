/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lab-echocount: count the ICMP echo requests and replies between two other hosts that reach
 * an interface, as a port mirroring destination sees them (71-switch-mirror,
 * docs/networking.md "Port mirroring"):
 *
 *   lab-echocount IFNAME SECONDS A B    for SECONDS, the IPv4 echo requests from A to B and
 *                                       the replies from B to A seen on IFNAME
 *
 * A packet socket sees frames for other MACs too (PACKET_OTHERHOST) without promiscuous
 * mode: virtio-net hands the guest every frame its tap sends. Prints "requests N replies M".
 * Exit status 0, or 1 with a message on stderr. Built static by tests/lab/lab.sh into the
 * guest's initramfs.
 */
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_IP)};
	struct timeval tv = {.tv_usec = 200000};
	struct in_addr a, b;
	unsigned long requests = 0, replies = 0;
	time_t end;
	int fd, secs = argc == 5 ? atoi(argv[2]) : 0;

	if (argc != 5 || secs < 1 || !inet_aton(argv[3], &a) || !inet_aton(argv[4], &b) ||
	    !(sll.sll_ifindex = (int)if_nametoindex(argv[1]))) {
		fprintf(stderr, "usage: lab-echocount IFNAME SECONDS A B\n");
		return 1;
	}
	fd = socket(AF_PACKET, SOCK_DGRAM, htons(ETH_P_IP));
	if (fd < 0 || bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0) {
		perror("lab-echocount: packet socket");
		return 1;
	}
	end = time(NULL) + secs;
	while (time(NULL) < end) {
		unsigned char buf[2048];
		struct iphdr ip;
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		size_t hl;

		if (n < (ssize_t)sizeof(ip))
			continue;
		memcpy(&ip, buf, sizeof(ip));
		hl = (size_t)ip.ihl * 4;
		if (ip.version != 4 || ip.protocol != IPPROTO_ICMP || hl < sizeof(ip) ||
		    (size_t)n < hl + 1)
			continue;
		if (ip.saddr == a.s_addr && ip.daddr == b.s_addr && buf[hl] == ICMP_ECHO)
			requests++;
		else if (ip.saddr == b.s_addr && ip.daddr == a.s_addr && buf[hl] == ICMP_ECHOREPLY)
			replies++;
	}
	printf("requests %lu replies %lu\n", requests, replies);
	return 0;
}
