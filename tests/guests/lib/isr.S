/* 256 interrupt stubs, 16 bytes apart, all funnelling into isr_dispatch(struct isr_frame *). */
	.section .text
	.code32
	.balign 16
	.globl isr_stubs
isr_stubs:
	.set vec, 0
	.rept 256
	.balign 16
	/* Exceptions that push an error code: 8, 10-14, 17, 21, 29, 30. Others get a dummy 0. */
	.if (vec == 8) || ((vec >= 10) && (vec <= 14)) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
	.else
	pushl $0
	.endif
	pushl $vec
	jmp isr_common
	.set vec, vec + 1
	.endr

isr_common:
	pushal
	cld
	push %esp
	call isr_dispatch
	add $4, %esp
	popal
	add $8, %esp /* vector and error code */
	/*
	 * Return to the interrupted code without iret: [esp] = eip, cs, eflags. On hosts whose
	 * /dev/kvm emulates guest kernel code (no VT-x/AMD-V), KVM's instruction emulator
	 * implements iret only in real mode and stops the VM with an emulation failure. We never
	 * change privilege level or CS, so rewrite the frame to [eflags, eip] and use popf; ret.
	 */
	push %eax            /* eax, eip, cs, eflags */
	mov 4(%esp), %eax
	xchg %eax, 12(%esp)  /* eax, eip, cs, eip; eax = eflags */
	mov %eax, 8(%esp)    /* eax, eip, eflags, eip */
	pop %eax
	add $4, %esp         /* eflags, eip */
	popfl
	ret

	.section .note.GNU-stack, "", @progbits
