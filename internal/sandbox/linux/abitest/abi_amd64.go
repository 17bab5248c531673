package abitest

// Supported tells whether this architecture has a foreign entry to try.
const Supported = true

// syscall386 makes system call nr through int $0x80, the i386 ABI, and
// returns EAX sign-extended (a negative errno on failure).
func syscall386(nr, a1, a2, a3 uint32) int64

// clone386 calls the i386 clone with flags and no new stack, like fork: the
// child exits at once through the native exit_group, running nothing of Go.
// It returns the child's pid or a negative errno.
func clone386(flags uint32) int64
