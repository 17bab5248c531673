package linux

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"

	"icebox/internal/model"
	"icebox/internal/sandbox"
	"icebox/internal/sandbox/linux/egresstest"
	"icebox/internal/testkit"
)

func newEgressManager(t *testing.T, th *egresstest.Host, allow ...netip.Prefix) *Manager {
	t.Helper()
	testkit.NeedRoot(t)
	egress := EgressConfig{Enabled: true, Allow: allow,
		refuse: append(append([]netip.Prefix{}, defaultRefused...), netip.MustParsePrefix(th.PrivateRange))}
	m, err := NewManager(Config{StateDir: t.TempDir(), CgroupParent: egressTestParent(t), Egress: egress})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

// egressTestParent is a cgroup parent, and so egress names, of the test's
// own: t.TempDir's base names repeat across test processes running at
// once, and a manager removes what it finds under its names.
func egressTestParent(tb testing.TB) string {
	return "icebox-test/" + filepath.Base(tb.TempDir()) + "-" + randomID()[:8]
}

// probeScript has curl fetch each target (with a 3 s connect timeout) and
// print "R target exitcode httpcode seconds".
func probeScript(th *egresstest.Host, targets ...string) string {
	var b strings.Builder
	b.WriteString("cat /etc/resolv.conf /etc/hosts\nls /sys/class/net 2>/dev/null\n")
	for _, u := range targets {
		fmt.Fprintf(&b, "out=$(curl -s -o /dev/null --connect-timeout 3 -m 5 -w '%%{http_code} %%{time_total}' %s); echo \"R %s $? $out\"\n", u, u)
	}
	b.WriteString("curl -s -m 5 http://" + th.Addr + "/page; echo\n")
	return b.String()
}

type probeResult struct {
	exit    string // curl's exit code: 0 fetched, 7 refused, 28 timed out
	seconds float64
}

func probeResults(t *testing.T, out string) map[string]probeResult {
	t.Helper()
	res := map[string]probeResult{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 5 && f[0] == "R" {
			var s float64
			fmt.Sscanf(f[4], "%g", &s)
			res[f[1]] = probeResult{exit: f[2], seconds: s}
		}
	}
	return res
}

// The tests send no packet past the host: see egresstest.

// TestEgress: a sandbox fetches a page from the test host, and is refused,
// fast, the host on every address (a service listening on all of the
// host's addresses, reached by the gateway and by a host interface
// address), cloud metadata, a private range and another sandbox.
func TestEgress(t *testing.T) {
	th := egresstest.New(t)
	m := newEgressManager(t, th)
	th.RouteFrom(t, m.egress.names.Bridge)

	// A service of the host's, on every address of the host.
	hostSvc, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer hostSvc.Close()
	go func() {
		for {
			c, err := hostSvc.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	port := hostSvc.Addr().(*net.TCPAddr).Port

	// Another sandbox, listening on its own address.
	other := start(t, m, "exec perl -MIO::Socket::INET -e 'my $s = IO::Socket::INET->new(LocalPort => 8080, Listen => 5, ReuseAddr => 1) or die; $| = 1; print \"listening\\n\"; while (my $c = $s->accept) { print $c \"HTTP/1.0 200 OK\\r\\n\\r\\nneighbour\"; close $c }'\n", 128)
	otherAddr := other.(*linuxSandbox).link.addr
	words := lines(other)
	testkit.WaitFor(t, 10*time.Second, "the neighbour listening", func() bool {
		select {
		case w := <-words:
			return w == "listening"
		default:
			return false
		}
	})

	// Nor does the host open connections into a sandbox.
	began := time.Now()
	if c, err := net.DialTimeout("tcp", netip.AddrPortFrom(otherAddr, 8080).String(), 3*time.Second); err == nil {
		c.Close()
		t.Error("the host reached a sandbox's listener")
	} else if d := time.Since(began); d >= time.Second {
		t.Errorf("the host's dial into a sandbox failed after %v (%v), want at once", d, err)
	}

	gw := m.egress.gateway
	targets := map[string]string{
		"http://" + th.Addr + "/":                      "0",
		fmt.Sprintf("http://%s:%d/", gw, port):         "7",
		fmt.Sprintf("http://%s:%d/", th.Gateway, port): "7",
		fmt.Sprintf("http://127.0.0.1:%d/", port):      "7", // the sandbox's own loopback
		"http://169.254.169.254/":                      "7",
		"http://" + th.Private + "/":                   "7",
		"http://10.0.0.1/":                             "7",
		fmt.Sprintf("http://%s:8080/", otherAddr):      "7",
	}
	var list []string
	for u := range targets {
		list = append(list, u)
	}
	out, st := run(t, m, script(t, probeScript(th, list...)))
	t.Log(out)
	if st.Code != 0 {
		t.Errorf("probe exit %v", st)
	}
	res := probeResults(t, out)
	for u, want := range targets {
		r, ok := res[u]
		switch {
		case !ok:
			t.Errorf("%s: no result", u)
		case r.exit != want:
			t.Errorf("%s: curl exit %s, want %s", u, r.exit, want)
		case want != "0" && r.seconds >= 1:
			t.Errorf("%s: refused after %.2fs, want under 1s", u, r.seconds)
		}
	}
	if !strings.Contains(out, "hello from "+th.Addr) {
		t.Error("the page from the test host is missing")
	}
	if !strings.Contains(out, "127.0.0.1\tlocalhost") {
		t.Error("/etc/hosts lacks localhost")
	}
	for _, ns := range m.egress.nameservers {
		if !strings.Contains(out, "nameserver "+ns.String()) {
			t.Errorf("/etc/resolv.conf lacks the host's nameserver %s", ns)
		}
	}
}

// TestEgressAllow: a range the policy refuses is reachable once allowed;
// the host and other sandboxes stay refused whatever is allowed.
func TestEgressAllow(t *testing.T) {
	th := egresstest.New(t)
	m := newEgressManager(t, th, netip.MustParsePrefix(th.PrivateRange), netip.MustParsePrefix("0.0.0.0/0"))
	th.RouteFrom(t, m.egress.names.Bridge)
	neighbour := start(t, m, "exec sleep 30\n", 128).(*linuxSandbox).link.addr
	private := "http://" + th.Private + "/"
	host := fmt.Sprintf("http://%s:9/", th.Gateway)
	other := fmt.Sprintf("http://%s:9/", neighbour)
	out, _ := run(t, m, script(t, probeScript(th, private, host, other)))
	t.Log(out)
	res := probeResults(t, out)
	if r := res[private]; r.exit != "0" {
		t.Errorf("%s: curl exit %q, want 0 (allowed)", private, r.exit)
	}
	if r := res[host]; r.exit != "7" {
		t.Errorf("%s: curl exit %q, want 7 (the host, refused)", host, r.exit)
	}
	if r := res[other]; r.exit != "7" {
		t.Errorf("%s: curl exit %q, want 7 (another sandbox, refused)", other, r.exit)
	}
}

// TestEgressDNS: the sandbox's resolv.conf names the host's nameserver,
// which it may query on port 53 even in a refused range, and only there.
func TestEgressDNS(t *testing.T) {
	th := egresstest.New(t)
	testkit.NeedRoot(t)
	egress := EgressConfig{Enabled: true, Nameservers: []netip.Addr{netip.MustParseAddr(th.Private)},
		refuse: append(append([]netip.Prefix{}, defaultRefused...), netip.MustParsePrefix(th.PrivateRange))}
	m, err := NewManager(Config{StateDir: t.TempDir(), CgroupParent: egressTestParent(t), Egress: egress})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	th.RouteFrom(t, m.egress.names.Bridge)
	private := "http://" + th.Private + "/"
	out, _ := run(t, m, script(t, probeScript(th, private)+"getent ahostsv4 example.test | head -1\n"+probeScript(th, private)))
	t.Log(out)
	if !strings.Contains(out, "nameserver "+th.Private) {
		t.Error("resolv.conf does not name the nameserver")
	}
	if !strings.Contains(out, th.Addr+" ") {
		t.Errorf("example.test did not resolve to %s through the nameserver", th.Addr)
	}
	if r := probeResults(t, out)[private]; r.exit != "7" {
		t.Errorf("%s: curl exit %q, want 7: the nameserver is open on port 53 only", private, r.exit)
	}
}

// TestEgressForwardsNothingElse: icebox turns IPv4 forwarding on; when it
// was off, the host still forwards nothing between its other interfaces.
func TestEgressForwardsNothingElse(t *testing.T) {
	a, b := egresstest.New(t), egresstest.New(t)
	if a.Gateway == b.Gateway {
		t.Skip("the two test hosts drew the same addresses")
	}
	m := newEgressManager(t, a)
	orig, err := os.ReadFile(forwardMarker)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(orig)) != "0" {
		t.Skipf("forwarding was on before icebox (%q): nothing to guard", orig)
	}
	if !m.egress.guarded {
		t.Fatal("forwarding was off, and the table does not guard it")
	}
	// From one test host to the other, through the host.
	c, err := a.Dial(b.Addr+":80", time.Second)
	if err == nil {
		c.Close()
		t.Fatal("the host forwarded between two interfaces that are not icebox's")
	}
	t.Logf("refused as wanted: %v", err)
}

// TestEgressOffByDefault: without egress a sandbox has only its loopback.
func TestEgressOffByDefault(t *testing.T) {
	testkit.NeedRoot(t)
	m, err := NewManager(Config{StateDir: t.TempDir(), CgroupParent: egressTestParent(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	if m.egress != nil {
		t.Fatal("egress on without being asked for")
	}
	out, _ := run(t, m, script(t, "ls /sys/class/net 2>/dev/null; cat /proc/net/dev\n"))
	if strings.Contains(out, "eth0") {
		t.Errorf("a sandbox without egress has eth0:\n%s", out)
	}
}

// TestEgressLeavesNothing: Close removes the bridge and the table; after a
// daemon's death the watchdog does; a start on the same names removes
// whatever is left.
func TestEgressLeavesNothing(t *testing.T) {
	testkit.NeedRoot(t)
	parent := egressTestParent(t)
	names := egressNamesFor(parent)
	gone := func(when string) {
		t.Helper()
		if _, err := netlink.LinkByName(names.Bridge); err == nil {
			t.Errorf("%s: bridge %s remains", when, names.Bridge)
		}
		if exists, err := tableExists(names.Table); err != nil || exists {
			t.Errorf("%s: table %s remains (%v)", when, names.Table, err)
		}
	}
	newM := func() *Manager {
		// Nothing pre-built: the daemon's death is played by stopping the
		// watchdog, and a prebuild loop still running would race its sweep.
		m, err := NewManager(Config{StateDir: t.TempDir(), CgroupParent: parent, Prebuilt: -1, Egress: EgressConfig{Enabled: true}})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}

	m := newM()
	if _, err := netlink.LinkByName(names.Bridge); err != nil {
		t.Fatalf("no bridge: %v", err)
	}
	// What ip_forward was before the first icebox (this one, or another
	// test process's running at once) turned it on.
	orig, err := os.ReadFile(forwardMarker)
	if err != nil {
		t.Fatal(err)
	}
	br, err := netlink.LinkByName(names.Bridge)
	if err != nil {
		t.Fatal(err)
	}
	mac := br.Attrs().HardwareAddr.String()
	sb := start(t, m, "sleep 30\n", 128)
	var more []sandbox.Sandbox
	for range 3 {
		more = append(more, start(t, m, "sleep 30\n", 128))
	}
	// Ports come and go; the gateway's MAC, in every sandbox's ARP cache,
	// must not.
	if br, err = netlink.LinkByName(names.Bridge); err != nil || br.Attrs().HardwareAddr.String() != mac {
		t.Errorf("bridge MAC %v after sandboxes joined, was %s (%v)", br.Attrs().HardwareAddr, mac, err)
	}
	for _, s := range more {
		s.Destroy()
	}
	host := sb.(*linuxSandbox).link.host
	sb.Destroy()
	// The kernel removes it with the namespace, in the background.
	testkit.WaitFor(t, 10*time.Second, "veth "+host+" to go with its sandbox", func() bool {
		_, err := netlink.LinkByName(host)
		return err != nil
	})
	m.Close()
	gone("after Close")

	// The daemon dies: the watchdog, seeing its socket close, cleans up.
	m = newM()
	m.watchdog.stop()
	m.watchdog = nil
	gone("after the watchdog")
	m.Close()

	// Leftovers with no watchdog to remove them: the next start does.
	if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: names.Bridge}}); err != nil {
		t.Fatal(err)
	}
	m = newM()
	m.Close()
	gone("after a restart")
	if now, _ := os.ReadFile(ipForward); strings.TrimSpace(string(now)) != strings.TrimSpace(string(orig)) && !otherIceboxBridges() {
		t.Errorf("ip_forward is %q after the last daemon, was %q", now, orig)
	}
}

func tableExists(name string) (bool, error) {
	c, err := nftables.New()
	if err != nil {
		return false, err
	}
	defer c.CloseLasting()
	tab, err := findTable(c, name)
	return tab != nil, err
}

func otherIceboxBridges() bool {
	links, _ := netlink.LinkList()
	for _, l := range links {
		if strings.HasPrefix(l.Attrs().Name, bridgePrefix) {
			return true
		}
	}
	return false
}

// BenchmarkBuild times what pre-building a sandbox costs (off the invoke
// path), with and without its network.
func BenchmarkBuild(b *testing.B) {
	testkit.NeedRoot(b)
	for _, egress := range []bool{false, true} {
		b.Run(fmt.Sprintf("egress=%v", egress), func(b *testing.B) {
			m, err := NewManager(Config{StateDir: b.TempDir(), CgroupParent: egressTestParent(b),
				Prebuilt: -1, Egress: EgressConfig{Enabled: egress}})
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			b.ResetTimer()
			for range b.N {
				s, err := m.build(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				s.Destroy()
			}
		})
	}
}

// runIn runs code in a sandbox that joins networks.
func runIn(t *testing.T, m *Manager, code string, networks ...string) string {
	t.Helper()
	sb, err := m.Create(context.Background(), sandbox.Spec{ID: "n" + filepath.Base(code), CodeDir: code, MemoryMB: 128, TmpMB: 64,
		Args: []string{"/var/task/bootstrap"}, Env: []string{"PATH=/usr/bin:/bin"}, Networks: networks})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Destroy()
	if err := sb.Start(); err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(sb.Output())
	<-sb.Done()
	return string(out)
}

// TestEgressNetworks: a sandbox in a network reaches its ranges, even one
// the default policy refuses, and nothing else; with NAT the public
// internet too. The host and other sandboxes stay refused; a redefined
// network applies to the next sandbox; an unknown one is refused.
func TestEgressNetworks(t *testing.T) {
	th := egresstest.New(t)
	m := newEgressManager(t, th)
	th.RouteFrom(t, m.egress.names.Bridge)
	neighbour := start(t, m, "exec sleep 30\n", 128).(*linuxSandbox).link.addr
	private := "http://" + th.Private + "/"
	public := "http://" + th.Addr + "/"
	host := fmt.Sprintf("http://%s:9/", th.Gateway)
	other := fmt.Sprintf("http://%s:9/", neighbour)
	set := func(nets ...model.Network) {
		t.Helper()
		if err := m.SetNetworks(nets); err != nil {
			t.Fatal(err)
		}
	}
	db := model.Network{Name: "db", CIDRs: []netip.Prefix{netip.MustParsePrefix(th.Private + "/32")}}
	set(db, model.Network{Name: "nat", CIDRs: []netip.Prefix{netip.MustParsePrefix(th.PrivateRange)}, NAT: true})
	probe := script(t, probeScript(th, private, public, host, other))
	for _, tc := range []struct {
		networks []string
		want     map[string]string
	}{
		{nil, map[string]string{private: "7", public: "0", host: "7", other: "7"}},
		{[]string{"db"}, map[string]string{private: "0", public: "7", host: "7", other: "7"}},
		{[]string{"nat"}, map[string]string{private: "0", public: "0", host: "7", other: "7"}},
		// The internet only when every network has NAT.
		{[]string{"db", "nat"}, map[string]string{private: "0", public: "7", host: "7", other: "7"}},
	} {
		out := runIn(t, m, probe, tc.networks...)
		res := probeResults(t, out)
		for u, want := range tc.want {
			if r := res[u]; r.exit != want || want != "0" && r.seconds >= 1 {
				t.Errorf("networks %v: %s: curl exit %q after %.2fs, want %s (7 within 1s)\n%s", tc.networks, u, r.exit, r.seconds, want, out)
			}
		}
	}

	// Redefined: db now names another range; the private address is refused.
	db.CIDRs = []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}
	set(db)
	if r := probeResults(t, runIn(t, m, probe, "db"))[private]; r.exit != "7" {
		t.Errorf("after db was redefined: %s: curl exit %q, want 7", private, r.exit)
	}
	code := script(t, "true\n")
	if sb, err := m.Create(context.Background(), sandbox.Spec{ID: "u" + filepath.Base(code), CodeDir: code, MemoryMB: 128, TmpMB: 64,
		Args: []string{"/var/task/bootstrap"}, Networks: []string{"nat"}}); err == nil {
		sb.Destroy()
		t.Error("a sandbox joined a network that is no longer defined")
	}
}

// BenchmarkCreatePrebuilt times what a cold start asks of the manager when
// a pre-built sandbox is ready (Create, then the runtime's start and exit),
// with and without egress: the network is built with the sandbox, ahead of
// need, so the two should match.
func BenchmarkCreatePrebuilt(b *testing.B) {
	testkit.NeedRoot(b)
	code := script(b, "exit 0\n")
	for _, egress := range []bool{false, true} {
		b.Run(fmt.Sprintf("egress=%v", egress), func(b *testing.B) {
			m, err := NewManager(Config{StateDir: b.TempDir(), CgroupParent: egressTestParent(b), Egress: EgressConfig{Enabled: egress}})
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			for i := range b.N {
				b.StopTimer()
				time.Sleep(50 * time.Millisecond) // the pre-build catches up
				b.StartTimer()
				sb, err := m.Create(context.Background(), sandbox.Spec{ID: fmt.Sprintf("b%d-%s", i, filepath.Base(code)), CodeDir: code,
					MemoryMB: 128, TmpMB: 64, Args: []string{"/var/task/bootstrap"}})
				if err != nil {
					b.Fatal(err)
				}
				if err := sb.Start(); err != nil {
					b.Fatal(err)
				}
				<-sb.Done()
				b.StopTimer()
				sb.Destroy()
				b.StartTimer()
			}
		})
	}
}

// TestEgressNetworksWarm: a running sandbox follows its network's new
// definition at once, and a network deleted under it reaches nothing
// rather than falling back to the default policy.
func TestEgressNetworksWarm(t *testing.T) {
	th := egresstest.New(t)
	m := newEgressManager(t, th)
	th.RouteFrom(t, m.egress.names.Bridge)
	db := model.Network{Name: "db", CIDRs: []netip.Prefix{netip.MustParsePrefix(th.Private + "/32")}}
	if err := m.SetNetworks([]model.Network{db}); err != nil {
		t.Fatal(err)
	}
	code := script(t, fmt.Sprintf(`for i in $(seq 100); do
curl -s -o /dev/null --connect-timeout 1 -m 2 http://%s/; echo "priv$?"
curl -s -o /dev/null --connect-timeout 1 -m 2 http://%s/; echo "pub$?"
sleep 0.1
done
`, th.Private, th.Addr))
	sb, err := m.Create(context.Background(), sandbox.Spec{ID: "w" + filepath.Base(code), CodeDir: code, MemoryMB: 128, TmpMB: 64,
		Args: []string{"/var/task/bootstrap"}, Env: []string{"PATH=/usr/bin:/bin"}, Networks: []string{"db"}})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Destroy()
	if err := sb.Start(); err != nil {
		t.Fatal(err)
	}
	words := lines(sb)
	await := func(what string, want string, forbidden string) {
		t.Helper()
		deadline := time.After(5 * time.Second)
		for {
			select {
			case w, ok := <-words:
				switch {
				case !ok:
					t.Fatalf("%s: the sandbox ended", what)
				case w == forbidden:
					t.Fatalf("%s: %s", what, w)
				case w == want:
					return
				}
			case <-deadline:
				t.Fatalf("%s: no %s within 5 s", what, want)
			}
		}
	}
	await("in db", "priv0", "pub0")
	db.CIDRs = []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}
	if err := m.SetNetworks([]model.Network{db}); err != nil {
		t.Fatal(err)
	}
	await("db redefined", "priv7", "pub0")
	if err := m.SetNetworks(nil); err != nil {
		t.Fatal(err)
	}
	// Two more rounds: neither address is reached.
	for range 2 {
		await("db deleted", "priv7", "pub0")
		await("db deleted", "pub7", "priv0")
	}
}
