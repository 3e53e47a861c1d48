/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The guest is an attacker: virtio-console's output and input paths (vmm/virtio/console.c)
 * on descriptor chains the input builds in guest RAM; the host side is the fake character
 * back end, which takes every output byte and offers input as chardev.c does (held while
 * the guest has no room, offered again when it posts buffers). Every chain taken must be
 * returned, an input chain never reported longer than its writable buffers, an output
 * chain with 0 bytes. Input: fake_guest.h's two header bytes, then its operations, and
 * these: 9 console input of up to 64 bytes, 10 a burst of 1 KiB of one byte.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fake_guest.h"
#include "fake_machine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct fake_guest g;

static void served(struct fake_guest *fg)
{
	fake_chardev_flush(fake_chardev(0));
}

/* Console input reaches the device on the loop thread, outside the I/O thread's work. */
static void input(const uint8_t *buf, size_t len)
{
	fake_guest_expect(&g);
	fake_chardev_input(fake_chardev(0), buf, len);
	fake_guest_verify(&g);
}

static size_t console_op(const uint8_t *data, size_t size)
{
	static uint8_t burst[1024];
	size_t n;

	switch (data[0] & 0xf) {
	case 9:
		n = size < 2 ? 2 : 2u + data[1] % 65;
		if (size < n)
			return 0;
		input(data + 2, n - 2);
		return n;
	case 10:
		if (size < 2)
			return 0;
		memset(burst, data[1], sizeof(burst));
		input(burst, sizeof(burst));
		return 2;
	default:
		return 1;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!g.vd) {
		fake_machine();
		g.vd = fake_virtio_console();
		g.max_used[0] = UINT32_MAX; /* input: what the chain holds */
		g.max_used[1] = 0;	    /* output: nothing written */
		g.served = served;
		fake_machine_pause(true);
	}
	fake_guest_run(&g, data, size, console_op);
	return 0;
}
