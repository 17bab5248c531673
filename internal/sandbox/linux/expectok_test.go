package linux

import (
	"bufio"
	"context"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A context that ends just as init's reply is read leaves the control
// socket without a deadline: the status reader after expectOK (start's)
// must not find its reads ended by a cancellation that came too late to
// matter, which reported a running sandbox's runtime killed and lost its
// extensions' exits.
func TestExpectOKLateCancelLeavesNoDeadline(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.SetNonblock(fds[0], true); err != nil {
		t.Fatal(err)
	}
	ctl, peer := os.NewFile(uintptr(fds[0]), "ctl"), os.NewFile(uintptr(fds[1]), "peer")
	defer ctl.Close()
	defer peer.Close()
	s := &linuxSandbox{ctl: ctl, ctlR: bufio.NewReader(ctl)}
	for i := range 3000 {
		if _, err := peer.Write([]byte("ok\n")); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		go cancel() // races with the end of expectOK
		if err := s.expectOK(ctx, "reply"); err != nil {
			// Cancelled before the read: a refusal is right, but the
			// line is still to be consumed.
			if _, err := s.ctlR.ReadString('\n'); err != nil {
				t.Fatalf("round %d: the reply after a cancelled expectOK: %v", i, err)
			}
			_ = ctl.SetReadDeadline(time.Time{})
		}
		<-ctx.Done()
		time.Sleep(10 * time.Microsecond) // a late AfterFunc has run
		if _, err := peer.Write([]byte("status\n")); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ctlR.ReadString('\n'); err != nil {
			t.Fatalf("round %d: a status line after expectOK returned: %v", i, err)
		}
	}
}
