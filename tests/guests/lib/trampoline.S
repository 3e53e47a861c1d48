/*
 * Application processor start-up. ap_tramp_start..ap_tramp_end is copied by the BSP to a
 * 4 KiB-aligned page below 1 MiB whose page number is the SIPI vector. The AP starts there in
 * real mode at CS:IP = (page << 8):0, loads the GDT, enters protected mode and far-jumps into
 * the kernel image (ap_entry32), which takes one of the AP stacks and calls guest_ap_main().
 */
#define AP_MAX_STACKS 64
#define AP_STACK_SIZE 4096

	.section .data
	.code16
	.globl ap_tramp_start, ap_tramp_end, ap_tramp_gdt_desc
ap_tramp_start:
	cli
	cld
	mov %cs, %ax
	mov %ax, %ds
	lgdtl ap_tramp_gdt_desc - ap_tramp_start
	mov %cr0, %eax
	or $1, %eax
	mov %eax, %cr0
	ljmpl $0x08, $ap_entry32
	.balign 8
	.word 0
ap_tramp_gdt_desc: /* filled in by the BSP with its own GDTR (sgdt) */
	.word 0
	.long 0
ap_tramp_end:

	.section .text
	.code32
ap_entry32:
	mov $0x10, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %fs
	mov %ax, %gs
	mov %ax, %ss
	mov $1, %eax
	lock xadd %eax, ap_stack_next
	cmp $AP_MAX_STACKS, %eax
	jae 2f
	inc %eax
	shl $12, %eax
	add $ap_stacks, %eax
	mov %eax, %esp
	call guest_ap_main
2:	cli
	hlt
	jmp 2b

	.section .bss
	.balign 4
	.globl ap_stack_next
ap_stack_next:
	.long 0

	.section .stack, "aw", @nobits
	.balign 4096
ap_stacks:
	.skip AP_MAX_STACKS * AP_STACK_SIZE

	.section .note.GNU-stack, "", @progbits
