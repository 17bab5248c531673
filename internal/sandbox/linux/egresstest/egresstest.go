// Package egresstest gives network egress tests a stand-in for the
// internet that no packet can leave: a test host in a network namespace of
// its own, holding addresses of the benchmarking range 198.18.0.0/15 (which
// the egress policy treats as public), and a policy routing rule that sends
// everything coming from a sandbox bridge to it, whatever the destination.
// A refusal that failed would reach the test host (which does not answer
// for addresses it does not hold), never the world.
package egresstest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/net/dns/dnsmessage"
)

// Host is the test host; it serves HTTP on port 80 (a page, and /bytes/N:
// N bytes) and DNS on port 53. Its addresses come from a pair of /24s of
// 198.18.0.0/15 picked at random, so tests running at once (two packages,
// two engineers) do not meet.
type Host struct {
	// Addr is the test host's public address; it serves HTTP on port 80,
	// answering "hello from <the address asked for>".
	Addr string
	// Private is the test host's second address, in PrivateRange, which
	// tests add to the refused ranges to stand for a private one.
	Private, PrivateRange string
	// Gateway is the host's end of the link to the test host: an address
	// of a host interface, which sandboxes must never reach.
	Gateway string

	link     string // the veth end in the host's namespace
	table    int    // the routing table Route fills
	ns       netns.NsHandle
	cleanups []func()
}

// New builds the test host and serves HTTP on it until the test ends.
func New(t testing.TB) *Host {
	t.Helper()
	h, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// Start builds the test host and serves HTTP and DNS on it until Close.
func Start() (_ *Host, err error) {
	runtime.LockOSThread()
	back := true // the thread is back in the host's namespace
	defer func() {
		if back {
			runtime.UnlockOSThread()
		}
	}()
	host, err := netns.Get()
	if err != nil {
		return nil, err
	}
	defer host.Close()
	ns, err := netns.New() // and the thread is in it
	if err != nil {
		return nil, err
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	pair := int(b[0]) // one of 256 pairs of /24s
	net24 := func(i int) string { return fmt.Sprintf("198.%d.%d", 18+i/256, i%256) }
	h := &Host{
		Addr: net24(2*pair) + ".2", Gateway: net24(2*pair) + ".1",
		Private: net24(2*pair+1) + ".2", PrivateRange: net24(2*pair+1) + ".0/24",
		link: "ibt" + hex.EncodeToString(b[:]), table: 7000 + int(b[1])<<4 + int(b[2]&15), ns: ns,
	}
	h.cleanups = append(h.cleanups, func() { ns.Close() })
	defer func() {
		if err != nil {
			h.Close()
		}
	}()
	err = h.setupInside(host)
	var l net.Listener
	var dns []net.PacketConn
	if err == nil {
		l, err = net.Listen("tcp", ":80")
	}
	// One socket per address: a reply must come from the address asked.
	for _, a := range []string{h.Addr, h.Private} {
		if err == nil {
			var c net.PacketConn
			if c, err = net.ListenPacket("udp4", net.JoinHostPort(a, "53")); err == nil {
				dns = append(dns, c)
			}
		}
	}
	if serr := netns.Set(host); serr != nil {
		// The thread stays locked, and Go ends it with its goroutine.
		back = false
		return nil, fmt.Errorf("back to the host's namespace: %w", serr)
	}
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// /bytes/N is a download of N bytes.
		if n, err := strconv.ParseInt(strings.TrimPrefix(r.URL.Path, "/bytes/"), 10, 64); err == nil && strings.HasPrefix(r.URL.Path, "/bytes/") {
			w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
			_, _ = io.CopyN(w, zeros{}, n)
			return
		}
		fmt.Fprintf(w, "hello from %s", strings.Split(r.Host, ":")[0])
	})}
	go srv.Serve(l)
	h.cleanups = append(h.cleanups, func() { srv.Close() })
	for _, c := range dns {
		go h.serveDNS(c)
		h.cleanups = append(h.cleanups, func() { c.Close() })
	}

	hl, err := netlink.LinkByName(h.link)
	if err != nil {
		return nil, err
	}
	h.cleanups = append(h.cleanups, func() { _ = netlink.LinkDel(hl) })
	addr, _ := netlink.ParseAddr(h.Gateway + "/24")
	if err := netlink.AddrAdd(hl, addr); err != nil {
		return nil, err
	}
	if err := netlink.LinkSetUp(hl); err != nil {
		return nil, err
	}
	return h, nil
}

// Close undoes Start and Route, last first.
func (h *Host) Close() {
	for i := len(h.cleanups) - 1; i >= 0; i-- {
		h.cleanups[i]()
	}
	h.cleanups = nil
}

// zeros reads as an endless run of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// Dial opens a TCP connection from inside the test host, as a machine on
// the host's network would.
func (h *Host) Dial(addr string, timeout time.Duration) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		host, err := netns.Get()
		if err != nil {
			ch <- result{nil, err}
			return
		}
		defer host.Close()
		if err := netns.Set(h.ns); err != nil {
			ch <- result{nil, err}
			return
		}
		c, err := net.DialTimeout("tcp", addr, timeout)
		if netns.Set(host) == nil {
			runtime.UnlockOSThread() // else the thread dies with the goroutine
		}
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

// serveDNS answers every A query on port 53 of the test host with Addr,
// and any other with no records: a resolver for sandboxes to find.
func (h *Host) serveDNS(c net.PacketConn) {
	buf := make([]byte, 512)
	a := netip.MustParseAddr(h.Addr).As4()
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return
		}
		var p dnsmessage.Parser
		hdr, err := p.Start(buf[:n])
		if err != nil {
			continue
		}
		q, err := p.Question()
		if err != nil {
			continue
		}
		b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: hdr.ID, Response: true, Authoritative: true, RecursionDesired: hdr.RecursionDesired, RecursionAvailable: true})
		_ = b.StartQuestions()
		_ = b.Question(q)
		_ = b.StartAnswers()
		if q.Type == dnsmessage.TypeA {
			_ = b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}, dnsmessage.AResource{A: a})
		}
		if out, err := b.Finish(); err == nil {
			_, _ = c.WriteTo(out, from)
		}
	}
}

// setupInside runs in the test host's namespace: loopback, the veth pair
// (its other end moved to the host's namespace), addresses and the route
// back through the host.
func (h *Host) setupInside(host netns.NsHandle) error {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return err
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		return err
	}
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}, PeerName: h.link, PeerNamespace: netlink.NsFd(int(host))}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("veth: %w", err)
	}
	for _, a := range []string{h.Addr + "/24", h.Private + "/24"} {
		addr, _ := netlink.ParseAddr(a)
		if err := netlink.AddrAdd(veth, addr); err != nil {
			return err
		}
	}
	if err := netlink.LinkSetUp(veth); err != nil {
		return err
	}
	return netlink.RouteAdd(&netlink.Route{LinkIndex: veth.Attrs().Index, Gw: net.ParseIP(h.Gateway)})
}

// RouteFrom sends everything that comes in from bridge to the test host,
// until the test ends.
func (h *Host) RouteFrom(t testing.TB, bridge string) {
	t.Helper()
	if err := h.Route(bridge); err != nil {
		t.Fatal(err)
	}
}

// Route sends everything that comes in from bridge to the test host, until
// Close.
func (h *Host) Route(bridge string) error {
	hl, err := netlink.LinkByName(h.link)
	if err != nil {
		return err
	}
	route := &netlink.Route{LinkIndex: hl.Attrs().Index, Gw: net.ParseIP(h.Addr), Table: h.table}
	if err := netlink.RouteAdd(route); err != nil {
		return err
	}
	h.cleanups = append(h.cleanups, func() { _ = netlink.RouteDel(route) })
	rule := netlink.NewRule()
	rule.IifName, rule.Table, rule.Priority = bridge, h.table, 100
	if err := netlink.RuleAdd(rule); err != nil {
		return err
	}
	h.cleanups = append(h.cleanups, func() { _ = netlink.RuleDel(rule) })
	return nil
}
