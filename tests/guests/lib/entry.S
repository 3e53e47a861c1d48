/* Multiboot v1 header and the 32-bit entry point of every tiny guest. */
#define MB_HEADER_MAGIC 0x1badb002
#ifdef MB_AOUT_KLUDGE
/* bit 16: the load addresses below are valid (for a flat binary made with objcopy -O binary;
 * the multiboot header is its first byte and is loaded at __kernel_start). */
#define MB_HEADER_FLAGS 0x00010003
#else
#define MB_HEADER_FLAGS 0x00000003 /* bit 0: page-align modules; bit 1: memory info */
#endif

	.section .multiboot, "a"
	.balign 4
mb_header:
	.long MB_HEADER_MAGIC
	.long MB_HEADER_FLAGS
	.long -(MB_HEADER_MAGIC + MB_HEADER_FLAGS)
#ifdef MB_AOUT_KLUDGE
	.long mb_header      /* header_addr */
	.long __kernel_start /* load_addr */
	.long __load_end     /* load_end_addr: end of the file's contents */
	.long __kernel_end   /* bss_end_addr: .bss and the stacks, zeroed by the loader */
	.long _start         /* entry_addr */
#endif

	.section .text
	.code32
	.globl _start
_start:
	cli
	cld
	mov %eax, %ebp /* multiboot magic */
	mov %ebx, %esi /* multiboot info */
	/* The loader's GDT may be anywhere; load ours (flat 32-bit code 0x08, data 0x10). */
	lgdt gdt_desc
	ljmp $0x08, $1f
1:	mov $0x10, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %fs
	mov %ax, %gs
	mov %ax, %ss
	mov $bsp_stack_top, %esp
	/* Zero .bss ourselves: after a VM reset the loader may not have cleared old contents. */
	mov $__bss_start, %edi
	mov $__bss_end, %ecx
	sub %edi, %ecx
	shr $2, %ecx
	xor %eax, %eax
	rep stosl
	push %esi
	push %ebp
	call guest_start
2:	cli
	hlt
	jmp 2b

	.section .data
	.balign 8
	.globl gdt
gdt:
	.quad 0
	.quad 0x00cf9a000000ffff /* 0x08: code, base 0, 4 GiB, 32-bit */
	.quad 0x00cf92000000ffff /* 0x10: data, base 0, 4 GiB */
gdt_end:
	.balign 4
	.word 0
	.globl gdt_desc
gdt_desc:
	.word gdt_end - gdt - 1
	.long gdt

	.section .stack, "aw", @nobits
	.balign 16
	.skip 16384
bsp_stack_top:

	.section .note.GNU-stack, "", @progbits
