/* Tiny guests: ending the test through the debug-exit port (0xf4). */
#include "guest.h"

void guest_halt_forever(void)
{
	for (;;)
		__asm__ volatile("cli; hlt");
}

void guest_exit(uint8_t value)
{
	outb(GUEST_EXIT_PORT, value);
	guest_printf("%s: FAIL: the write of 0x%x to the debug-exit port 0xf4 did not end the VM "
	             "(is --debug-exit given?)\n",
	             guest_name, value);
	guest_halt_forever();
}

void guest_pass(void)
{
	guest_printf("%s: PASS\n", guest_name);
	guest_exit(GUEST_EXIT_PASS);
}

void guest_fail(const char *fmt, ...)
{
	va_list ap;
	guest_printf("%s: FAIL: ", guest_name);
	va_start(ap, fmt);
	guest_vprintf(fmt, ap);
	va_end(ap);
	guest_printf("\n");
	guest_exit(GUEST_EXIT_FAIL);
}
