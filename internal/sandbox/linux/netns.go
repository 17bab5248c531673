package linux

import (
	"context"
	"fmt"
	"net"
	"runtime"

	"golang.org/x/sys/unix"
)

// listenInNetns opens a TCP listener on each of addrs inside the network
// namespace of process pid, after bringing that namespace's loopback up and
// running inside (when not nil) there. The sockets stay in that namespace
// for their whole life, so only processes inside the sandbox can reach
// them, at the addresses Lambda runtimes expect.
func listenInNetns(hostNS int, pid int, inside func() error, addrs ...string) ([]net.Listener, error) {
	var ls []net.Listener
	err := inNetns(hostNS, pid, func() error {
		if err := loopbackUp(); err != nil {
			return err
		}
		if inside != nil {
			if err := inside(); err != nil {
				return err
			}
		}
		for _, addr := range addrs {
			l, err := net.Listen("tcp", addr)
			if err != nil {
				return err
			}
			ls = append(ls, l)
		}
		return nil
	})
	if err != nil {
		for _, l := range ls {
			l.Close()
		}
		return nil, err
	}
	return ls, nil
}

// dialInNetns connects to addr from inside the network namespace of
// process pid: the socket belongs to that namespace, so 127.0.0.1 is the
// sandbox's own loopback.
func dialInNetns(ctx context.Context, hostNS, pid int, addr string) (net.Conn, error) {
	var c net.Conn
	err := inNetns(hostNS, pid, func() error {
		var err error
		c, err = (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		return err
	})
	if err != nil && c != nil {
		c.Close()
		c = nil
	}
	return c, err
}

// inNetns runs fn inside the network namespace of process pid. setns
// affects only the calling OS thread: fn runs on a locked thread that is
// switched back to hostNS afterwards. If switching back fails the thread
// stays locked and Go discards it when the goroutine ends.
func inNetns(hostNS, pid int, fn func() error) error {
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		target, err := unix.Open(fmt.Sprintf("/proc/%d/ns/net", pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			ch <- fmt.Errorf("open netns: %w", err)
			return
		}
		defer unix.Close(target)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			ch <- fmt.Errorf("setns: %w", err)
			return
		}
		err = fn()
		if rerr := unix.Setns(hostNS, unix.CLONE_NEWNET); rerr != nil {
			// The thread is poisoned: keep it locked so it dies with us.
			ch <- fmt.Errorf("restore netns: %w", rerr)
			return
		}
		runtime.UnlockOSThread()
		ch <- err
	}()
	return <-ch
}

// loopbackUp sets IFF_UP on lo in the calling thread's network namespace.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("get lo flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("set lo up: %w", err)
	}
	return nil
}
