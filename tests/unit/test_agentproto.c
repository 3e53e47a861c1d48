/* SPDX-License-Identifier: Apache-2.0 */
/* The agent protocol's codec (docs/agent-protocol.md): frames built and read back, every
 * malformed shape refused with its reason, UTF-8, and the stream reader. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/agent_client.h"
#include "lib/agentproto.h"
#include "lib/clock.h"
#include "lib/log.h"

static struct ap_out out;
static struct ap_msg msg;

static void test_round_trip(void **state)
{
	const struct ap_attr *a;
	uint32_t v32;
	uint64_t v64;

	ap_begin(&out, AP_T_EXEC, 0, 0x01020304);
	ap_put_str(&out, AP_A_ARG, "sh");
	ap_put_str(&out, AP_A_ARG, "-c");
	ap_put_u32(&out, AP_A_TIMEOUT_MS, 500);
	ap_put_u64(&out, AP_A_SIZE, 1ull << 40);
	ap_put_bytes(&out, AP_A_DATA, "\0\1\2", 3);
	assert_int_equal(ap_end(&out), 0);
	assert_int_equal(out.len, 12 + (4 + 3) + (4 + 3) + 8 + 12 + 7);
	/* The header is little-endian: length, type, flags, id. */
	assert_int_equal(out.buf[0], out.len);
	assert_int_equal(out.buf[4], AP_T_EXEC);
	assert_int_equal(out.buf[8], 4);
	assert_int_equal(ap_frame_len(out.buf), (int)out.len);
	assert_int_equal(ap_decode(out.buf, out.len, &msg, NULL), 0);
	assert_int_equal(msg.type, AP_T_EXEC);
	assert_int_equal(msg.id, 0x01020304);
	assert_int_equal(ap_count(&msg, AP_A_ARG), 2);
	assert_string_equal((const char *)ap_get_nth(&msg, AP_A_ARG, 1)->val, "-c");
	assert_null(ap_get_nth(&msg, AP_A_ARG, 2));
	assert_string_equal(ap_get_str(&msg, AP_A_ARG), "sh");
	assert_int_equal(ap_get_u32(&msg, AP_A_TIMEOUT_MS, &v32), 0);
	assert_int_equal(v32, 500);
	assert_int_equal(ap_get_u64(&msg, AP_A_SIZE, &v64), 0);
	assert_true(v64 == 1ull << 40);
	a = ap_get(&msg, AP_A_DATA);
	assert_non_null(a);
	assert_int_equal(a->len, 3);
	assert_memory_equal(a->val, "\0\1\2", 3);
	assert_int_equal(ap_get_u32(&msg, AP_A_PID, &v32), -ENOENT);
	assert_null(ap_get_str(&msg, AP_A_DATA)); /* not a string */
}

static void test_limits(void **state)
{
	char key[AP_MAX_KEY + 1];
	static uint8_t big[AP_MAX_DATA + 1];

	memset(key, 'k', sizeof(key));
	key[AP_MAX_KEY - 1] = '\0'; /* 511 bytes and the NUL: fits */
	ap_begin(&out, AP_T_KVP_SET, 0, 1);
	ap_put_str(&out, AP_A_KEY, key);
	assert_int_equal(ap_end(&out), 0);
	key[AP_MAX_KEY - 1] = 'k';
	key[AP_MAX_KEY] = '\0'; /* 512 and the NUL: too long */
	ap_begin(&out, AP_T_KVP_SET, 0, 1);
	ap_put_str(&out, AP_A_KEY, key);
	assert_int_equal(ap_end(&out), -EMSGSIZE);
	ap_begin(&out, AP_T_KVP_SET, 0, 1);
	ap_put_str(&out, AP_A_VALUE, "\xc3\x28"); /* not UTF-8 */
	assert_int_equal(ap_end(&out), -EINVAL);
	/* A frame fills up: the put that does not fit fails the frame. */
	ap_begin(&out, AP_T_COPY_DATA, 0, 1);
	ap_put_bytes(&out, AP_A_DATA, big, AP_MAX_DATA);
	assert_true(ap_room(&out, AP_MAX_DATA - 100));
	ap_put_bytes(&out, AP_A_DATA, big, AP_MAX_DATA);
	assert_false(ap_room(&out, AP_MAX_DATA));
	ap_put_bytes(&out, AP_A_DATA, big, AP_MAX_DATA);
	assert_int_equal(ap_end(&out), -EMSGSIZE);
	/* A decoded DATA longer than its limit is refused. */
	ap_begin(&out, AP_T_COPY_DATA, 0, 1);
	ap_put_bytes(&out, AP_A_DATA, big, AP_MAX_DATA + 1);
	assert_int_equal(ap_end(&out), 0);
	assert_int_equal(ap_decode(out.buf, out.len, &msg, NULL), -EINVAL);
	big[0] = 0;
	assert_int_equal(ap_frame_len((const uint8_t *)"\x0b\0\0\0"), -EMSGSIZE);
	assert_int_equal(ap_frame_len((const uint8_t *)"\x01\0\1\0"), -EMSGSIZE);
	assert_int_equal(ap_frame_len((const uint8_t *)"\0\0\1\0"), AP_MAX_FRAME);
}

/* A raw frame: header, then the bytes given. */
static size_t raw(uint8_t *b, uint16_t flags, const void *body, size_t n)
{
	size_t len = AP_HDR_SIZE + n;

	memset(b, 0, AP_HDR_SIZE);
	b[0] = (uint8_t)len;
	b[1] = (uint8_t)(len >> 8);
	b[4] = AP_T_PING;
	b[6] = (uint8_t)flags;
	b[7] = (uint8_t)(flags >> 8);
	memcpy(b + AP_HDR_SIZE, body, n);
	return len;
}

static void expect_bad(const void *body, size_t n, uint16_t flags, const char *reason)
{
	uint8_t b[256];
	const char *why = NULL;
	size_t len = raw(b, flags, body, n);

	if (ap_decode(b, len, &msg, &why) != -EINVAL)
		fail_msg("accepted a frame that is %s", reason);
	assert_non_null(why);
	assert_non_null(strstr(why, reason));
}

static void test_malformed(void **state)
{
	uint8_t b[64];
	size_t len;

	expect_bad("\x01\x00\x08\x00\0\0\0\0", 8, 0, "runs past the end");
	expect_bad("\x01\x00", 2, 0, "cut short");
	expect_bad("\x01\x00\x02\x00\0\0", 6, 0, "not 4 bytes");
	expect_bad("\x08\x00\x04\x00\0\0\0\0", 8, 0, "not 8 bytes");
	expect_bad("\x0d\x00\x03\x00"
		   "abc",
		   7, 0, "does not end with its NUL");
	expect_bad("\x0d\x00\x04\x00"
		   "a\0b\0",
		   8, 0, "NUL inside");
	expect_bad("\x0d\x00\x03\x00"
		   "\xed\xa0\0",
		   7, 0, "UTF-8"); /* a cut surrogate */
	expect_bad("\x01\x00\x04\x00\0\0\0\0\x01\x00\x04\x00\0\0\0\0", 16, 0, "appears twice");
	expect_bad("", 0, 0x100, "unknown flags");
	expect_bad("", 0, AP_F_ERROR, "only a reply");
	expect_bad("\x00\x00\x00\x00", 4, 0x8, "unknown flags");
	/* Unknown tags are skipped, lists repeat, an empty frame is fine. */
	len = raw(b, 0,
		  "\xff\x7f\x02\x00xy\x0f\x00\x02\x00"
		  "a\0\x0f\x00\x02\x00"
		  "b\0",
		  18);
	assert_int_equal(ap_decode(b, len, &msg, NULL), 0);
	assert_int_equal(ap_count(&msg, AP_A_ARG), 2);
	len = raw(b, AP_F_REPLY | AP_F_MORE, "", 0);
	assert_int_equal(ap_decode(b, len, &msg, NULL), 0);
	/* The length field must be the buffer's. */
	b[0]++;
	assert_int_equal(ap_decode(b, len, &msg, NULL), -EINVAL);
}

static void test_utf8(void **state)
{
	assert_true(ap_utf8_valid((const uint8_t *)"plain", 5));
	assert_true(ap_utf8_valid((const uint8_t *)"\xc3\xa9\xe2\x9c\x93\xf0\x9f\x98\x80", 9));
	assert_false(ap_utf8_valid((const uint8_t *)"\xc0\xaf", 2));	     /* overlong '/' */
	assert_false(ap_utf8_valid((const uint8_t *)"\xe0\x80\xaf", 3));     /* overlong */
	assert_false(ap_utf8_valid((const uint8_t *)"\xed\xa0\x80", 3));     /* surrogate */
	assert_false(ap_utf8_valid((const uint8_t *)"\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
	assert_false(ap_utf8_valid((const uint8_t *)"\xe2\x9c", 2));	     /* cut short */
	assert_false(ap_utf8_valid((const uint8_t *)"\x80", 1));
	assert_false(ap_utf8_valid((const uint8_t *)"\xff", 1));
}

static void test_error_reply(void **state)
{
	uint32_t code;

	/* A message cut inside a character keeps its valid prefix. */
	assert_int_equal(ap_error(&out, AP_T_EXEC, 9, -ENOENT, "%s", "no \xe2\x9c"), 0);
	assert_int_equal(ap_decode(out.buf, out.len, &msg, NULL), 0);
	assert_int_equal(msg.flags, AP_F_REPLY | AP_F_ERROR);
	assert_int_equal(msg.id, 9);
	assert_int_equal(ap_get_u32(&msg, AP_A_ERROR, &code), 0);
	assert_int_equal(code, ENOENT);
	assert_string_equal(ap_get_str(&msg, AP_A_MESSAGE), "no ");
}

static void test_reader(void **state)
{
	static struct ap_reader rd;
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	ap_reader_init(&rd);
	ap_begin(&out, AP_T_PING, 0, 5);
	ap_put_u64(&out, AP_A_UPTIME_MS, 7);
	assert_int_equal(ap_end(&out), 0);
	/* Byte by byte: nothing until the whole frame is in. */
	for (size_t i = 0; i + 1 < out.len; i++) {
		assert_int_equal(write(sv[0], out.buf + i, 1), 1);
		assert_int_equal(ap_read(&rd, sv[1]), 0);
	}
	assert_int_equal(write(sv[0], out.buf + out.len - 1, 1), 1);
	assert_int_equal(ap_read(&rd, sv[1]), 1);
	assert_int_equal(rd.len, out.len);
	assert_memory_equal(rd.buf, out.buf, out.len);
	/* Two frames at once, then a header that cannot be followed. */
	assert_int_equal(ap_send(sv[0], &out), 0);
	assert_int_equal(ap_send(sv[0], &out), 0);
	assert_int_equal(ap_read(&rd, sv[1]), 1);
	assert_int_equal(ap_read(&rd, sv[1]), 1);
	assert_int_equal(ap_read(&rd, sv[1]), 0);
	assert_int_equal(write(sv[0], "\xff\xff\xff\x7f\0\0\0\0\0\0\0\0", 12), 12);
	assert_int_equal(ap_read(&rd, sv[1]), -EMSGSIZE);
	/* End of stream. */
	ap_reader_init(&rd);
	close(sv[0]);
	assert_int_equal(ap_read(&rd, sv[1]), -EPIPE);
	close(sv[1]);
}

/* A guest that sends part of a frame and then nothing: the client's deadline holds (the
 * client's socket was blocking, and ap_read's second read waited forever). */
static void test_client_stalled_frame(void **state)
{
	static struct agent_conn c;
	char err[256];
	long long t0;
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(write(sv[0], "OK 52\n", 6), 6);
	ap_begin(&out, AP_T_HELLO, AP_F_REPLY, 1);
	ap_put_u32(&out, AP_A_VERSION, AP_VERSION);
	ap_put_u32(&out, AP_A_SERVICES, 1);
	assert_int_equal(ap_end(&out), 0);
	assert_int_equal(write(sv[0], out.buf, 6), 6); /* half a header */
	alarm(10);				       /* a hang fails the test */
	t0 = clock_mono_ms();
	assert_int_equal(agent_open_fd(&c, sv[1], 300, err, sizeof(err)), -ETIMEDOUT);
	assert_true(clock_mono_ms() - t0 < 3000);

	/* The header whole, the body cut: the same. */
	close(sv[0]);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(write(sv[0], "OK 52\n", 6), 6);
	assert_int_equal(write(sv[0], out.buf, out.len - 2), (ssize_t)out.len - 2);
	t0 = clock_mono_ms();
	assert_int_equal(agent_open_fd(&c, sv[1], 300, err, sizeof(err)), -ETIMEDOUT);
	assert_true(clock_mono_ms() - t0 < 3000);
	alarm(0);
	close(sv[0]);
}

/* The guest's text reaches terminals and logs: no control characters get through. */
static void test_text_safe(void **state)
{
	static struct agent_conn c;
	char s[] = "a\x1b]0;x\x07"
		   "b\r\nc\x7f\xc2\x9b"
		   "2J\xc2\xa0\xc3\xa9",
	     err[256];
	int sv[2];

	log_text_safe(s, strlen(s), false);
	assert_string_equal(s, "a?]0;x?b??c???2J\xc2\xa0\xc3\xa9");
	assert_true(ap_utf8_valid((const uint8_t *)s, strlen(s)));

	/* Through the client: the hello's agent-version and an error reply's message. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(write(sv[0], "OK 52\n", 6), 6);
	ap_begin(&out, AP_T_HELLO, AP_F_REPLY, 1);
	ap_put_u32(&out, AP_A_VERSION, AP_VERSION);
	ap_put_u32(&out, AP_A_SERVICES, 1);
	ap_put_str(&out, AP_A_AGENT_VERSION, "1.0\x1b[2J");
	assert_int_equal(ap_end(&out), 0);
	assert_int_equal(ap_send(sv[0], &out), 0);
	assert_int_equal(ap_error(&out, AP_T_PING, 2, EIO, "bad\x1b[31m\nnews"), 0);
	assert_int_equal(ap_send(sv[0], &out), 0);
	assert_int_equal(agent_open_fd(&c, sv[1], 1000, err, sizeof(err)), 0);
	assert_string_equal(c.agent_version, "1.0?[2J");
	agent_begin(&c, AP_T_PING);
	assert_int_equal(agent_call(&c, 1000, err, sizeof(err)), -EIO);
	assert_string_equal(err, "bad?[31m?news");
	agent_close(&c);
	close(sv[0]);
}

/* A blocking socket whose peer stops mid-frame (or sends nothing): ap_read returns 0 at
 * once instead of waiting, so the host's client keeps its deadline (a SIGSTOPped agent made
 * keel vm exec hang in the lab). */
static void test_reader_blocking(void **state)
{
	static struct ap_reader rd;
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ap_reader_init(&rd);
	assert_int_equal(ap_read(&rd, sv[1]), 0);
	ap_begin(&out, AP_T_PING, 0, 6);
	ap_put_u64(&out, AP_A_UPTIME_MS, 8);
	assert_int_equal(ap_end(&out), 0);
	assert_int_equal(write(sv[0], out.buf, 3), 3); /* part of the header */
	assert_int_equal(ap_read(&rd, sv[1]), 0);
	assert_int_equal(write(sv[0], out.buf + 3, out.len - 4), (ssize_t)(out.len - 4));
	assert_int_equal(ap_read(&rd, sv[1]), 0); /* all but the last byte */
	assert_int_equal(write(sv[0], out.buf + out.len - 1, 1), 1);
	assert_int_equal(ap_read(&rd, sv[1]), 1);
	assert_memory_equal(rd.buf, out.buf, out.len);
	close(sv[0]);
	close(sv[1]);
}

static void test_names(void **state)
{
	assert_string_equal(ap_type_name(AP_T_EXEC), "exec");
	assert_null(ap_type_name(AP_T_COUNT));
	assert_int_equal(ap_service_by_name("freeze"), AP_S_FREEZE);
	assert_int_equal(ap_service_by_name("vss"), -EINVAL);
	assert_int_equal(ap_type_service(AP_T_COPY_DATA), AP_S_COPY);
	assert_int_equal(ap_type_service(AP_T_HELLO), -1);
	assert_int_equal(ap_type_service(0), -1);
	for (unsigned s = 0; s < AP_S_COUNT; s++)
		assert_int_equal(ap_service_by_name(ap_service_name(s)), (int)s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),  cmocka_unit_test(test_limits),
		cmocka_unit_test(test_malformed),   cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_error_reply), cmocka_unit_test(test_reader),
		cmocka_unit_test(test_names),	    cmocka_unit_test(test_client_stalled_frame),
		cmocka_unit_test(test_text_safe),   cmocka_unit_test(test_reader_blocking),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
