package linux

import (
	"io"
	"net"
	"testing"
)

// traffic keeps the counter files open and reads them again from offset 0:
// each call sees the bytes sent since the last (on lo, whose counters only
// grow; the kernel regenerates a sysfs file on each read at offset 0).
func TestTrafficRereadsOpenCounters(t *testing.T) {
	l := &sandboxLink{host: "lo"}
	defer l.closeCounters()
	rx0, tx0 := l.traffic()
	if rx0 == 0 || tx0 == 0 {
		t.Skip("lo has no counters here")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const size = 1 << 20
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		io.Copy(io.Discard, c)
		c.Close()
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Write(make([]byte, size))
	c.Close()
	<-done
	rx1, tx1 := l.traffic()
	if rx1 < rx0+size || tx1 < tx0+size {
		t.Errorf("after %d bytes on lo: received %d → %d, sent %d → %d", size, rx0, rx1, tx0, tx1)
	}
	if l.tx.f == nil || l.rx.f == nil {
		t.Error("the counter files were not kept open")
	}
}
