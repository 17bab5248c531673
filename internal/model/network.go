package model

import (
	"fmt"
	"net/netip"
	"regexp"
	"sync"
	"time"

	"icebox/internal/errdefs"
)

// Network is an operator-defined network a function joins through its
// VpcConfig: each of the function's SubnetIds names one. A function in
// networks reaches what they allow and, unless each of them has NAT, nothing
// else — Lambda's VPC function without a route to a NAT gateway.
type Network struct {
	Name string `json:"name"`
	// CIDRs are the network's own ranges (a VPC's CIDR blocks).
	CIDRs []netip.Prefix `json:"cidrs"`
	// Allow are further ranges its functions may reach (peered networks, a
	// database outside the VPC).
	Allow []netip.Prefix `json:"allow,omitempty"`
	// NAT lets its functions reach the internet too, under the daemon's
	// default policy (a subnet routed through a NAT gateway).
	NAT      bool      `json:"nat,omitempty"`
	Modified time.Time `json:"modified"`
}

// VpcID is the VpcId every icebox network belongs to: a daemon's networks
// are the subnets of one VPC.
const VpcID = "vpc-icebox"

// VpcConfig is a function's VpcConfig as given: SubnetIds name networks;
// security groups are recorded, not enforced (the networks' ranges are the
// rule).
type VpcConfig struct {
	SubnetIDs        []string `json:"subnetIds,omitempty"`
	SecurityGroupIDs []string `json:"securityGroupIds,omitempty"`
	IPv6DualStack    bool     `json:"ipv6DualStack,omitempty"`
}

// Lambda's bounds on VpcConfig.
const (
	MaxSubnetIDs        = 16
	MaxSecurityGroupIDs = 5
)

// Clone returns a copy sharing nothing with v; nil stays nil.
func (v *VpcConfig) Clone() *VpcConfig {
	if v == nil {
		return nil
	}
	return &VpcConfig{SubnetIDs: append([]string(nil), v.SubnetIDs...),
		SecurityGroupIDs: append([]string(nil), v.SecurityGroupIDs...), IPv6DualStack: v.IPv6DualStack}
}

var networkName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`) })

// ValidateNetworkName checks a network's name (a subnet id).
func ValidateNetworkName(name string) error {
	if !networkName().MatchString(name) {
		return fmt.Errorf("network name %q must be 1-64 letters, digits or ._- starting with a letter or digit: %w", name, errdefs.ErrInvalid)
	}
	return nil
}

// NeverReachable are ranges no network may name: a sandbox reaching them
// would reach the host or icebox itself. This network and loopback;
// link-local (cloud metadata at 169.254.169.254, the host's link-local
// addresses); icebox's own sandbox and gateway addresses (10.192.0.0/10,
// every daemon's bridge); multicast, reserved and broadcast.
var NeverReachable = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("10.192.0.0/10"),
	netip.MustParsePrefix("224.0.0.0/4"),
	netip.MustParsePrefix("240.0.0.0/4"),
}

// Validate checks a network definition. hostAddrs are the host's own
// addresses: a range holding one is refused, since it could only be meant
// to open the host (which stays refused whatever a network says).
func (n *Network) Validate(hostAddrs []netip.Addr) error {
	if err := ValidateNetworkName(n.Name); err != nil {
		return err
	}
	if len(n.CIDRs) == 0 {
		return fmt.Errorf("network %s: at least one CIDR is required: %w", n.Name, errdefs.ErrInvalid)
	}
	for _, p := range n.Reach() {
		if !p.IsValid() || !p.Addr().Is4() {
			return fmt.Errorf("network %s: %v: want an IPv4 CIDR: %w", n.Name, p, errdefs.ErrInvalid)
		}
		if p != p.Masked() {
			return fmt.Errorf("network %s: %v has host bits set (did you mean %v?): %w", n.Name, p, p.Masked(), errdefs.ErrInvalid)
		}
		for _, never := range NeverReachable {
			if p.Overlaps(never) {
				return fmt.Errorf("network %s: %v overlaps %v, which no network may reach (the host, icebox's sandboxes, link-local, multicast or reserved addresses): %w", n.Name, p, never, errdefs.ErrInvalid)
			}
		}
		for _, a := range hostAddrs {
			if p.Contains(a) {
				return fmt.Errorf("network %s: %v holds %v, an address of the host (list the ranges around it): %w", n.Name, p, a, errdefs.ErrInvalid)
			}
		}
	}
	return nil
}

// Reach is every range the network lets its functions reach.
func (n *Network) Reach() []netip.Prefix {
	return append(append([]netip.Prefix(nil), n.CIDRs...), n.Allow...)
}
