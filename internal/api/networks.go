package api

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"time"

	"icebox/internal/errdefs"
	"icebox/internal/model"
	"icebox/internal/policy"
)

// Networks (`icebox networks`): the operator's networks, which functions
// join by naming them as SubnetIds in their VpcConfig. A network decides
// what functions may reach, so defining one is an administrator's act, as
// making keys and roles is: root, or a caller whose policy allows the
// icebox:*Network action.

// Networks keeps the network definitions.
type Networks interface {
	Put(ctx context.Context, n model.Network) (model.Network, error)
	Get(name string) (model.Network, error)
	List() []model.Network
	Delete(ctx context.Context, name string) error
}

// SetNetworks gives the API the operator's networks; without them every
// subnet id is unknown.
func (s *Server) SetNetworks(n Networks) { s.networks = n }

type networkInput struct {
	Cidrs []string `json:"Cidrs"`
	Allow []string `json:"Allow"`
	Nat   bool     `json:"Nat"`
}

type networkOutput struct {
	Name     string   `json:"Name"`
	VpcID    string   `json:"VpcId"`
	Cidrs    []string `json:"Cidrs"`
	Allow    []string `json:"Allow"`
	Nat      bool     `json:"Nat"`
	Modified string   `json:"LastModified"`
}

func networkOut(n model.Network) networkOutput {
	str := func(ps []netip.Prefix) []string {
		out := []string{}
		for _, p := range ps {
			out = append(out, p.String())
		}
		return out
	}
	return networkOutput{n.Name, model.VpcID, str(n.CIDRs), str(n.Allow), n.NAT, n.Modified.Format(lambdaTime)}
}

func (s *Server) networkStore() (Networks, error) {
	if s.networks == nil {
		return nil, fmt.Errorf("this icebox keeps no networks: %w", errdefs.ErrUnavailable)
	}
	return s.networks, nil
}

func parsePrefixes(field string, in []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, c := range in {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not a CIDR: %w", field, c, errdefs.ErrInvalid)
		}
		out = append(out, p)
	}
	return out, nil
}

// hostAddrs are the host's own IPv4 addresses, which no network may hold.
func hostAddrs() []netip.Addr {
	addrs, _ := net.InterfaceAddrs()
	var out []netip.Addr
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap().Is4() {
				out = append(out, ip.Unmap())
			}
		}
	}
	return out
}

func (s *Server) putNetwork(w http.ResponseWriter, r *http.Request) error {
	store, err := s.networkStore()
	if err != nil {
		return err
	}
	var in networkInput
	if err := readJSON(r, &in); err != nil {
		return err
	}
	n := model.Network{Name: r.PathValue("name"), NAT: in.Nat, Modified: time.Now().UTC()}
	if n.CIDRs, err = parsePrefixes("Cidrs", in.Cidrs); err != nil {
		return err
	}
	if n.Allow, err = parsePrefixes("Allow", in.Allow); err != nil {
		return err
	}
	if err := n.Validate(hostAddrs()); err != nil {
		return err
	}
	if n, err = store.Put(r.Context(), n); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"Network": networkOut(n)})
	return nil
}

func (s *Server) listNetworks(w http.ResponseWriter, r *http.Request) error {
	out := []networkOutput{}
	if s.networks != nil {
		for _, n := range s.networks.List() {
			out = append(out, networkOut(n))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"Networks": out})
	return nil
}

// deleteNetwork refuses (409) while a function or a published version is
// in the network: its environments would lose their policy under them.
func (s *Server) deleteNetwork(w http.ResponseWriter, r *http.Request) error {
	store, err := s.networkStore()
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	if _, err := store.Get(name); err != nil {
		return err
	}
	for _, fn := range s.functions.List() {
		for _, v := range append([]model.Function{fn}, fn.Versions...) {
			if v.Vpc != nil && slices.Contains(v.Vpc.SubnetIDs, name) {
				return fmt.Errorf("network %s is in use by function %s (version %s): remove it from the function's VpcConfig first: %w", name, fn.Name, v.VersionName(), errdefs.ErrConflict)
			}
		}
	}
	if err := store.Delete(r.Context(), name); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// vpc turns a given VpcConfig into the function's: nil for none (no
// subnets), each subnet an existing network the caller may use.
//
// A caller other than root must be allowed ec2:DescribeSubnets on each
// subnet (arn:aws:ec2:REGION:ACCOUNT:subnet/NAME): Lambda asks that of
// users who create VPC functions, and scoped to the subnet it lets an
// operator say which networks a user may put functions in.
func (s *Server) vpc(r *http.Request, in *vpcConfig) (*model.VpcConfig, error) {
	if in.Ipv6AllowedForDualStack != nil && *in.Ipv6AllowedForDualStack {
		return nil, unsupported("VpcConfig.Ipv6AllowedForDualStack", "IPv6: sandboxes have no IPv6 route")
	}
	if len(in.SubnetIDs) > model.MaxSubnetIDs {
		return nil, validation(fmt.Sprint(in.SubnetIDs), "vpcConfig.subnetIds", fmt.Sprintf("Member must have length less than or equal to %d", model.MaxSubnetIDs))
	}
	if len(in.SecurityGroupIDs) > model.MaxSecurityGroupIDs {
		return nil, validation(fmt.Sprint(in.SecurityGroupIDs), "vpcConfig.securityGroupIds", fmt.Sprintf("Member must have length less than or equal to %d", model.MaxSecurityGroupIDs))
	}
	if len(in.SubnetIDs) == 0 {
		if len(in.SecurityGroupIDs) > 0 {
			return nil, fmt.Errorf("VpcConfig: SecurityGroupIds given without SubnetIds: %w", errdefs.ErrInvalid)
		}
		return nil, nil
	}
	c, signed := callerOf(r)
	for _, id := range in.SubnetIDs {
		if s.networks == nil {
			return nil, unknownSubnet(id)
		}
		if _, err := s.networks.Get(id); err != nil {
			return nil, unknownSubnet(id)
		}
		if signed && !c.id.Root {
			req := policy.Request{Principal: c.id.ARN, Account: s.cfg.AccountID, Action: "ec2:DescribeSubnets",
				Resource: fmt.Sprintf("arn:aws:ec2:%s:%s:subnet/%s", s.cfg.Region, s.cfg.AccountID, id)}
			if err := decideRequest(c.id, req, nil); err != nil {
				return nil, err
			}
		}
	}
	out := &model.VpcConfig{SecurityGroupIDs: slices.Clone(in.SecurityGroupIDs)}
	for _, id := range in.SubnetIDs {
		if !slices.Contains(out.SubnetIDs, id) {
			out.SubnetIDs = append(out.SubnetIDs, id)
		}
	}
	return out, nil
}

// unknownSubnet is Lambda's answer for a subnet EC2 does not know.
func unknownSubnet(id string) error {
	return fmt.Errorf("Error occurred while DescribeSubnets. EC2 Error Code: InvalidSubnetID.NotFound. EC2 Error Message: The subnet ID '%s' does not exist: %w", id, errdefs.ErrInvalid)
}

// vpcConfigOutput is Lambda's VpcConfigResponse.
type vpcConfigOutput struct {
	SubnetIDs               []string `json:"SubnetIds"`
	SecurityGroupIDs        []string `json:"SecurityGroupIds"`
	VpcID                   string   `json:"VpcId"`
	Ipv6AllowedForDualStack bool     `json:"Ipv6AllowedForDualStack"`
}

func vpcOut(v *model.VpcConfig) *vpcConfigOutput {
	if v == nil {
		return nil
	}
	return &vpcConfigOutput{SubnetIDs: slices.Clone(v.SubnetIDs), SecurityGroupIDs: append([]string{}, v.SecurityGroupIDs...), VpcID: model.VpcID}
}
