/* Tiny guests: C entry, multiboot v1 information copy and command-line arguments. */
#include "guest.h"

struct mb_copy mb;

#define MAX_ARGS 32
static char argbuf[sizeof(mb.cmdline)];
static const char *arg_keys[MAX_ARGS], *arg_vals[MAX_ARGS];
static int nargs;

void guest_start(uint32_t magic, uint32_t info);

static void copy_string(char *dst, size_t size, uint32_t addr, uint32_t *len_out)
{
	const char *s = (const char *)(uintptr_t)addr;
	size_t n = 0;
	while (s[n] && n + 1 < size)
		n++;
	memcpy(dst, s, n);
	dst[n] = '\0';
	if (len_out) {
		size_t full = n;
		while (s[full] && full < 65536)
			full++;
		*len_out = (uint32_t)full;
	}
}

static void copy_info(uint32_t info)
{
	const uint32_t *w = (const uint32_t *)(uintptr_t)info;
	mb.info_addr = info;
	mb.flags = w[0];
	if (mb.flags & (1u << 0)) {
		mb.mem_lower = w[1];
		mb.mem_upper = w[2];
	}
	if ((mb.flags & (1u << 2)) && w[4]) {
		mb.has_cmdline = true;
		mb.cmdline_addr = w[4];
		copy_string(mb.cmdline, sizeof(mb.cmdline), w[4], &mb.cmdline_len);
	}
	if (mb.flags & (1u << 3)) {
		mb.mods_addr = w[6];
		const uint32_t *mod = (const uint32_t *)(uintptr_t)w[6];
		for (uint32_t i = 0; i < w[5] && i < MB_MAX_MODS; i++, mod += 4) {
			mb.mods[i].start = mod[0];
			mb.mods[i].end = mod[1];
			if (mod[2])
				copy_string(mb.mods[i].string, sizeof(mb.mods[i].string), mod[2],
				            NULL);
		}
		mb.nmods = w[5];
	}
	if (mb.flags & (1u << 6)) {
		mb.mmap_length = w[11];
		mb.mmap_addr = w[12];
		uint32_t off = 0;
		while (off + 24 <= mb.mmap_length) {
			const uint8_t *e = (const uint8_t *)(uintptr_t)(mb.mmap_addr + off);
			uint32_t size;
			memcpy(&size, e, 4);
			if (mb.nmmap == MB_MAX_MMAP) {
				mb.mmap_truncated = true;
				break;
			}
			struct mb_mmap_entry *m = &mb.mmap[mb.nmmap++];
			memcpy(&m->base, e + 4, 8);
			memcpy(&m->len, e + 12, 8);
			memcpy(&m->type, e + 20, 4);
			if (size < 20) /* malformed; stop rather than loop */
				break;
			off += size + 4;
		}
	}
}

static void parse_args(void)
{
	memcpy(argbuf, mb.cmdline, sizeof(argbuf));
	char *p = argbuf;
	while (*p && nargs < MAX_ARGS) {
		while (*p == ' ')
			p++;
		if (!*p)
			break;
		char *tok = p;
		while (*p && *p != ' ')
			p++;
		if (*p)
			*p++ = '\0';
		char *eq = tok;
		while (*eq && *eq != '=')
			eq++;
		if (!*eq)
			continue; /* not key=value (e.g. the kernel path QEMU prepends) */
		*eq = '\0';
		arg_keys[nargs] = tok;
		arg_vals[nargs] = eq + 1;
		nargs++;
	}
}

const char *mb_arg(const char *key)
{
	for (int i = 0; i < nargs; i++)
		if (!strcmp(arg_keys[i], key))
			return arg_vals[i];
	return NULL;
}

uint64_t mb_arg_u64(const char *key)
{
	const char *v = mb_arg(key);
	uint64_t n;
	if (!v)
		guest_fail("argument %s= missing from the command line '%s'", key, mb.cmdline);
	if (guest_parse_u64(v, &n))
		guest_fail("argument %s=%s is not a number", key, v);
	return n;
}

bool mb_arg_is(const char *key, const char *value)
{
	const char *v = mb_arg(key);
	return v && !strcmp(v, value);
}

static bool overlaps(uint32_t a, uint32_t alen, uint32_t b, uint32_t blen)
{
	return alen && blen && a < b + blen && b < a + alen;
}

bool mb_region_in_use(uint32_t addr, uint32_t len)
{
	if (overlaps(addr, len, (uint32_t)(uintptr_t)__kernel_start,
	             (uint32_t)(__kernel_end - __kernel_start)))
		return true;
	if (overlaps(addr, len, mb.info_addr, 88))
		return true;
	if (mb.has_cmdline && overlaps(addr, len, mb.cmdline_addr, mb.cmdline_len + 1))
		return true;
	if (overlaps(addr, len, mb.mmap_addr, mb.mmap_length))
		return true;
	if (mb.nmods && overlaps(addr, len, mb.mods_addr, 16 * mb.nmods))
		return true;
	for (uint32_t i = 0; i < mb.nmods && i < MB_MAX_MODS; i++)
		if (overlaps(addr, len, mb.mods[i].start, mb.mods[i].end - mb.mods[i].start))
			return true;
	return false;
}

void guest_start(uint32_t magic, uint32_t info)
{
	serial_init();
	idt_init();
	mb.magic = magic;
	if (magic != MB_BOOT_MAGIC)
		guest_fail("entered with EAX 0x%08x, expected the multiboot magic 0x%08x", magic,
		           MB_BOOT_MAGIC);
	copy_info(info);
	parse_args();
	guest_main();
	guest_pass();
}
