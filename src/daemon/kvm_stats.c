/* SPDX-License-Identifier: Apache-2.0 */
#include "daemon/kvm_stats.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* struct kvm_stats_header and the fixed part of struct kvm_stats_desc, as the ABI has them. */
#define HDR_SIZE      24u
#define DESC_SIZE     16u
#define NAME_MAX_SIZE 4096u
#define DESC_MAX      65536u

static const char *const counters[KVM_STATS_MAX_COUNTERS] = {"irq_injections", "nmi_injections",
							     "halt_wakeup"};

static uint32_t get_u32(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static uint16_t get_u16(const unsigned char *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

int kvm_stats_need(const void *buf, size_t len, size_t *need)
{
	const unsigned char *h = buf;
	uint32_t name_size, num_desc, desc_offset;
	uint64_t end;

	if (len < HDR_SIZE)
		return -EPROTO;
	name_size = get_u32(h + 4);
	num_desc = get_u32(h + 8);
	desc_offset = get_u32(h + 16);
	if (!name_size || name_size > NAME_MAX_SIZE || num_desc > DESC_MAX ||
	    desc_offset < HDR_SIZE)
		return -EPROTO;
	/* At most 65536 * (16 + 4096) + 2^32: no overflow in 64 bits. */
	end = (uint64_t)desc_offset + (uint64_t)num_desc * (DESC_SIZE + name_size);
	if (end > KVM_STATS_MAX_DESC_BYTES)
		return -EPROTO;
	*need = (size_t)end;
	return 0;
}

int kvm_stats_parse(const void *buf, size_t len, struct kvm_stats_map *map)
{
	const unsigned char *b = buf;
	uint32_t name_size, num_desc, desc_offset, data_offset;
	size_t need;
	int r = kvm_stats_need(buf, len, &need);

	memset(map, 0, sizeof(*map));
	if (r)
		return r;
	if (need > len)
		return -EPROTO;
	name_size = get_u32(b + 4);
	num_desc = get_u32(b + 8);
	desc_offset = get_u32(b + 16);
	data_offset = get_u32(b + 20);
	for (uint32_t i = 0; i < num_desc; i++) {
		const unsigned char *d = b + desc_offset + (size_t)i * (DESC_SIZE + name_size);
		const char *name = (const char *)d + DESC_SIZE;
		uint32_t flags = get_u32(d), offset = get_u32(d + 8);
		uint16_t size = get_u16(d + 6);

		if (!memchr(name, '\0', name_size))
			return -EPROTO; /* a name must end within its field */
		if ((flags & KVM_STATS_TYPE_MASK) != KVM_STATS_TYPE_CUMULATIVE ||
		    (flags & KVM_STATS_UNIT_MASK) != KVM_STATS_UNIT_NONE || size != 1)
			continue;
		for (unsigned c = 0; c < KVM_STATS_MAX_COUNTERS; c++) {
			if (strcmp(name, counters[c]) || map->n == KVM_STATS_MAX_COUNTERS)
				continue;
			/* data_offset + offset < 2^33: a u64 within the fd's offsets. */
			if (strcmp(name, "halt_wakeup"))
				map->injected |= 1u << map->n;
			map->offset[map->n++] = (uint64_t)data_offset + offset;
		}
	}
	return map->n ? 0 : -ENOENT;
}

int kvm_stats_map_fd(int fd, struct kvm_stats_map *map)
{
	unsigned char hdr[HDR_SIZE];
	unsigned char *buf;
	size_t need;
	ssize_t n = pread(fd, hdr, sizeof(hdr), 0);
	int r;

	memset(map, 0, sizeof(*map));
	if (n < 0)
		return -errno;
	r = kvm_stats_need(hdr, (size_t)n, &need);
	if (r)
		return r;
	buf = malloc(need);
	if (!buf)
		return -ENOMEM;
	n = pread(fd, buf, need, 0);
	r = n < 0 ? -errno : kvm_stats_parse(buf, (size_t)n, map);
	free(buf);
	return r;
}

int kvm_stats_sum(int fd, const struct kvm_stats_map *map, uint64_t *sum, uint64_t *injected)
{
	*sum = *injected = 0;
	for (unsigned i = 0; i < map->n; i++) {
		uint64_t v;
		ssize_t n = pread(fd, &v, sizeof(v), (off_t)map->offset[i]);

		if (n < 0)
			return -errno;
		if (n != sizeof(v))
			return -EPROTO;
		*sum += v;
		if (map->injected & (1u << i))
			*injected += v;
	}
	return 0;
}
