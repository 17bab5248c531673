#include "textflag.h"

// func syscall386(nr, a1, a2, a3 uint32) int64
TEXT ·syscall386(SB), NOSPLIT, $0-24
	MOVL	nr+0(FP), AX
	MOVL	a1+4(FP), BX
	MOVL	a2+8(FP), CX
	MOVL	a3+12(FP), DX
	INT	$0x80
	MOVLQSX	AX, AX
	MOVQ	AX, ret+16(FP)
	RET

// func clone386(flags uint32) int64
TEXT ·clone386(SB), NOSPLIT, $0-16
	MOVL	$120, AX // i386 clone(flags, newsp, parent_tid, tls, child_tid)
	MOVL	flags+0(FP), BX
	XORL	CX, CX
	XORL	DX, DX
	XORL	SI, SI
	XORL	DI, DI
	INT	$0x80
	CMPL	AX, $0
	JNE	parent
	MOVL	$231, AX // the child: exit_group(0), x86-64 numbering
	XORL	DI, DI
	SYSCALL
parent:
	MOVLQSX	AX, AX
	MOVQ	AX, ret+8(FP)
	RET
