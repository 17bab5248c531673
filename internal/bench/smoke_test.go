package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"icebox/internal/testkit"
	"os"
	"strings"
	"testing"
	"time"

	sblinux "icebox/internal/sandbox/linux"
)

func TestMain(m *testing.M) {
	// Sandboxes re-execute the test binary as their PID 1.
	if len(os.Args) > 1 && os.Args[1] == sblinux.InitArg {
		sblinux.RunInit()
		return
	}
	os.Exit(m.Run())
}

// smokeLimits are the gross regressions the smoke bench fails on, each a
// ratio to the floor measured in the same run (Row.Ratio: bigger is
// worse). They hold under -race on a loaded 2-core machine with a wide
// margin; a change that trips one made icebox several times slower.
var smokeLimits = map[string]float64{
	RowColdStart:     50,  // cold start p50 over exec + round trip (seen ≤ 8 under -race)
	RowWarmInvoke:    150, // warm invoke p50 over the bare echo (seen ≤ 50 under -race)
	RowWarmOver:      150, // warm invoke p50 less the SDK floor's, over the runtime's own round trip
	RowWarmURL:       150, // warm function URL call p50 over the bare echo
	RowWarmExt:       10,  // with a no-op extension over without
	ThroughputRow(1): 150, // echo calls/s over invokes/s
	ThroughputRow(8): 300,
	RowEnvRate:       300, // fork+exec/s over environments/s
	RowThaw:          30,  // thaw p50 over the raw freezer write
	RowFreeze:        30,
	RowMemoryPerEnv:  30, // PSS per environment over an idle process's
	// The catalog's size and idle environments must not show in the hot
	// path: each over the same row with one function deployed.
	ScaleColdRow(1): 50,  // as the cold start row
	ScaleWarmRow(1): 150, // as the warm invoke row
	ScaleColdRow(3): 20,
	ScaleWarmRow(3): 20,
	IdleColdRow(2):  20,
	IdleWarmRow(2):  20,
}

// TestSmokeBench runs the whole bench with a few samples per row against an
// in-process server and fails only on gross regressions relative to the
// floors of the same run, never on absolute times.
func TestSmokeBench(t *testing.T) {
	testkit.NeedRoot(t)
	if testing.Short() {
		t.Skip("builds functions and starts a server")
	}
	root, err := ModuleRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	cfg := Smoke()
	zips, err := BuildZips(root, EchoPackage, SleepPackage, ExtensionPackage)
	if err != nil {
		t.Fatal(err)
	}
	cfg.EchoZip, cfg.SleepZip = zips[0], zips[1]
	if cfg.ExtensionLayer, err = ExtensionLayer(zips[2]); err != nil {
		t.Fatal(err)
	}
	if testing.Verbose() {
		cfg.Progress = os.Stderr
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", table.String())

	// Every row is there, measured, with a floor.
	want := []string{RowColdStart, RowWarmInvoke, RowWarmOver, RowWarmURL, ThroughputRow(1), ThroughputRow(8), RowEnvRate, RowThaw, RowFreeze, RowMemoryPerEnv,
		ScaleColdRow(1), ScaleWarmRow(1), ScaleColdRow(3), ScaleWarmRow(3), IdleColdRow(2), IdleWarmRow(2)}
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var parsed Report
	if err := json.Unmarshal(js.Bytes(), &parsed); err != nil {
		t.Fatalf("JSON output does not parse: %v", err)
	}
	for _, id := range want {
		row, ok := parsed.Row(id)
		switch {
		case !ok:
			t.Errorf("row %s missing from the JSON", id)
			continue
		case row.Skipped != "":
			t.Errorf("row %s skipped: %s", id, row.Skipped)
			continue
		case row.FloorName == "" || (row.Floor.P50 == 0 && row.Floor.Value == 0):
			t.Errorf("row %s has no floor: %+v", id, row)
		case row.Result.P50 == 0 && row.Result.Value == 0:
			t.Errorf("row %s has no result: %+v", id, row)
		}
		if !strings.Contains(table.String(), row.FloorName) {
			t.Errorf("table lacks the floor of %s (%q)", id, row.FloorName)
		}
		if ratio := row.Ratio(); ratio > smokeLimits[id] {
			t.Errorf("%s: %.1f× its floor, over the smoke limit of %.0f× (a gross regression)", id, ratio, smokeLimits[id])
		}
	}
	if len(rep.Concurrency) != len(cfg.Concurrency) || len(rep.ColdByAlive) != cfg.ColdStarts+cfg.IdleEnvs {
		t.Errorf("curves: %d concurrency points, %d cold points", len(rep.Concurrency), len(rep.ColdByAlive))
	}
	files, err := rep.WritePlots(t.TempDir())
	if err != nil || len(files) != 2 {
		t.Fatalf("plots: %v %v", files, err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil || !bytes.HasPrefix(b, []byte("\x89PNG")) {
			t.Errorf("%s is not a PNG (%v)", f, err)
		}
	}
}
