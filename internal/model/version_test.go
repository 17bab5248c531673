package model_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"icebox/internal/model"
)

// TestProvisions: provisioned concurrency runs on the versions its
// qualifier runs, a weighted alias's split by its weights.
func TestProvisions(t *testing.T) {
	f := valid()
	f.Publish("", time.Now())
	f.MemorySize = 256
	f.Publish("", time.Now())
	f.Aliases = []model.Alias{{Name: "live", FunctionVersion: "2", Weights: map[string]float64{"1": 0.25}}, {Name: "plain", FunctionVersion: "1"}}
	split := func(q string, n int) string {
		var parts []string
		for _, p := range f.Provisions(model.ProvisionedConfig{Qualifier: q, Requested: n}) {
			parts = append(parts, fmt.Sprintf("%s×%d", p.View.VersionName(), p.Count))
		}
		return strings.Join(parts, ",")
	}
	for _, tc := range []struct {
		q    string
		n    int
		want string
	}{{"live", 4, "1×1,2×3"}, {"live", 1, "2×1"}, {"plain", 3, "1×3"}, {"2", 5, "2×5"}, {"gone", 2, ""}} {
		if got := split(tc.q, tc.n); got != tc.want {
			t.Errorf("%d on %s: %s, want %s", tc.n, tc.q, got, tc.want)
		}
	}
}
