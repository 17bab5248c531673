package linux

import (
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// installTable writes the daemon's inet table in one transaction:
//
//	chain refuse          tcp → reset; anything else → icmpx admin-prohibited
//	chain input   (hook input, filter)
//	    from the bridge → refuse                  the host, on every address
//	chain output  (hook output, filter)
//	    to the bridge, a new connection → refuse  host processes do not reach sandboxes either
//	                                              (the resets and errors this table sends are
//	                                              related or invalid, not new: they pass)
//	chain forward (hook forward, filter)
//	    [guard] neither side an icebox bridge → drop
//	    to the bridge, established/related → accept
//	    to the bridge → refuse                    no way in; no sandbox to sandbox
//	    from the bridge, not IPv4 → refuse
//	    from the bridge, source not ours → drop
//	    from the bridge, to our subnet → refuse
//	    from the bridge, to a nameserver, port 53 → accept
//	    from the bridge → jump vpc                the networks' policy (egress_vpc.go)
//	    from the bridge, to an allowed range → accept
//	    from the bridge, to a refused range → refuse
//	chain postrouting (hook postrouting, srcnat)
//	    from the subnet, out of another interface → masquerade
//
// Refusals answer at once (a reset or an ICMP error), so a function sees
// "connection refused" rather than waiting out a timeout.
func installTable(n *egressNet, cfg EgressConfig) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("egress: nftables: %w", err)
	}
	defer c.CloseLasting()
	t := c.AddTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: n.names.Table})
	refuse := c.AddChain(&nftables.Chain{Name: "refuse", Table: t})
	accept := nftables.ChainPolicyAccept
	input := c.AddChain(&nftables.Chain{Name: "input", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter, Policy: &accept})
	output := c.AddChain(&nftables.Chain{Name: "output", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityFilter, Policy: &accept})
	forward := c.AddChain(&nftables.Chain{Name: "forward", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &accept})
	vpc := c.AddChain(&nftables.Chain{Name: vpcChain, Table: t})
	post := c.AddChain(&nftables.Chain{Name: "postrouting", Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource, Policy: &accept})

	rule := func(ch *nftables.Chain, e ...[]expr.Any) {
		var all []expr.Any
		for _, x := range e {
			all = append(all, x...)
		}
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: all})
	}
	br := n.names.Bridge
	toRefuse := verdict(expr.VerdictJump, refuse.Name)

	rule(refuse, l4proto(unix.IPPROTO_TCP), []expr.Any{&expr.Reject{Type: unix.NFT_REJECT_TCP_RST}})
	rule(refuse, []expr.Any{&expr.Reject{Type: unix.NFT_REJECT_ICMPX_UNREACH, Code: unix.NFT_REJECT_ICMPX_ADMIN_PROHIBITED}})

	rule(input, ifname(expr.MetaKeyIIFNAME, br), toRefuse)
	rule(output, ifname(expr.MetaKeyOIFNAME, br), ctState(expr.CtStateBitNEW), toRefuse)

	if n.guarded {
		rule(forward, ifPrefixNot(expr.MetaKeyIIFNAME, bridgePrefix), ifPrefixNot(expr.MetaKeyOIFNAME, bridgePrefix),
			verdict(expr.VerdictDrop, ""))
	}
	rule(forward, ifname(expr.MetaKeyOIFNAME, br), ctEstablished(), verdict(expr.VerdictAccept, ""))
	rule(forward, ifname(expr.MetaKeyOIFNAME, br), toRefuse)
	from := ifname(expr.MetaKeyIIFNAME, br)
	rule(forward, from, []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}},
	}, toRefuse)
	rule(forward, from, ipIn(12, n.subnet, false), verdict(expr.VerdictDrop, ""))
	// Other sandboxes are refused when routed back into the bridge, above;
	// this holds whatever the routes (and Allow) say.
	rule(forward, from, ipIn(16, n.subnet, true), toRefuse)
	for _, ns := range n.nameservers {
		for _, proto := range []byte{unix.IPPROTO_UDP, unix.IPPROTO_TCP} {
			rule(forward, from, ipIn(16, netip.PrefixFrom(ns, 32), true), l4proto(proto), []expr.Any{
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(53)},
			}, verdict(expr.VerdictAccept, ""))
		}
	}
	rule(forward, from, verdict(expr.VerdictJump, vpc.Name))
	for _, p := range cfg.Allow {
		rule(forward, from, ipIn(16, p.Masked(), true), verdict(expr.VerdictAccept, ""))
	}
	for _, p := range cfg.refuse {
		rule(forward, from, ipIn(16, p.Masked(), true), toRefuse)
	}

	rule(post, []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}},
	}, ipIn(12, n.subnet, true), ifnameNot(expr.MetaKeyOIFNAME, br), []expr.Any{&expr.Masq{}})

	if err := c.Flush(); err != nil {
		return fmt.Errorf("egress: install table %s: %w", n.names.Table, err)
	}
	return nil
}

// deleteTable removes the named inet table; a missing one is no error.
func deleteTable(name string) error {
	c, err := nftables.New()
	if err != nil {
		return err
	}
	defer c.CloseLasting()
	t, err := findTable(c, name)
	if err != nil || t == nil {
		return err
	}
	c.DelTable(t)
	return c.Flush()
}

// findTable returns the named inet table, or nil.
func findTable(c *nftables.Conn, name string) (*nftables.Table, error) {
	ts, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, err
	}
	for _, t := range ts {
		if t.Name == name {
			return t, nil
		}
	}
	return nil, nil
}

func verdict(k expr.VerdictKind, chain string) []expr.Any {
	return []expr.Any{&expr.Verdict{Kind: k, Chain: chain}}
}

// ifnameBytes is an interface name as the kernel compares it: NUL-padded
// to IFNAMSIZ.
func ifnameBytes(name string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return b
}

func ifname(key expr.MetaKey, name string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifnameBytes(name)},
	}
}

func ifnameNot(key expr.MetaKey, name string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: ifnameBytes(name)},
	}
}

// ifPrefixNot matches an interface whose name does not begin with prefix:
// comparing fewer bytes than IFNAMSIZ compares a prefix.
func ifPrefixNot(key expr.MetaKey, prefix string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte(prefix)},
	}
}

func l4proto(p byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p}},
	}
}

// ipIn matches the IPv4 address at offset (12 source, 16 destination) of
// the network header against p, or against everything but p when !in.
func ipIn(offset uint32, p netip.Prefix, in bool) []expr.Any {
	op := expr.CmpOpEq
	if !in {
		op = expr.CmpOpNeq
	}
	mask := ipNet(p.Addr(), p.Bits()).Mask
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: make([]byte, 4)},
		&expr.Cmp{Op: op, Register: 1, Data: p.Masked().Addr().AsSlice()},
	}
}

func ctEstablished() []expr.Any {
	return ctState(expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED)
}

// ctState matches a conntrack state among bits.
func ctState(bits uint32) []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(bits), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	}
}
