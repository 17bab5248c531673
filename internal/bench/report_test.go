package bench

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// sampleReport has one row of every kind, as Run assembles them.
func sampleReport() *Report {
	rep := &Report{Machine: Machine{CPU: "test CPU", CPUs: 2, MemoryMB: 1024, Kernel: "6.0", CgroupVersion: 1, Go: "go1.26"}, Mode: "in-process"}
	rep.Rows = []Row{
		{ID: RowColdStart, Name: "cold", Unit: UnitMicros, Result: Stat{P50: 4000, P99: 12000, Samples: 10}, FloorName: "exec floor", Floor: Stat{P50: 2000, P99: 3000, Samples: 10}},
		{ID: RowWarmInvoke, Name: "warm", Unit: UnitMicros, Result: Stat{P50: 700, P99: 2000, Samples: 10}, FloorName: "echo floor", Floor: Stat{P50: 40, P99: 100, Samples: 10}},
		{ID: ThroughputRow(32), Name: "c32", Unit: UnitPerSec, Result: Stat{Value: 16000}, FloorName: "echo c32", Floor: Stat{Value: 32000}},
		{ID: RowEnvRate, Name: "envs", Unit: UnitPerSec, Result: Stat{Value: 100}, FloorName: "fork+exec", Floor: Stat{Value: 1000}},
		{ID: RowThaw, Name: "thaw", Unit: UnitMicros, Result: Stat{P50: 30, P99: 150}, FloorName: "raw freezer", Floor: Stat{P50: 20, P99: 40}},
		{ID: RowFreeze, Name: "freeze", Unit: UnitMicros, Result: Stat{P50: 30, P99: 150}, FloorName: "raw freezer", Floor: Stat{P50: 20, P99: 40}},
		{ID: RowMemoryPerEnv, Name: "memory", Unit: UnitMiB, FloorName: "idle process", Skipped: "needs the in-process server"},
	}
	for i := range rep.Rows {
		judge(&rep.Rows[i])
	}
	return rep
}

func TestJudgeAgainstTheIssueTargets(t *testing.T) {
	rep := sampleReport()
	want := map[string]*bool{
		RowColdStart:      ptr(true),  // 4 ms ≤ 5, 12 ms ≤ 15
		RowWarmInvoke:     ptr(false), // 700 µs > 40 + 150
		ThroughputRow(32): ptr(true),
		RowEnvRate:        ptr(false),
		RowThaw:           ptr(true),
		RowFreeze:         nil, // no target of its own
		RowMemoryPerEnv:   nil, // skipped rows are not judged
	}
	for id, w := range want {
		row, ok := rep.Row(id)
		if !ok {
			t.Fatalf("row %s missing", id)
		}
		switch {
		case w == nil && row.Met != nil:
			t.Errorf("%s: judged %v, want no verdict", id, *row.Met)
		case w != nil && (row.Met == nil || *row.Met != *w):
			t.Errorf("%s: met = %v, want %v", id, row.Met, *w)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestRatioIsWorseWhenBigger(t *testing.T) {
	rep := sampleReport()
	for id, want := range map[string]float64{RowColdStart: 2, RowEnvRate: 10, ThroughputRow(32): 2, RowMemoryPerEnv: 0} {
		row, _ := rep.Row(id)
		if got := row.Ratio(); got != want {
			t.Errorf("%s: ratio %v, want %v", id, got, want)
		}
	}
}

func TestTableShowsEveryRowNextToItsFloor(t *testing.T) {
	rep := sampleReport()
	var buf bytes.Buffer
	if err := rep.WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"| cold ", "p50 4.00 ms, p99 12.0 ms", "exec floor", "p50 2.00 ms, p99 3.00 ms", "2.0×", "p50 ≤ 5 ms, p99 ≤ 15 ms", "| met ",
		"| warm ", "p50 700 µs, p99 2.00 ms", "echo floor", "not met",
		"16,000/s", "32,000/s",
		"skipped: needs the in-process server",
		"2 × test CPU", "cgroup v1",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	// One header, one separator, one line per row; every line is a table line.
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.HasPrefix(l, "|") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 2+len(rep.Rows) {
		t.Errorf("%d table lines, want %d", len(lines), 2+len(rep.Rows))
	}
}

func TestJSONHasEveryRow(t *testing.T) {
	rep := sampleReport()
	var buf bytes.Buffer
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var got Report
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("JSON does not parse: %v\n%s", err, buf.String())
	}
	if len(got.Rows) != len(rep.Rows) {
		t.Fatalf("%d rows, want %d", len(got.Rows), len(rep.Rows))
	}
	for i, row := range rep.Rows {
		g := got.Rows[i]
		if g.ID != row.ID || g.FloorName != row.FloorName || g.Floor != row.Floor || g.Result != row.Result || g.Skipped != row.Skipped {
			t.Errorf("row %d: got %+v, want %+v", i, g, row)
		}
		if (g.Met == nil) != (row.Met == nil) || (g.Met != nil && *g.Met != *row.Met) {
			t.Errorf("row %s: met %v, want %v", row.ID, g.Met, row.Met)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	zip := []byte("PK")
	for name, tc := range map[string]struct {
		mutate func(*Config)
		ok     bool
	}{
		"default":            {func(c *Config) {}, true},
		"full":               {func(c *Config) { *c = Full(); c.EchoZip = zip }, true},
		"smoke":              {func(c *Config) { *c = Smoke(); c.EchoZip = zip }, true},
		"no zip":             {func(c *Config) { c.EchoZip = nil }, false},
		"endpoint":           {func(c *Config) { c.Endpoint, c.AccessKeyID, c.SecretAccessKey = "http://127.0.0.1:9070", "AK", "S" }, true},
		"endpoint no creds":  {func(c *Config) { c.Endpoint = "http://127.0.0.1:9070" }, false},
		"endpoint not a URL": {func(c *Config) { c.Endpoint, c.AccessKeyID, c.SecretAccessKey = "127.0.0.1:9070", "AK", "S" }, false},
		"one cold start":     {func(c *Config) { c.ColdStarts = 1 }, false},
		"zero concurrency":   {func(c *Config) { c.Concurrency = []int{0} }, false},
		"tiny throughput":    {func(c *Config) { c.ThroughputTime = time.Millisecond }, false},
		"negative idle envs": {func(c *Config) { c.IdleEnvs = -1 }, false},
	} {
		t.Run(name, func(t *testing.T) {
			c := Default()
			c.EchoZip = zip
			tc.mutate(&c)
			c.setDefaults()
			if err := c.Validate(); (err == nil) != tc.ok {
				t.Errorf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestUnpackBootstrap(t *testing.T) {
	z, err := zipBootstrap([]byte("#!/bin/sh\n"))
	if err != nil {
		t.Fatal(err)
	}
	bin, err := unpackBootstrap(z, t.TempDir()+"/code")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(bin, "/code/bootstrap") {
		t.Errorf("unpacked to %s", bin)
	}
	if _, err := unpackBootstrap([]byte("not a zip"), t.TempDir()); err == nil {
		t.Error("a broken zip was accepted")
	}
}

// TestLoadAndCPURows judges the round-2 targets against their floors: the
// SDK row at 32 callers against the SDK floor, icebox run against 15,000/s
// and 3× the echo's p99, failed calls shown and never a pass.
func TestLoadAndCPURows(t *testing.T) {
	rows := []Row{
		{ID: ThroughputRow(32), Unit: UnitLoad, Result: Stat{Value: 5000, P50: 5000, P99: 20000}, Floor: Stat{Value: 9000, P99: 10000}},
		{ID: ThroughputRow(32), Unit: UnitLoad, Result: Stat{Value: 5000, P50: 5000, P99: 40000}, Floor: Stat{Value: 9000, P99: 10000}},
		{ID: IceboxRunRow(32), Unit: UnitLoad, Result: Stat{Value: 16000, P50: 1000, P99: 3000}, Floor: Stat{Value: 45000, P99: 1000}},
		{ID: IceboxRunRow(32), Unit: UnitLoad, Result: Stat{Value: 16000, P50: 1000, P99: 3000, Failed: 1}, Floor: Stat{Value: 45000, P99: 1000}},
		{ID: RowCPURun, Unit: UnitCPU, Result: Stat{Value: 120, Daemon: 70, Runtime: 50}, Floor: Stat{Value: 60}},
		{ID: RowMemoryPerEnv, Unit: UnitMiB, Result: Stat{Value: 2.5, Samples: 1000}, Floor: Stat{Value: 1}},
		{ID: RowMemoryPerEnv, Unit: UnitMiB, Result: Stat{Value: 2.5, Samples: 100}, Floor: Stat{Value: 1}},
		{ID: PeerRIERow(4), Unit: UnitLoad, Result: Stat{Failed: 12, Samples: 0}, Floor: Stat{Value: 45000}},
	}
	want := []*bool{ptr(true), ptr(false), ptr(true), ptr(false), ptr(true), ptr(false), ptr(true), nil}
	for i := range rows {
		judge(&rows[i])
		if w := want[i]; (w == nil) != (rows[i].Met == nil) || (w != nil && *w != *rows[i].Met) {
			t.Errorf("row %d (%s): met %v, want %v", i, rows[i].ID, rows[i].Met, w)
		}
	}
	if got := rows[0].Ratio(); got != 9000.0/5000 {
		t.Errorf("load ratio %v, want floor over result", got)
	}
	if got := rows[4].Ratio(); got != 2 {
		t.Errorf("CPU ratio %v, want 2", got)
	}
	for st, want := range map[string]string{
		formatStat(UnitLoad, rows[0].Result): "5,000/s, p50 5.00 ms, p99 20.0 ms",
		formatStat(UnitLoad, rows[7].Result): "0/s, p50 0 µs, p99 0 µs, 12 of 12 calls failed",
		formatStat(UnitCPU, rows[4].Result):  "120 µs (daemon 70 + runtime 50)",
		formatStat(UnitCPU, rows[4].Floor):   "60 µs",
	} {
		if st != want {
			t.Errorf("formatted %q, want %q", st, want)
		}
	}
}

func TestPanicLine(t *testing.T) {
	out := "START RequestId: 1\npanic: runtime error: invalid memory address or nil pointer dereference\n[signal SIGSEGV: segmentation violation code=0x1 addr=0x40 pc=0x7934ff]\n\ngoroutine 39 [running]:\ngithub.com/aws/x/internal/lambda/rapidcore.(*Server).Invoke.func2()\n\t/tmp/x/server.go:666 +0xdf\n"
	if got, want := panicLine(out), "runtime error: invalid memory address or nil pointer dereference in rapidcore.(*Server).Invoke.func2()"; got != want {
		t.Errorf("panicLine = %q, want %q", got, want)
	}
	if got := panicLine("all fine\n"); got != "" {
		t.Errorf("panicLine without a panic = %q", got)
	}
}

// The cluster rows start their own nodes: an endpoint makes no sense there.
func TestClusterConfig(t *testing.T) {
	cfg := Smoke()
	cfg.EchoZip = []byte("zip")
	cfg.Cluster = true
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("cluster config: %v", err)
	}
	cfg.Endpoint, cfg.AccessKeyID, cfg.SecretAccessKey = "http://127.0.0.1:9070", "AKID", "secret"
	if err := cfg.Validate(); err == nil {
		t.Error("cluster rows against an endpoint were accepted")
	}
	if got := clusterLimit(ClusterCallers); got <= ClusterCallers || got >= clusterRoomyLimit {
		t.Errorf("tight limit %d for %d callers: must be above the callers and below the roomy %d", got, ClusterCallers, clusterRoomyLimit)
	}
}

func TestOnlyGroups(t *testing.T) {
	all := Config{}
	only := Config{Only: []string{"scale", "run"}}
	for _, g := range Groups {
		if !all.wants(g) {
			t.Errorf("without Only, group %q does not run", g)
		}
		want := g == "scale" || g == "run" || g == "cold" || g == "warm" // scale's floors
		if only.wants(g) != want {
			t.Errorf("Only scale,run: group %q runs = %v, want %v", g, only.wants(g), want)
		}
	}
	if err := CheckGroups([]string{"cold", "warmth"}); err == nil {
		t.Error("an unknown group was accepted")
	}
}
