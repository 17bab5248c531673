package daemon

import (
	"net/netip"
	"testing"
)

// TestEgressConfig: egress is off unless asked for, allow needs nat, and
// only IPv4 ranges can be opened.
func TestEgressConfig(t *testing.T) {
	v4 := []netip.Prefix{netip.MustParsePrefix("10.1.2.3/32")}
	v6 := []netip.Prefix{netip.MustParsePrefix("fd00::/8")}
	for _, c := range []struct {
		egress string
		allow  []netip.Prefix
		ok     bool
	}{
		{"", nil, true}, {EgressNone, nil, true}, {EgressNAT, nil, true}, {EgressNAT, v4, true},
		{"", v4, false}, {EgressNone, v4, false}, {EgressNAT, v6, false}, {"on", nil, false},
	} {
		cfg := Config{AccountID: "000000000000", Egress: c.egress, EgressAllow: c.allow}
		if err := cfg.Validate(); (err == nil) != c.ok {
			t.Errorf("egress %q allow %v: Validate() = %v, want ok=%v", c.egress, c.allow, err, c.ok)
		}
	}
}
