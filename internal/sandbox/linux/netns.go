package linux

import (
	"fmt"
	"net"
	"runtime"

	"golang.org/x/sys/unix"
)

// listenInNetns opens a TCP listener on each of addrs inside the network
// namespace of process pid, after bringing that namespace's loopback up and
// running inside (when not nil) there. The
// sockets stay in that namespace for their whole life, so only processes
// inside the sandbox can reach them, at the addresses Lambda runtimes expect.
//
// setns affects only the calling OS thread: the work runs on a locked thread
// that is switched back to hostNS afterwards. If switching back fails the
// thread stays locked and Go discards it when the goroutine ends.
func listenInNetns(hostNS int, pid int, inside func() error, addrs ...string) ([]net.Listener, error) {
	type result struct {
		l   []net.Listener
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		target, err := unix.Open(fmt.Sprintf("/proc/%d/ns/net", pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{nil, fmt.Errorf("open netns: %w", err)}
			return
		}
		defer unix.Close(target)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			ch <- result{nil, fmt.Errorf("setns: %w", err)}
			return
		}
		var ls []net.Listener
		err = loopbackUp()
		if err == nil && inside != nil {
			err = inside()
		}
		for _, addr := range addrs {
			if err != nil {
				break
			}
			var l net.Listener
			if l, err = net.Listen("tcp", addr); err == nil {
				ls = append(ls, l)
			}
		}
		rerr := unix.Setns(hostNS, unix.CLONE_NEWNET)
		if err != nil || rerr != nil {
			for _, l := range ls {
				l.Close()
			}
		}
		if rerr != nil {
			// The thread is poisoned: keep it locked so it dies with us.
			ch <- result{nil, fmt.Errorf("restore netns: %w", rerr)}
			return
		}
		runtime.UnlockOSThread()
		if err != nil {
			ls = nil
		}
		ch <- result{ls, err}
	}()
	r := <-ch
	return r.l, r.err
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
