/* SPDX-License-Identifier: Apache-2.0 */
#include "lib/agentproto.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/le.h"

enum ap_kind { AP_K_NONE = 0, AP_K_U32, AP_K_U64, AP_K_STR, AP_K_BYTES };

/* What each known attribute must be: its kind, its largest size (strings: NUL included)
 * and whether it may appear more than once. */
struct ap_rule {
	uint8_t kind;
	bool list;
	uint16_t max;
};

_Static_assert(AP_A_TAG_COUNT <= 64, "ap_decode's bitmap of single attributes");

static const struct ap_rule ap_rules[AP_A_TAG_COUNT] = {
	[AP_A_VERSION_MIN] = {AP_K_U32, false, 4},
	[AP_A_VERSION_MAX] = {AP_K_U32, false, 4},
	[AP_A_VERSION] = {AP_K_U32, false, 4},
	[AP_A_AGENT_VERSION] = {AP_K_STR, false, 64},
	[AP_A_SERVICES] = {AP_K_U32, false, 4},
	[AP_A_ERROR] = {AP_K_U32, false, 4},
	[AP_A_MESSAGE] = {AP_K_STR, false, AP_MAX_MESSAGE},
	[AP_A_TIME_NS] = {AP_K_U64, false, 8},
	[AP_A_UPTIME_MS] = {AP_K_U64, false, 8},
	[AP_A_MODE] = {AP_K_U32, false, 4},
	[AP_A_METHOD] = {AP_K_STR, false, 64},
	[AP_A_POOL] = {AP_K_U32, false, 4},
	[AP_A_KEY] = {AP_K_STR, true, AP_MAX_KEY},
	[AP_A_VALUE] = {AP_K_STR, true, AP_MAX_VALUE},
	[AP_A_ARG] = {AP_K_STR, true, AP_MAX_ARG},
	[AP_A_ENV] = {AP_K_STR, true, AP_MAX_ARG},
	[AP_A_CWD] = {AP_K_STR, false, AP_MAX_PATH},
	[AP_A_TIMEOUT_MS] = {AP_K_U32, false, 4},
	[AP_A_PID] = {AP_K_U32, false, 4},
	[AP_A_STREAM] = {AP_K_U32, false, 4},
	[AP_A_DATA] = {AP_K_BYTES, false, AP_MAX_DATA},
	[AP_A_EXIT_STATUS] = {AP_K_U32, false, 4},
	[AP_A_SIGNAL] = {AP_K_U32, false, 4},
	[AP_A_TIMED_OUT] = {AP_K_U32, false, 4},
	[AP_A_PATH] = {AP_K_STR, true, AP_MAX_PATH},
	[AP_A_FILE_MODE] = {AP_K_U32, false, 4},
	[AP_A_UID] = {AP_K_U32, false, 4},
	[AP_A_GID] = {AP_K_U32, false, 4},
	[AP_A_SIZE] = {AP_K_U64, false, 8},
	[AP_A_COPY_FLAGS] = {AP_K_U32, false, 4},
	[AP_A_COUNT] = {AP_K_U32, false, 4},
	[AP_A_EOF] = {AP_K_U32, false, 4},
	[AP_A_OFFSET_NS] = {AP_K_U64, false, 8},
	[AP_A_TTY] = {AP_K_U32, false, 4},
	[AP_A_ROWS] = {AP_K_U32, false, 4},
	[AP_A_COLS] = {AP_K_U32, false, 4},
	[AP_A_USER] = {AP_K_STR, false, 64},
	[AP_A_GROUP] = {AP_K_STR, false, 64},
};

void ap_begin(struct ap_out *o, uint16_t type, uint16_t flags, uint32_t id)
{
	o->len = AP_HDR_SIZE;
	o->err = 0;
	le16_store(o->buf + 4, type);
	le16_store(o->buf + 6, flags);
	le32_store(o->buf + 8, id);
}

bool ap_room(const struct ap_out *o, size_t n)
{
	return o->len <= AP_MAX_FRAME && AP_MAX_FRAME - o->len >= 4 + n;
}

static uint8_t *ap_put(struct ap_out *o, uint16_t tag, size_t n)
{
	uint8_t *p;

	if (o->err)
		return NULL;
	if (n > UINT16_MAX || !ap_room(o, n)) {
		o->err = -EMSGSIZE;
		return NULL;
	}
	p = o->buf + o->len;
	le16_store(p, tag);
	le16_store(p + 2, (uint16_t)n);
	o->len += 4 + n;
	return p + 4;
}

void ap_put_u32(struct ap_out *o, uint16_t tag, uint32_t v)
{
	uint8_t *p = ap_put(o, tag, 4);

	if (p)
		le32_store(p, v);
}

void ap_put_u64(struct ap_out *o, uint16_t tag, uint64_t v)
{
	uint8_t *p = ap_put(o, tag, 8);

	if (p)
		le64_store(p, v);
}

void ap_put_str(struct ap_out *o, uint16_t tag, const char *s)
{
	size_t n = strlen(s);
	uint8_t *p;

	if (!o->err && !ap_utf8_valid((const uint8_t *)s, n)) {
		o->err = -EINVAL;
		return;
	}
	if (!o->err && tag < AP_A_TAG_COUNT && ap_rules[tag].max && n + 1 > ap_rules[tag].max) {
		o->err = -EMSGSIZE;
		return;
	}
	p = ap_put(o, tag, n + 1);
	if (p)
		memcpy(p, s, n + 1);
}

void ap_put_bytes(struct ap_out *o, uint16_t tag, const void *src, size_t n)
{
	uint8_t *p = ap_put(o, tag, n);

	if (p && n)
		memcpy(p, src, n);
}

int ap_end(struct ap_out *o)
{
	if (o->err)
		return o->err;
	le32_store(o->buf, (uint32_t)o->len);
	return 0;
}

int ap_error(struct ap_out *o, uint16_t type, uint32_t id, int code, const char *fmt, ...)
{
	char msg[AP_MAX_MESSAGE];
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* A message made of guest or host text may have been cut inside a character, or carry
	 * bytes that are not UTF-8: keep the valid prefix. */
	n = strlen(msg);
	while (n && !ap_utf8_valid((const uint8_t *)msg, n))
		n--;
	msg[n] = '\0';
	ap_begin(o, type, AP_F_REPLY | AP_F_ERROR, id);
	ap_put_u32(o, AP_A_ERROR, (uint32_t)(code < 0 ? -code : code));
	ap_put_str(o, AP_A_MESSAGE, msg);
	return ap_end(o);
}

int ap_frame_len(const uint8_t *hdr)
{
	uint32_t len = le32_load(hdr);

	if (len < AP_HDR_SIZE || len > AP_MAX_FRAME)
		return -EMSGSIZE;
	return (int)len;
}

static int ap_fail(const char **why, const char *reason)
{
	if (why)
		*why = reason;
	return -EINVAL;
}

static int ap_check_attr(const struct ap_attr *a, const char **why)
{
	const struct ap_rule *r;

	if (a->tag >= AP_A_TAG_COUNT || !ap_rules[a->tag].kind)
		return 0; /* unknown: skipped */
	r = &ap_rules[a->tag];
	switch (r->kind) {
	case AP_K_U32:
		return a->len == 4 ? 0 : ap_fail(why, "a 32-bit attribute is not 4 bytes");
	case AP_K_U64:
		return a->len == 8 ? 0 : ap_fail(why, "a 64-bit attribute is not 8 bytes");
	case AP_K_STR:
		if (a->len == 0 || a->val[a->len - 1] != '\0')
			return ap_fail(why, "a string attribute does not end with its NUL");
		if (a->len > r->max)
			return ap_fail(why, "a string attribute is longer than its limit");
		if (memchr(a->val, '\0', a->len - 1))
			return ap_fail(why, "a string attribute has a NUL inside");
		if (!ap_utf8_valid(a->val, a->len - 1))
			return ap_fail(why, "a string attribute is not valid UTF-8");
		return 0;
	default:
		return a->len <= r->max ? 0
					: ap_fail(why, "a data attribute is longer than its limit");
	}
}

int ap_decode(const uint8_t *buf, size_t len, struct ap_msg *m, const char **why)
{
	size_t off = AP_HDR_SIZE;
	uint64_t seen = 0;

	m->nattr = 0;
	if (len < AP_HDR_SIZE || len > AP_MAX_FRAME || le32_load(buf) != len)
		return ap_fail(why, "the frame's length is wrong");
	m->type = le16_load(buf + 4);
	m->flags = le16_load(buf + 6);
	m->id = le32_load(buf + 8);
	if (m->flags & ~AP_F_KNOWN)
		return ap_fail(why, "the frame has unknown flags");
	if ((m->flags & (AP_F_ERROR | AP_F_MORE)) && !(m->flags & AP_F_REPLY))
		return ap_fail(why, "only a reply may carry the error or more flags");
	while (off < len) {
		struct ap_attr *a;
		int r;

		if (len - off < 4)
			return ap_fail(why, "an attribute header is cut short");
		if (m->nattr == AP_MAX_ATTRS)
			return ap_fail(why, "the frame has too many attributes");
		a = &m->attr[m->nattr];
		a->tag = le16_load(buf + off);
		a->len = le16_load(buf + off + 2);
		a->val = buf + off + 4;
		if (a->len > len - off - 4)
			return ap_fail(why, "an attribute runs past the end of the frame");
		r = ap_check_attr(a, why);
		if (r)
			return r;
		if (a->tag < AP_A_TAG_COUNT && ap_rules[a->tag].kind && !ap_rules[a->tag].list) {
			if (seen & (1ull << a->tag))
				return ap_fail(why, "a single attribute appears twice");
			seen |= 1ull << a->tag;
		}
		off += 4 + (size_t)a->len;
		m->nattr++;
	}
	return 0;
}

const struct ap_attr *ap_get_nth(const struct ap_msg *m, uint16_t tag, size_t i)
{
	for (size_t k = 0; k < m->nattr; k++)
		if (m->attr[k].tag == tag && i-- == 0)
			return &m->attr[k];
	return NULL;
}

const struct ap_attr *ap_get(const struct ap_msg *m, uint16_t tag)
{
	return ap_get_nth(m, tag, 0);
}

size_t ap_count(const struct ap_msg *m, uint16_t tag)
{
	size_t n = 0;

	for (size_t k = 0; k < m->nattr; k++)
		n += m->attr[k].tag == tag;
	return n;
}

int ap_get_u32(const struct ap_msg *m, uint16_t tag, uint32_t *v)
{
	const struct ap_attr *a = ap_get(m, tag);

	if (!a || a->len != 4)
		return -ENOENT;
	*v = le32_load(a->val);
	return 0;
}

int ap_get_u64(const struct ap_msg *m, uint16_t tag, uint64_t *v)
{
	const struct ap_attr *a = ap_get(m, tag);

	if (!a || a->len != 8)
		return -ENOENT;
	*v = le64_load(a->val);
	return 0;
}

const char *ap_get_str(const struct ap_msg *m, uint16_t tag)
{
	const struct ap_attr *a = ap_get(m, tag);

	if (!a || tag >= AP_A_TAG_COUNT || ap_rules[tag].kind != AP_K_STR)
		return NULL;
	return (const char *)a->val;
}

bool ap_utf8_valid(const uint8_t *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint8_t c = s[i];
		uint32_t cp;
		size_t need;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			need = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			need = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			need = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (n - i - 1 < need)
			return false;
		for (size_t k = 1; k <= need; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += need + 1;
	}
	return true;
}

static const char *const ap_type_names[AP_T_COUNT] = {
	[AP_T_HELLO] = "hello",
	[AP_T_PING] = "ping",
	[AP_T_SHUTDOWN] = "shutdown",
	[AP_T_TIME_SET] = "time-set",
	[AP_T_TIME_GET] = "time-get",
	[AP_T_KVP_SET] = "kvp-set",
	[AP_T_KVP_GET] = "kvp-get",
	[AP_T_KVP_DELETE] = "kvp-delete",
	[AP_T_KVP_LIST] = "kvp-list",
	[AP_T_EXEC] = "exec",
	[AP_T_EXEC_OUTPUT] = "exec-output",
	[AP_T_EXEC_EXIT] = "exec-exit",
	[AP_T_EXEC_INPUT] = "exec-input",
	[AP_T_COPY_BEGIN] = "copy-begin",
	[AP_T_COPY_DATA] = "copy-data",
	[AP_T_COPY_END] = "copy-end",
	[AP_T_FREEZE] = "freeze",
	[AP_T_THAW] = "thaw",
	[AP_T_EXEC_RESIZE] = "exec-resize",
};

static const signed char ap_type_services[AP_T_COUNT] = {
	[AP_T_HELLO] = -1,
	[AP_T_PING] = AP_S_HEARTBEAT,
	[AP_T_SHUTDOWN] = AP_S_SHUTDOWN,
	[AP_T_TIME_SET] = AP_S_TIME,
	[AP_T_TIME_GET] = AP_S_TIME,
	[AP_T_KVP_SET] = AP_S_KVP,
	[AP_T_KVP_GET] = AP_S_KVP,
	[AP_T_KVP_DELETE] = AP_S_KVP,
	[AP_T_KVP_LIST] = AP_S_KVP,
	[AP_T_EXEC] = AP_S_EXEC,
	[AP_T_EXEC_OUTPUT] = AP_S_EXEC,
	[AP_T_EXEC_EXIT] = AP_S_EXEC,
	[AP_T_EXEC_INPUT] = AP_S_EXEC,
	[AP_T_COPY_BEGIN] = AP_S_COPY,
	[AP_T_COPY_DATA] = AP_S_COPY,
	[AP_T_COPY_END] = AP_S_COPY,
	[AP_T_FREEZE] = AP_S_FREEZE,
	[AP_T_THAW] = AP_S_FREEZE,
	[AP_T_EXEC_RESIZE] = AP_S_EXEC,
};

static const char *const ap_service_names[AP_S_COUNT] = {
	[AP_S_HEARTBEAT] = "heartbeat", [AP_S_SHUTDOWN] = "shutdown",
	[AP_S_TIME] = "time",		[AP_S_KVP] = "kvp",
	[AP_S_EXEC] = "exec",		[AP_S_COPY] = "copy",
	[AP_S_FREEZE] = "freeze",
};

const char *ap_type_name(unsigned type)
{
	return type < AP_T_COUNT ? ap_type_names[type] : NULL;
}

int ap_type_service(unsigned type)
{
	return type > 0 && type < AP_T_COUNT ? ap_type_services[type] : -1;
}

const char *ap_service_name(unsigned service)
{
	return service < AP_S_COUNT ? ap_service_names[service] : NULL;
}

int ap_service_by_name(const char *name)
{
	for (unsigned s = 0; s < AP_S_COUNT; s++)
		if (!strcmp(name, ap_service_names[s]))
			return (int)s;
	return -EINVAL;
}

void ap_reader_init(struct ap_reader *r)
{
	r->have = 0;
	r->len = 0;
}

int ap_read(struct ap_reader *r, int fd)
{
	if (r->len && r->have == r->len) {
		r->have = 0; /* the last call's frame was taken */
		r->len = 0;
	}
	for (;;) {
		size_t want = r->len ? r->len : AP_HDR_SIZE;
		ssize_t n;

		if (r->have == want) {
			int len;

			if (r->len)
				return 1;
			len = ap_frame_len(r->buf);
			if (len < 0)
				return len;
			r->len = (size_t)len;
			if (r->have == r->len)
				return 1;
			continue;
		}
		/* Never block, even on a blocking socket: a peer that stops mid-frame (a guest
		 * agent stopped, a host that sent half a frame) must not hold the caller, whose
		 * poll or deadline decides how long to wait. Other fds are read as they are. */
		n = recv(fd, r->buf + r->have, want - r->have, MSG_DONTWAIT);
		if (n < 0 && errno == ENOTSOCK)
			n = read(fd, r->buf + r->have, want - r->have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
		if (n == 0)
			return -EPIPE;
		r->have += (size_t)n;
	}
}

int ap_write_all(int fd, const void *buf, size_t n)
{
	const uint8_t *p = buf;

	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == ENOTSOCK)
			w = write(fd, p, n); /* a pipe or a file: the caller handles SIGPIPE */
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int ap_send(int fd, const struct ap_out *o)
{
	return ap_write_all(fd, o->buf, o->len);
}
