/* Tiny guests: COM1, a 16550 UART at 0x3f8. Output polls THRE; input polls DR or uses IRQ 4. */
#include "guest.h"

#define UART_RBR 0 /* receive buffer (read, DLAB 0) */
#define UART_THR 0 /* transmit holding (write, DLAB 0) */
#define UART_IER 1
#define UART_FCR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_DLL 0 /* divisor latch (DLAB 1) */
#define UART_DLM 1

#define LSR_DR   0x01
#define LSR_THRE 0x20

/* Bound the wait for THRE so a broken UART model cannot hang a guest; the byte is written
 * anyway and the runner will notice missing output. */
#define THRE_SPINS 100000

void serial_init(void)
{
	outb(COM1_BASE + UART_IER, 0x00);
	outb(COM1_BASE + UART_LCR, 0x80); /* DLAB */
	outb(COM1_BASE + UART_DLL, 0x01); /* 115200 baud */
	outb(COM1_BASE + UART_DLM, 0x00);
	outb(COM1_BASE + UART_LCR, 0x03); /* 8N1 */
	outb(COM1_BASE + UART_FCR, 0x07); /* FIFO on, both cleared, trigger level 1 byte */
	outb(COM1_BASE + UART_MCR, 0x0b); /* DTR, RTS, OUT2 (gates the IRQ line on PCs) */
}

void serial_putc(char c)
{
	for (int i = 0; i < THRE_SPINS && !(inb(COM1_BASE + UART_LSR) & LSR_THRE); i++)
		cpu_pause();
	outb(COM1_BASE + UART_THR, (uint8_t)c);
}

void serial_write(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\n')
			serial_putc('\r');
		serial_putc(s[i]);
	}
}

bool serial_can_read(void)
{
	return inb(COM1_BASE + UART_LSR) & LSR_DR;
}

char serial_getc_poll(void)
{
	while (!serial_can_read())
		cpu_pause();
	return (char)inb(COM1_BASE + UART_RBR);
}

void serial_set_rx_irq(bool on)
{
	outb(COM1_BASE + UART_IER, on ? 0x01 : 0x00);
}
