package linux

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"icebox/internal/model"
)

// Egress: how a sandbox reaches the world and never the host.
//
// Off by default: a sandbox's network namespace has only its loopback (the
// Runtime API and icebox's API listen there). With egress on, the manager
// owns, per daemon:
//
//	bridge  icebox<key>, address .1 of a /20 taken from 10.192.0.0/10
//	table   inet icebox_<key>: the policy and the masquerade (egress_nft.go)
//
// where key comes from the cgroup parent, itself named after the data dir's
// id, so two daemons never collide and a restart on the same data dir finds
// (and removes) what a killed predecessor left. Each pre-built sandbox gets a
// veth pair whose peer is created directly inside its namespace as eth0, an
// address of the /20 and a default route via the bridge: all of it while the
// sandbox is built ahead of need, none on the invoke path. The veth dies
// with the namespace, so a sandbox leaves nothing behind on the host; the
// bridge and table are removed by Manager.Close, or by the watchdog when
// the daemon dies.
//
// Bridge ports are isolated (IFLA_BRPORT_ISOLATED): sandboxes cannot talk to
// each other at layer 2, and anything routed back into the bridge is refused
// by the table, so sandboxes never reach each other at all.

// EgressConfig configures network egress for sandboxes.
type EgressConfig struct {
	// Enabled gives every sandbox a route to the world through a bridge
	// with NAT, under the policy below. Default false: loopback only.
	Enabled bool
	// Allow opens ranges the policy refuses by default (private ranges,
	// say a database on 10.1.2.3/32). The host itself and other sandboxes
	// stay refused whatever Allow says.
	Allow []netip.Prefix

	// refuse is what is refused unless allowed: defaultRefused, plus what
	// tests add.
	refuse []netip.Prefix
	// Nameservers, when set, replace the host's in sandboxes'
	// /etc/resolv.conf; they are reachable on port 53 whatever the policy.
	Nameservers []netip.Addr
}

// defaultRefused are the destinations a sandbox may not reach unless the
// operator allows them: this network, loopback, private and shared address
// space, link-local (cloud metadata lives at 169.254.169.254), multicast,
// reserved and broadcast. IPv6 is refused altogether (sandboxes get no IPv6
// address), which covers fc00::/7 and fe80::/10.
var defaultRefused = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("224.0.0.0/4"),
	netip.MustParsePrefix("240.0.0.0/4"), // with 255.255.255.255
}

// egressPool is where each daemon's /20 comes from.
var egressPool = netip.MustParsePrefix("10.192.0.0/10")

const (
	egressSubnetBits = 20
	// bridgePrefix begins every icebox bridge's name (IFNAMSIZ allows 15
	// characters: the prefix and a 9-hex-digit key).
	bridgePrefix = "icebox"
	// forwardMarker keeps, host-wide, what net.ipv4.ip_forward was before
	// the first icebox daemon turned it on, so the last one can put it back.
	forwardMarker = "/run/icebox/ip_forward.orig"
	ipForward     = "/proc/sys/net/ipv4/ip_forward"
	egressLock    = "/run/icebox/egress.lock"
)

// Validate checks the egress configuration.
func (c *EgressConfig) Validate() error {
	for _, p := range c.Allow {
		if !p.IsValid() || !p.Addr().Is4() {
			return fmt.Errorf("egress allow %v: want an IPv4 CIDR", p)
		}
	}
	for _, a := range c.Nameservers {
		if !a.Is4() || a.IsLoopback() || a.IsUnspecified() {
			return fmt.Errorf("egress nameserver %v: want an IPv4 address sandboxes can reach (not loopback)", a)
		}
	}
	return nil
}

// egressNames are what a daemon's egress leaves on the host; the watchdog
// gets them too.
type egressNames struct {
	Bridge string `json:"bridge"`
	Table  string `json:"table"`
}

func egressNamesFor(cgroupParent string) egressNames {
	sum := sha256.Sum256([]byte(cgroupParent))
	key := hex.EncodeToString(sum[:])[:9]
	return egressNames{Bridge: bridgePrefix + key, Table: "icebox_" + key}
}

// egressNet is one manager's egress: its bridge, subnet and addresses.
type egressNet struct {
	names       egressNames
	bridgeIndex int
	subnet      netip.Prefix
	gateway     netip.Addr
	nameservers []netip.Addr
	guarded     bool // forwarding was off before icebox: the table keeps other traffic unforwarded

	mu   sync.Mutex
	used map[netip.Addr]bool // addresses of live sandboxes
	// lingering are addresses of destroyed sandboxes, by their host veth:
	// a namespace outlives its processes while sockets in it finish
	// closing (a FIN to a peer that is gone is retried for minutes), and
	// its veth, still on the bridge, still answers ARP for the address.
	lingering map[netip.Addr]string
	next      netip.Addr // where the search for a free one starts

	// netMu orders changes of networks and their members (egress_vpc.go).
	netMu   sync.Mutex
	nets    map[string]model.Network // in the table, with the gone ones still in use
	defined map[string]model.Network // the operator's, which sandboxes may join
	members map[netip.Addr][]string  // the networks of each sandbox in any
}

// setupEgress removes what a predecessor on the same names left, then builds
// the bridge, turns forwarding on and installs the table.
func setupEgress(cfg EgressConfig, names egressNames) (_ *egressNet, err error) {
	unlock, err := lockEgress()
	if err != nil {
		return nil, err
	}
	defer unlock()
	removeEgress(names)
	n := &egressNet{names: names, used: map[netip.Addr]bool{}, lingering: map[netip.Addr]string{},
		nets: map[string]model.Network{}, members: map[netip.Addr][]string{}}
	defer func() {
		if err != nil {
			removeEgress(names)
			releaseForwarding()
		}
	}()
	if n.subnet, err = pickSubnet(names.Bridge); err != nil {
		return nil, err
	}
	n.gateway = n.subnet.Addr().Next()
	n.next = n.gateway.Next()
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: names.Bridge}}
	if err := netlink.LinkAdd(br); err != nil {
		return nil, fmt.Errorf("egress: add bridge %s: %w", names.Bridge, err)
	}
	// A bridge without an address of its own takes the lowest of its
	// ports', so the gateway's MAC changed as sandboxes came and went, and
	// sandboxes whose ARP cache held the old one lost their packets (seen:
	// connect timeouts after a few sandboxes). A set address stays.
	if err := netlink.LinkSetHardwareAddr(br, bridgeMAC(names.Bridge)); err != nil {
		return nil, fmt.Errorf("egress: bridge address: %w", err)
	}
	// No IPv6 on the bridge: no link-local address for sandboxes to find.
	_ = writeFile(filepath.Join("/proc/sys/net/ipv6/conf", names.Bridge, "disable_ipv6"), "1")
	if err := netlink.AddrAdd(br, &netlink.Addr{IPNet: ipNet(n.gateway, n.subnet.Bits())}); err != nil {
		return nil, fmt.Errorf("egress: address bridge: %w", err)
	}
	if err := netlink.LinkSetUp(br); err != nil {
		return nil, fmt.Errorf("egress: bridge up: %w", err)
	}
	n.bridgeIndex = br.Attrs().Index
	if n.guarded, err = takeForwarding(); err != nil {
		return nil, err
	}
	n.nameservers = cfg.Nameservers
	if n.nameservers == nil {
		n.nameservers = hostNameservers()
	}
	if err := installTable(n, cfg); err != nil {
		return nil, err
	}
	return n, nil
}

// close removes the table and the bridge, and gives forwarding back.
func (n *egressNet) close() { teardownEgress(n.names) }

// teardownEgress removes a daemon's table and bridge and, when no icebox
// bridge is left, gives forwarding back (Manager.Close, the watchdog).
func teardownEgress(names egressNames) {
	if unlock, err := lockEgress(); err == nil {
		defer unlock()
	}
	removeEgress(names)
	releaseForwarding()
}

// lockEgress takes the host-wide lock that orders daemons' egress set-up
// and removal: without it two daemons starting at once could pick the same
// subnet (each lists the routes before the other adds its own), and one
// stopping could turn forwarding off as another turns it on.
func lockEgress() (unlock func(), err error) {
	if err := os.MkdirAll(filepath.Dir(egressLock), 0o700); err != nil {
		return nil, fmt.Errorf("egress: %w", err)
	}
	fd, err := unix.Open(egressLock, unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("egress: %w", err)
	}
	for {
		err = unix.Flock(fd, unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("egress: lock %s: %w", egressLock, err)
	}
	return func() { unix.Close(fd) }, nil
}

// removeEgress deletes a daemon's table and bridge, where they exist.
func removeEgress(names egressNames) {
	_ = deleteTable(names.Table)
	if l, err := netlink.LinkByName(names.Bridge); err == nil {
		_ = netlink.LinkDel(l)
	}
}

// pickSubnet takes the /20 of egressPool that the bridge name hashes to, or
// the next one that overlaps no route of the host's (another daemon's
// bridge, a VPN, the LAN).
func pickSubnet(bridge string) (netip.Prefix, error) {
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("egress: list routes: %w", err)
	}
	var taken []netip.Prefix
	for _, r := range routes {
		if r.Dst == nil {
			continue
		}
		// A default route overlaps everything and decides nothing.
		if p, ok := prefixOf(r.Dst); ok && p.Bits() > 0 {
			taken = append(taken, p)
		}
	}
	sum := sha256.Sum256([]byte(bridge))
	count := uint32(1) << (egressSubnetBits - egressPool.Bits())
	base := binary.BigEndian.Uint32(egressPool.Addr().AsSlice())
	for i := range count {
		idx := (binary.BigEndian.Uint32(sum[:4]) + i) % count
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], base+idx<<(32-egressSubnetBits))
		p := netip.PrefixFrom(netip.AddrFrom4(a), egressSubnetBits)
		free := true
		for _, t := range taken {
			if t.Overlaps(p) {
				free = false
				break
			}
		}
		if free {
			return p, nil
		}
	}
	return netip.Prefix{}, errors.New("egress: every subnet of 10.192.0.0/10 is in use on this host")
}

// bridgeMAC is a locally administered unicast MAC derived from the
// bridge's name.
func bridgeMAC(bridge string) net.HardwareAddr {
	sum := sha256.Sum256([]byte("mac " + bridge))
	mac := net.HardwareAddr(sum[:6])
	mac[0] = mac[0]&^1 | 2
	return mac
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones), true
}

func ipNet(a netip.Addr, bits int) *net.IPNet {
	return &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(bits, 32)}
}

// allocate takes a free address of the subnet for a sandbox.
func (n *egressNet) allocate() (netip.Addr, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	last := lastAddr(n.subnet) // the broadcast address
	for a, tried := n.next, 0; tried < 1<<(32-egressSubnetBits); a, tried = a.Next(), tried+1 {
		if a == last || !n.subnet.Contains(a) {
			a = n.gateway.Next()
		}
		if veth, ok := n.lingering[a]; ok {
			if _, err := netlink.LinkByName(veth); err == nil {
				continue
			}
			delete(n.lingering, a)
		}
		if !n.used[a] {
			n.used[a] = true
			n.next = a.Next()
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("egress: no address left in %v", n.subnet)
}

func (n *egressNet) release(a netip.Addr) {
	n.mu.Lock()
	delete(n.used, a)
	n.mu.Unlock()
}

func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Addr().As4()
	v := binary.BigEndian.Uint32(a[:]) | (1<<(32-p.Bits()) - 1)
	binary.BigEndian.PutUint32(a[:], v)
	return netip.AddrFrom4(a)
}

// sandboxLink is a sandbox's end of egress: the host side of its veth pair
// and its address.
type sandboxLink struct {
	host string
	addr netip.Addr

	// mu guards the host veth's counter files, opened on first use and
	// kept open (see traffic).
	mu     sync.Mutex
	tx, rx statFile
}

// traffic reads what the sandbox received and sent, from its host veth's
// counters (what the host end transmits, the sandbox receives): two sysfs
// reads, no netlink dump, so it is cheap enough for every call's end. The
// files stay open and are read again from offset 0: opening and closing
// them on each call was 15% of the daemon's CPU under a warm load.
func (l *sandboxLink) traffic() (received, sent uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tx.path == "" {
		dir := filepath.Join("/sys/class/net", l.host, "statistics")
		l.tx.path, l.rx.path = filepath.Join(dir, "tx_bytes"), filepath.Join(dir, "rx_bytes")
	}
	return readUint(&l.tx), readUint(&l.rx)
}

// closeCounters closes the counter files traffic keeps open.
func (l *sandboxLink) closeCounters() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.tx.close()
	l.rx.close()
}

// attach creates the veth pair of the sandbox whose network namespace is
// nsFD: the host end on the bridge, as an isolated port; the other end,
// eth0, inside the namespace (configured by configureInside, which runs
// there).
func (n *egressNet) attach(nsFD int) (_ *sandboxLink, err error) {
	addr, err := n.allocate()
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			n.release(addr)
		}
	}()
	l := &sandboxLink{host: "icv" + randomID()[:12], addr: addr}
	// The host may still know the address's previous holder (addresses are
	// handed out in turn, so only after the whole /20 went round): forget
	// it, or the first packets would go to a dead veth's MAC.
	_ = netlink.NeighDel(&netlink.Neigh{LinkIndex: n.bridgeIndex, Family: netlink.FAMILY_V4, IP: addr.AsSlice()})
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: l.host, MasterIndex: n.bridgeIndex},
		PeerName:      "eth0",
		PeerNamespace: netlink.NsFd(nsFD),
	}
	if err := netlink.LinkAdd(veth); err != nil {
		return nil, fmt.Errorf("egress: add veth: %w", err)
	}
	defer func() {
		if err != nil {
			_ = netlink.LinkDel(veth)
		}
	}()
	if err := netlink.LinkSetIsolated(veth, true); err != nil {
		return nil, fmt.Errorf("egress: isolate port: %w", err)
	}
	if err := netlink.LinkSetUp(veth); err != nil {
		return nil, fmt.Errorf("egress: veth up: %w", err)
	}
	return l, nil
}

// configureInside addresses eth0 and routes by the gateway. It runs on a
// thread inside the sandbox's network namespace.
func (n *egressNet) configureInside(l *sandboxLink) error {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("egress: netlink in sandbox: %w", err)
	}
	defer h.Close()
	eth, err := h.LinkByName("eth0")
	if err != nil {
		return fmt.Errorf("egress: sandbox eth0: %w", err)
	}
	// A /32 and a route to the gateway alone: even a neighbour's address
	// goes by the gateway, where the table refuses it at once, rather than
	// to an ARP request the isolated port drops (a connect timeout).
	if err := h.AddrAdd(eth, &netlink.Addr{IPNet: ipNet(l.addr, 32)}); err != nil {
		return fmt.Errorf("egress: address eth0: %w", err)
	}
	if err := h.LinkSetUp(eth); err != nil {
		return fmt.Errorf("egress: eth0 up: %w", err)
	}
	idx := eth.Attrs().Index
	if err := h.RouteAdd(&netlink.Route{LinkIndex: idx, Dst: ipNet(n.gateway, 32), Scope: netlink.SCOPE_LINK}); err != nil {
		return fmt.Errorf("egress: route to gateway: %w", err)
	}
	if err := h.RouteAdd(&netlink.Route{LinkIndex: idx, Gw: n.gateway.AsSlice()}); err != nil {
		return fmt.Errorf("egress: default route: %w", err)
	}
	return nil
}

// detach returns the sandbox's address. Its veth goes with its network
// namespace, which the kernel tears down in the background once init has
// died and the listeners are closed: deleting it here instead cost 25 ms of
// RTNL waits per sandbox (measured: a build and destroy took 38 ms against
// 11 ms without egress). The address waits in lingering until the veth
// is gone.
func (n *egressNet) detach(l *sandboxLink) {
	l.closeCounters()
	n.leave(l.addr)
	n.mu.Lock()
	delete(n.used, l.addr)
	n.lingering[l.addr] = l.host
	n.mu.Unlock()
}

// takeForwarding turns IPv4 forwarding on, recording host-wide what it was
// before the first icebox did. It reports whether it was off: then every
// daemon's table drops forwarded traffic that no icebox bridge is part of,
// so turning it on forwards nothing else.
func takeForwarding() (guard bool, err error) {
	cur, err := os.ReadFile(ipForward)
	if err != nil {
		return false, fmt.Errorf("egress: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(forwardMarker), 0o700); err != nil {
		return false, fmt.Errorf("egress: %w", err)
	}
	if f, err := os.OpenFile(forwardMarker, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
		_, _ = f.Write(cur)
		f.Close()
	}
	orig, err := os.ReadFile(forwardMarker)
	if err != nil {
		return false, fmt.Errorf("egress: %w", err)
	}
	if err := writeFile(ipForward, "1"); err != nil {
		return false, fmt.Errorf("egress: turn forwarding on: %w", err)
	}
	return strings.TrimSpace(string(orig)) == "0", nil
}

// releaseForwarding puts forwarding back as it was before icebox once no
// icebox bridge is left on the host.
func releaseForwarding() {
	links, err := netlink.LinkList()
	if err != nil {
		return
	}
	for _, l := range links {
		if _, ok := l.(*netlink.Bridge); ok && strings.HasPrefix(l.Attrs().Name, bridgePrefix) {
			return
		}
	}
	orig, err := os.ReadFile(forwardMarker)
	if err != nil {
		return
	}
	if err := writeFile(ipForward, strings.TrimSpace(string(orig))); err == nil {
		_ = os.Remove(forwardMarker)
	}
}

// hostNameservers are the host's IPv4 resolvers a sandbox can use: those of
// /etc/resolv.conf, or, when it names only a local stub (systemd-resolved's
// 127.0.0.53), the upstream ones the stub forwards to.
func hostNameservers() []netip.Addr {
	for _, f := range []string{"/etc/resolv.conf", "/run/systemd/resolve/resolv.conf"} {
		var out []netip.Addr
		b, _ := os.ReadFile(f)
		for _, line := range strings.Split(string(b), "\n") {
			fs := strings.Fields(line)
			if len(fs) < 2 || fs[0] != "nameserver" {
				continue
			}
			if a, err := netip.ParseAddr(fs[1]); err == nil && a.Is4() && !a.IsLoopback() && !a.IsUnspecified() {
				out = append(out, a)
			}
		}
		if len(out) > 0 {
			return out
		}
	}
	return nil
}

// etcFiles are the sandbox's /etc/resolv.conf under egress.
func (n *egressNet) etcFiles() [][2]string {
	var rc strings.Builder
	for _, a := range n.nameservers {
		fmt.Fprintf(&rc, "nameserver %s\n", a)
	}
	return [][2]string{{"/etc/resolv.conf", rc.String()}}
}

// EgressBridge names the bridge of the manager whose cgroup parent is
// cgroupParent (tests route its traffic; operators find it in `ip link`).
func EgressBridge(cgroupParent string) string { return egressNamesFor(cgroupParent).Bridge }
