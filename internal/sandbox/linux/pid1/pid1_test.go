package pid1

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestCloseOnExecFrom: a descriptor opened without O_CLOEXEC (as a library
// in init might) does not survive into the runtime.
func TestCloseOnExecFrom(t *testing.T) {
	fd, err := unix.Open("/dev/null", unix.O_RDONLY, 0) // deliberately inheritable
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := closeOnExecFrom(3); err != nil {
		t.Fatal(err)
	}
	if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil || fl&unix.FD_CLOEXEC == 0 {
		t.Errorf("fd %d flags %#x (%v): not close-on-exec", fd, fl, err)
	}
}

// TestLoadSeccompRefusesMalformed: a filter that is not whole instructions
// fails the sandbox's start instead of loading something else.
func TestLoadSeccompRefusesMalformed(t *testing.T) {
	for _, f := range [][]byte{nil, make([]byte, 7), make([]byte, 8*0x10000)} {
		if err := loadSeccomp(f); err == nil {
			t.Errorf("a filter of %d bytes was loaded", len(f))
		}
	}
}
