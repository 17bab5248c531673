package layers

// The ranks follow STYLE.md: domain types, then stores and kernel code, the
// pool, the invoker, the API edge, the daemon, the command.

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// rank of every icebox package; a package may import only lower ranks.
var rank = map[string]int{
	"icebox/internal/model":              1,
	"icebox/internal/errdefs":            0,
	"icebox/internal/policy":             0,
	"icebox/internal/httpbody":           0,
	"icebox/internal/sandbox":            2,
	"icebox/internal/engine":             2,
	"icebox/internal/store/codezip":      2,
	"icebox/internal/metrics":            2,
	"icebox/runtimes":                    2,
	"icebox/internal/runtimeapi":         2,
	"icebox/internal/telemetry":          2,
	"icebox/internal/store":              3,
	"icebox/internal/auth":               3,
	"icebox/internal/sandbox/linux/pid1": 2,
	"icebox/internal/sandbox/linux":      3,
	"icebox/internal/logs":               3,
	"icebox/internal/membership":         3,
	"icebox/internal/admission":          3,
	"icebox/internal/environment":        3,
	"icebox/internal/pool":               4,
	"icebox/internal/console":            4,
	"icebox/internal/invoke":             5,
	"icebox/internal/functions":          5,
	"icebox/internal/api":                6,
	"icebox/internal/daemon":             7,
	"icebox/internal/bench":              8,
	"icebox/cmd/icebox":                  9,
	"icebox/cmd/icebox-bench":            9,
	"icebox/cmd/icebox-init":             9,
}

func TestImportsFlowOneWay(t *testing.T) {
	out, err := exec.Command("go", "list", "-json=ImportPath,Imports", "icebox/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		r, ok := rank[p.ImportPath]
		if !ok {
			if !strings.Contains(p.ImportPath, "test") && p.ImportPath != "icebox/internal/layers" {
				t.Errorf("package %s has no rank: add it to the table", p.ImportPath)
			}
			continue
		}
		for _, imp := range p.Imports {
			if ri, ok := rank[imp]; ok && ri >= r {
				t.Errorf("%s (rank %d) imports %s (rank %d): imports must flow one way", p.ImportPath, r, imp, ri)
			}
		}
	}
}
