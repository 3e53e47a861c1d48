/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent protocol (docs/agent-protocol.md): keeld and keel on the host, keel-agent in the
 * guest. One codec for both sides: frames of a 12-byte header and typed attributes, encoded
 * into a fixed buffer and decoded with every length, kind and string checked. Nothing here
 * allocates, so the same code runs in the static agent, in keeld and under libFuzzer.
 */
#ifndef KEEL_LIB_AGENTPROTO_H
#define KEEL_LIB_AGENTPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AP_VERSION     1  /* the one protocol version this code speaks */
#define AP_PORT	       52 /* the agent's vsock port */
#define AP_HDR_SIZE    12
#define AP_MAX_FRAME   65536 /* a whole frame, header included */
#define AP_MAX_DATA    32768 /* one DATA attribute: a chunk of a stream */
#define AP_MAX_ATTRS   512
#define AP_MAX_KEY     512   /* a KVP key in bytes, its terminating NUL included (Hyper-V) */
#define AP_MAX_VALUE   2048  /* a KVP value, likewise */
#define AP_MAX_PATH    4096  /* a path, likewise */
#define AP_MAX_ARG     4096  /* one exec argument or environment entry, likewise */
#define AP_MAX_MESSAGE 1024  /* an error's message, likewise */
#define AP_MAX_TTY     10000 /* an exec terminal's rows or columns */

/* Header flags. */
#define AP_F_REPLY 0x1 /* the answer to the request with the same id */
#define AP_F_ERROR 0x2 /* with REPLY: the request failed (AP_A_ERROR, AP_A_MESSAGE) */
#define AP_F_MORE  0x4 /* with REPLY: more replies to the same request follow */
#define AP_F_KNOWN (AP_F_REPLY | AP_F_ERROR | AP_F_MORE)

/* Message types. */
enum ap_type {
	AP_T_HELLO = 1,
	AP_T_PING = 2,
	AP_T_SHUTDOWN = 3,
	AP_T_TIME_SET = 4,
	AP_T_TIME_GET = 5,
	AP_T_KVP_SET = 6,
	AP_T_KVP_GET = 7,
	AP_T_KVP_DELETE = 8,
	AP_T_KVP_LIST = 9,
	AP_T_EXEC = 10,
	AP_T_EXEC_OUTPUT = 11, /* agent to host, id of the EXEC */
	AP_T_EXEC_EXIT = 12,   /* agent to host, id of the EXEC */
	AP_T_EXEC_INPUT = 13,  /* host to agent, id of the EXEC, no reply */
	AP_T_COPY_BEGIN = 14,
	AP_T_COPY_DATA = 15, /* host to agent, id of the COPY_BEGIN, no reply */
	AP_T_COPY_END = 16,
	AP_T_FREEZE = 17,
	AP_T_THAW = 18,
	AP_T_EXEC_RESIZE = 19, /* host to agent, id of the EXEC, no reply on success */
	AP_T_COUNT
};

/* Attribute tags. */
enum ap_tag {
	AP_A_VERSION_MIN = 1,
	AP_A_VERSION_MAX = 2,
	AP_A_VERSION = 3,
	AP_A_AGENT_VERSION = 4,
	AP_A_SERVICES = 5,
	AP_A_ERROR = 6,
	AP_A_MESSAGE = 7,
	AP_A_TIME_NS = 8,
	AP_A_UPTIME_MS = 9,
	AP_A_MODE = 10,
	AP_A_METHOD = 11,
	AP_A_POOL = 12,
	AP_A_KEY = 13,
	AP_A_VALUE = 14,
	AP_A_ARG = 15,
	AP_A_ENV = 16,
	AP_A_CWD = 17,
	AP_A_TIMEOUT_MS = 18,
	AP_A_PID = 19,
	AP_A_STREAM = 20,
	AP_A_DATA = 21,
	AP_A_EXIT_STATUS = 22,
	AP_A_SIGNAL = 23,
	AP_A_TIMED_OUT = 24,
	AP_A_PATH = 25,
	AP_A_FILE_MODE = 26,
	AP_A_UID = 27,
	AP_A_GID = 28,
	AP_A_SIZE = 29,
	AP_A_COPY_FLAGS = 30,
	AP_A_COUNT = 31,
	AP_A_EOF = 32,
	AP_A_OFFSET_NS = 33,
	AP_A_TTY = 34,
	AP_A_ROWS = 35,
	AP_A_COLS = 36,
	AP_A_USER = 37,
	AP_A_GROUP = 38,
	AP_A_TAG_COUNT
};

/* Services (AP_A_SERVICES bits; `keel vm integration NAME enable|disable SERVICE`). */
enum ap_service {
	AP_S_HEARTBEAT = 0,
	AP_S_SHUTDOWN,
	AP_S_TIME,
	AP_S_KVP,
	AP_S_EXEC,
	AP_S_COPY,
	AP_S_FREEZE,
	AP_S_COUNT
};
#define AP_S_ALL ((1u << AP_S_COUNT) - 1)

/* KVP pools (AP_A_POOL). */
enum ap_pool {
	AP_POOL_AUTO = 0,  /* facts the agent gathers: FQDN, OS, kernel, interfaces */
	AP_POOL_GUEST = 1, /* pairs set inside the guest (`keel-agent kvp set`) */
	AP_POOL_HOST = 2,  /* pairs the host set, readable in the guest */
	AP_POOL_COUNT
};

#define AP_SHUTDOWN_POWEROFF 0
#define AP_SHUTDOWN_REBOOT   1
#define AP_COPY_CREATE_PATH  0x1
#define AP_COPY_OVERWRITE    0x2
#define AP_COPY_OWNER_IF_ANY 0x4 /* user and group by name, root's when the guest lacks them */
#define AP_STREAM_STDOUT     1
#define AP_STREAM_STDERR     2

/* A frame being built: ap_begin, then ap_put_*, then ap_end. An attribute that does not fit
 * makes ap_end fail with -EMSGSIZE; so does a string that is not valid UTF-8 (-EINVAL). */
struct ap_out {
	uint8_t buf[AP_MAX_FRAME];
	size_t len;
	int err;
};

void ap_begin(struct ap_out *o, uint16_t type, uint16_t flags, uint32_t id);
void ap_put_u32(struct ap_out *o, uint16_t tag, uint32_t v);
void ap_put_u64(struct ap_out *o, uint16_t tag, uint64_t v);
void ap_put_str(struct ap_out *o, uint16_t tag, const char *s);
void ap_put_bytes(struct ap_out *o, uint16_t tag, const void *p, size_t n);
/* Whether n more bytes of attribute value under tag still fit. */
bool ap_room(const struct ap_out *o, size_t n);
int ap_end(struct ap_out *o) __attribute__((warn_unused_result));
/* An error reply to (type, id): errno-style code and a one-line message. */
int ap_error(struct ap_out *o, uint16_t type, uint32_t id, int code, const char *fmt, ...)
	__attribute__((format(printf, 5, 6), warn_unused_result));

/* A decoded frame. Attribute values point into the buffer given to ap_decode; a string's
 * value ends with its NUL, so it can be used as a C string. */
struct ap_attr {
	uint16_t tag;
	uint16_t len;
	const uint8_t *val;
};

struct ap_msg {
	uint16_t type;
	uint16_t flags;
	uint32_t id;
	size_t nattr;
	struct ap_attr attr[AP_MAX_ATTRS];
};

/* The length a frame's header announces, or -EMSGSIZE when it is outside
 * [AP_HDR_SIZE, AP_MAX_FRAME]: the stream can no longer be followed. hdr has AP_HDR_SIZE bytes. */
int ap_frame_len(const uint8_t *hdr) __attribute__((warn_unused_result));

/*
 * Decode one whole frame of len bytes (as ap_frame_len gave). Checks unknown flags, that
 * attributes tile the frame exactly, every known attribute's size and kind (strings: UTF-8,
 * NUL-terminated, no NUL inside, within their limit), that only list attributes repeat.
 * Unknown tags are skipped (forward compatibility). Returns 0 or -EINVAL with a reason in
 * why (static text) when why is not NULL.
 */
int ap_decode(const uint8_t *buf, size_t len, struct ap_msg *m, const char **why)
	__attribute__((warn_unused_result));

/* Lookups: 0, or -ENOENT when absent. */
int ap_get_u32(const struct ap_msg *m, uint16_t tag, uint32_t *v);
int ap_get_u64(const struct ap_msg *m, uint16_t tag, uint64_t *v);
const char *ap_get_str(const struct ap_msg *m, uint16_t tag);
const struct ap_attr *ap_get(const struct ap_msg *m, uint16_t tag);
/* The i-th occurrence of a list attribute, or NULL. */
const struct ap_attr *ap_get_nth(const struct ap_msg *m, uint16_t tag, size_t i);
size_t ap_count(const struct ap_msg *m, uint16_t tag);

/* Whether s[0..n) is well-formed UTF-8 (no overlongs, surrogates or values past U+10FFFF). */
bool ap_utf8_valid(const uint8_t *s, size_t n);

/* Names for logs and the CLI: "exec", "heartbeat"... NULL when out of range. */
const char *ap_type_name(unsigned type);
const char *ap_service_name(unsigned service);
/* The service a name gives, or -EINVAL. */
int ap_service_by_name(const char *name);
/* The service a request type belongs to, or -1 for HELLO (always served). */
int ap_type_service(unsigned type);

/*
 * Reading frames from a stream socket, blocking or not. ap_read returns 1 when a whole frame
 * is in r->buf (r->len bytes; the next call starts a new one), 0 when the socket has no more
 * for now (it never waits, also on a blocking socket: the caller polls, with its deadline), -EPIPE
 * at end of stream (between frames: clean; inside one: truncated, r->have > 0), -EMSGSIZE for a
 * header that cannot be followed, or another -errno.
 */
struct ap_reader {
	uint8_t buf[AP_MAX_FRAME];
	size_t have;
	size_t len; /* the frame's length once its header is in, else 0 */
};

void ap_reader_init(struct ap_reader *r);
int ap_read(struct ap_reader *r, int fd) __attribute__((warn_unused_result));

/* Write a whole frame (ap_end'ed) to a blocking fd; EINTR retried, no SIGPIPE. 0 or -errno. */
int ap_send(int fd, const struct ap_out *o) __attribute__((warn_unused_result));
/* Write all n bytes to a blocking fd (a socket without SIGPIPE, or a pipe or file). */
int ap_write_all(int fd, const void *buf, size_t n) __attribute__((warn_unused_result));

#endif
