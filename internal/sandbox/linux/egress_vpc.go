package linux

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"net/netip"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"

	"icebox/internal/errdefs"
	"icebox/internal/model"
)

// Networks: a function whose VpcConfig names networks (model.Network) gets
// their policy instead of the default one. The table's forward chain jumps,
// for every packet from the bridge that is not to a sandbox or a
// nameserver, to the chain vpc:
//
//	chain vpc
//	    source in @m_<network>, to one of its ranges → accept   (each network)
//	    source in @m_<network> → refuse                         (each network without NAT)
//	    (return: the default policy decides)
//
// where the set m_<network> holds the addresses of the sandboxes in it.
// The host and other sandboxes stay refused before the jump, whatever a
// network says. A sandbox joins its sets when Create gives it a function
// (one nftables transaction, only for functions in networks) and leaves them
// when destroyed; a redefined network rewrites the chain in place, so warm
// sandboxes follow the new definition at once.

const vpcChain = "vpc"

// memberSet names the set of a network's sandboxes.
func memberSet(network string) string {
	sum := sha256.Sum256([]byte(network))
	return "m_" + hex.EncodeToString(sum[:8])
}

func (n *egressNet) table() *nftables.Table {
	return &nftables.Table{Family: nftables.TableFamilyINet, Name: n.names.Table}
}

// setNetworks makes defs the networks sandboxes may join. A network that
// is gone while sandboxes are still in it stays as one that reaches nothing
// until they leave: a deleted network never widens what a sandbox reaches.
func (n *egressNet) setNetworks(defs []model.Network) error {
	n.netMu.Lock()
	defer n.netMu.Unlock()
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("egress: nftables: %w", err)
	}
	defer c.CloseLasting()
	t := n.table()
	next := map[string]model.Network{}
	for _, d := range defs {
		next[d.Name] = d
	}
	defined := maps.Clone(next)
	for _, names := range n.members {
		for _, name := range names {
			if _, ok := next[name]; !ok {
				next[name] = model.Network{Name: name}
				defs = append(defs, next[name])
			}
		}
	}
	sets := map[string]*nftables.Set{}
	for name := range next {
		set := &nftables.Set{Table: t, Name: memberSet(name), KeyType: nftables.TypeIPAddr}
		if _, ok := n.nets[name]; !ok {
			var elems []nftables.SetElement
			for a, names := range n.members {
				if slices.Contains(names, name) {
					elems = append(elems, nftables.SetElement{Key: a.AsSlice()})
				}
			}
			if err := c.AddSet(set, elems); err != nil {
				return fmt.Errorf("egress: network %s: %w", name, err)
			}
		}
		sets[name] = set
	}
	ch := &nftables.Chain{Name: vpcChain, Table: t}
	c.FlushChain(ch)
	refuse := verdict(expr.VerdictJump, "refuse")
	for _, d := range defs {
		for _, p := range d.Reach() {
			c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: slices.Concat(member(sets[d.Name]), ipIn(16, p, true), verdict(expr.VerdictAccept, ""))})
		}
	}
	for _, d := range defs {
		if !d.NAT {
			c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: slices.Concat(member(sets[d.Name]), refuse)})
		}
	}
	for name := range n.nets {
		if _, ok := next[name]; !ok {
			c.DelSet(&nftables.Set{Table: t, Name: memberSet(name)})
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("egress: networks: %w", err)
	}
	n.nets, n.defined = next, defined
	return nil
}

// member matches a source address in set.
func member(set *nftables.Set) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Lookup{SourceRegister: 1, SetName: set.Name, SetID: set.ID},
	}
}

// join puts the sandbox at addr into the named networks.
func (n *egressNet) join(addr netip.Addr, names []string) error {
	n.netMu.Lock()
	defer n.netMu.Unlock()
	for _, name := range names {
		if _, ok := n.defined[name]; !ok {
			return fmt.Errorf("network %s does not exist: %w", name, errdefs.ErrInvalid)
		}
	}
	if err := n.setMembership(addr, names, true); err != nil {
		return err
	}
	n.members[addr] = slices.Clone(names)
	return nil
}

// leave takes the sandbox at addr out of its networks.
func (n *egressNet) leave(addr netip.Addr) {
	n.netMu.Lock()
	defer n.netMu.Unlock()
	names, ok := n.members[addr]
	if !ok {
		return
	}
	delete(n.members, addr)
	var live []string
	for _, name := range names {
		if _, ok := n.nets[name]; ok {
			live = append(live, name)
		}
	}
	_ = n.setMembership(addr, live, false)
}

// Preconditions: netMu held.
func (n *egressNet) setMembership(addr netip.Addr, names []string, add bool) error {
	if len(names) == 0 {
		return nil
	}
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("egress: nftables: %w", err)
	}
	defer c.CloseLasting()
	elems := []nftables.SetElement{{Key: addr.AsSlice()}}
	for _, name := range names {
		set := &nftables.Set{Table: n.table(), Name: memberSet(name), KeyType: nftables.TypeIPAddr}
		if add {
			err = c.SetAddElements(set, elems)
		} else {
			err = c.SetDeleteElements(set, elems)
		}
		if err != nil {
			return fmt.Errorf("egress: network %s: %w", name, err)
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("egress: join networks %v: %w", names, err)
	}
	return nil
}

// SetNetworks makes defs the networks sandboxes may join (Spec.Networks).
// Without egress there is nothing to apply: sandboxes have loopback only.
func (m *Manager) SetNetworks(defs []model.Network) error {
	if m.egress == nil {
		return nil
	}
	return m.egress.setNetworks(defs)
}
