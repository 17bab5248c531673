package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Row ids, in the order the table shows them. Throughput rows are
// "throughput_c" + the concurrency.
const (
	RowColdStart    = "cold_start"
	RowWarmInvoke   = "warm_invoke"
	RowWarmOver     = "warm_invoke_over_floor"
	RowWarmURL      = "warm_url"
	RowWarmExt      = "warm_invoke_extension"
	RowEnvRate      = "env_create_rate"
	RowThaw         = "thaw"
	RowFreeze       = "freeze"
	RowMemoryPerEnv = "memory_per_env"
)

// ThroughputRow is the id of the throughput row at concurrency c.
func ThroughputRow(c int) string { return fmt.Sprintf("throughput_c%d", c) }

// Units of a Stat.
const (
	UnitMicros = "µs"         // latency rows: P50 and P99
	UnitPerSec = "per second" // rate rows: Value
	UnitMiB    = "MiB"        // memory rows: Value
	// UnitLoad rows are callers in a loop: Value calls per second, P50 and
	// P99 the latency (µs) of the calls that succeeded, Failed the others.
	UnitLoad = "calls per second"
	// UnitCPU rows are CPU time per call (µs) in Value, split into Daemon
	// and Runtime where they could be told apart.
	UnitCPU = "µs CPU per call"
)

// Row ids of the rounds that compare icebox with the single-function peers
// and with itself at scale.
const (
	RowCPUInvoke = "cpu_per_invoke" // in-process, SDK callers at concurrency 32
	// RowCPURuntime is RowCPUInvoke's runtime share next to the same
	// runtime's own CPU per call against a trivial Runtime API.
	RowCPURuntime = "cpu_per_invoke_runtime"
	RowCPURun     = "cpu_per_invoke_icebox_run" // icebox run, net/http callers at concurrency 32
)

// CPURunRow is the id of the CPU row of `icebox run` with c callers
// (RowCPURun at 32).
func CPURunRow(c int) string {
	if c == 32 {
		return RowCPURun
	}
	return fmt.Sprintf("%s_c%d", RowCPURun, c)
}

// IceboxRunRow is the id of the `icebox run` row with c callers.
func IceboxRunRow(c int) string { return fmt.Sprintf("icebox_run_c%d", c) }

// PeerRIERow is the id of the runtime interface emulator's row with c callers.
func PeerRIERow(c int) string { return fmt.Sprintf("peer_rie_c%d", c) }

// ScaleColdRow and ScaleWarmRow are the ids of the cold start and warm
// invoke rows with n functions deployed; IdleColdRow and IdleWarmRow with
// n idle environments alive.
func ScaleColdRow(n int) string { return fmt.Sprintf("cold_start_functions_%d", n) }
func ScaleWarmRow(n int) string { return fmt.Sprintf("warm_invoke_functions_%d", n) }
func IdleColdRow(n int) string  { return fmt.Sprintf("cold_start_idle_%d", n) }
func IdleWarmRow(n int) string  { return fmt.Sprintf("warm_invoke_idle_%d", n) }

// Stat is one measurement: P50/P99 for latencies (µs), Value for rates and
// sizes.
type Stat struct {
	P50     float64 `json:"p50,omitempty"`
	P99     float64 `json:"p99,omitempty"`
	Value   float64 `json:"value,omitempty"`
	Samples int     `json:"samples"`
	// Failed counts calls that did not succeed (UnitLoad rows).
	Failed int `json:"failed,omitempty"`
	// Daemon and Runtime split a UnitCPU Value (µs per call).
	Daemon  float64 `json:"daemonUs,omitempty"`
	Runtime float64 `json:"runtimeUs,omitempty"`
}

// Row is one line of the table: what icebox did next to the floor measured
// in the same run.
type Row struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Unit      string `json:"unit"`
	Result    Stat   `json:"result"`
	FloorName string `json:"floorName"`
	Floor     Stat   `json:"floor"`
	// Target is the goal in words; Met is nil for rows without one.
	Target string `json:"target,omitempty"`
	Met    *bool  `json:"met,omitempty"`
	// Note adds what a reader needs to trust the number (errors, counts).
	Note string `json:"note,omitempty"`
	// Skipped says why the row was not measured; Result is then empty.
	Skipped string `json:"skipped,omitempty"`
}

// Ratio is the result over its floor (p50 for latencies, the floor over the
// result for rates, so that bigger is always worse). 0 when unmeasured.
func (r Row) Ratio() float64 {
	switch {
	case r.Skipped != "":
		return 0
	case r.Unit == UnitPerSec || r.Unit == UnitLoad:
		if r.Result.Value == 0 {
			return math.Inf(1)
		}
		return r.Floor.Value / r.Result.Value
	case r.Unit == UnitMiB || r.Unit == UnitCPU:
		if r.Floor.Value == 0 {
			return 0
		}
		return r.Result.Value / r.Floor.Value
	default:
		if r.Floor.P50 == 0 {
			return 0
		}
		return r.Result.P50 / r.Floor.P50
	}
}

// Machine describes where the run happened.
type Machine struct {
	CPU           string `json:"cpu"`
	CPUs          int    `json:"cpus"`
	MemoryMB      int    `json:"memoryMB"`
	Kernel        string `json:"kernel"`
	CgroupVersion int    `json:"cgroupVersion,omitempty"`
	Go            string `json:"go"`
}

// Report is the outcome of a run.
type Report struct {
	Machine  Machine       `json:"machine"`
	Mode     string        `json:"mode"` // "in-process" or "endpoint"
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"durationNs"`
	Rows     []Row         `json:"rows"`

	// Curves feed the plots.
	Concurrency []ConcurrencyPoint `json:"concurrency,omitempty"`
	ColdByAlive []ColdPoint        `json:"-"`
}

// ConcurrencyPoint is invoke and echo latency at one concurrency.
type ConcurrencyPoint struct {
	Concurrency int  `json:"concurrency"`
	Invoke      Stat `json:"invoke"`
	Echo        Stat `json:"echo"`
}

// ColdPoint is one cold start and how many environments were alive before it.
type ColdPoint struct {
	Alive   int
	Latency time.Duration
}

// Row returns the row with id, if present.
func (r *Report) Row(id string) (Row, bool) {
	i := slices.IndexFunc(r.Rows, func(row Row) bool { return row.ID == id })
	if i < 0 {
		return Row{}, false
	}
	return r.Rows[i], true
}

// judge fills Target and Met from the performance issues' goals. The SDK
// rows are judged against the same client calling a trivial in-process
// server (their floor), the single-function rows against the bare echo.
func judge(r *Row) {
	met := func(ok bool) { r.Met = &ok }
	switch {
	case r.ID == RowColdStart:
		r.Target = "p50 ≤ 5 ms, p99 ≤ 15 ms"
		met(r.Result.P50 <= 5000 && r.Result.P99 <= 15000)
	case r.ID == RowWarmInvoke:
		r.Target = "p50 ≤ floor + 150 µs"
		met(r.Result.P50 <= r.Floor.P50+150)
	case r.ID == ThroughputRow(32):
		r.Target = "≥ ½ floor's calls/s, p99 ≤ 3× floor's"
		met(r.Result.Value >= r.Floor.Value/2 && r.Result.P99 <= 3*r.Floor.P99 && r.Result.Failed == 0)
	case r.ID == IceboxRunRow(32):
		r.Target = "≥ 15,000/s, p99 ≤ 3× floor's"
		met(r.Result.Value >= 15000 && r.Result.P99 <= 3*r.Floor.P99 && r.Result.Failed == 0)
	case r.ID == RowCPURun:
		r.Target = "daemon + runtime ≤ 130 µs"
		met(r.Result.Value <= 130)
	case r.ID == RowEnvRate:
		r.Target = "≥ 300/s"
		met(r.Result.Value >= 300)
	case r.ID == RowThaw:
		r.Target = "p99 ≤ 200 µs"
		met(r.Result.P99 <= 200)
	case r.ID == RowMemoryPerEnv && r.Result.Samples >= 1000:
		r.Target = "≤ 1 MiB over the idle process"
		met(r.Result.Value-r.Floor.Value <= 1)
	case r.ID == RowMemoryPerEnv:
		r.Target = "≤ 2 MiB over the idle process"
		met(r.Result.Value-r.Floor.Value <= 2)
	}
	if r.Skipped != "" {
		r.Met = nil
	}
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable writes the report as one Markdown table (readable in a
// terminal, pasteable into docs/benchmarks.md), preceded by the machine.
func (r *Report) WriteTable(w io.Writer) error {
	m := r.Machine
	cg := ""
	if m.CgroupVersion != 0 {
		cg = fmt.Sprintf(", cgroup v%d", m.CgroupVersion)
	}
	fmt.Fprintf(w, "icebox-bench (%s): %d × %s, %d MB RAM, Linux %s%s, %s; %s\n\n",
		r.Mode, m.CPUs, m.CPU, m.MemoryMB, m.Kernel, cg, m.Go, r.Duration.Round(time.Second))
	rows := [][]string{{"row", "icebox", "floor (same run)", "floor", "× floor", "target", "met"}}
	for _, row := range r.Rows {
		res, floor, ratio := "skipped: "+row.Skipped, "", ""
		if row.Skipped == "" {
			res = formatStat(row.Unit, row.Result)
			floor = formatStat(row.Unit, row.Floor)
			ratio = fmt.Sprintf("%.1f×", row.Ratio())
		}
		if row.Note != "" {
			res += " (" + row.Note + ")"
		}
		verdict := ""
		if row.Met != nil {
			verdict = map[bool]string{true: "met", false: "not met"}[*row.Met]
		}
		rows = append(rows, []string{row.Name, res, row.FloorName, floor, ratio, row.Target, verdict})
	}
	width := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, cell := range row {
			width[i] = max(width[i], len([]rune(cell)))
		}
	}
	line := func(cells []string) {
		var b strings.Builder
		b.WriteString("|")
		for i, cell := range cells {
			b.WriteString(" " + cell + strings.Repeat(" ", width[i]-len([]rune(cell))) + " |")
		}
		fmt.Fprintln(w, b.String())
	}
	line(rows[0])
	sep := make([]string, len(width))
	for i, n := range width {
		sep[i] = strings.Repeat("-", n)
	}
	line(sep)
	for _, row := range rows[1:] {
		line(row)
	}
	_, err := fmt.Fprintln(w)
	return err
}

func formatStat(unit string, s Stat) string {
	switch unit {
	case UnitPerSec:
		return formatCount(s.Value) + "/s"
	case UnitMiB:
		return fmt.Sprintf("%.2f MiB", s.Value)
	case UnitLoad:
		out := formatCount(s.Value) + "/s, p50 " + formatMicros(s.P50) + ", p99 " + formatMicros(s.P99)
		if s.Failed > 0 {
			out += fmt.Sprintf(", %s of %s calls failed", formatCount(float64(s.Failed)), formatCount(float64(s.Failed+s.Samples)))
		}
		return out
	case UnitCPU:
		if s.Daemon == 0 && s.Runtime == 0 {
			return fmt.Sprintf("%.0f µs", s.Value)
		}
		return fmt.Sprintf("%.0f µs (daemon %.0f + runtime %.0f)", s.Value, s.Daemon, s.Runtime)
	default:
		return "p50 " + formatMicros(s.P50) + ", p99 " + formatMicros(s.P99)
	}
}

func formatMicros(us float64) string {
	switch {
	case us >= 10000:
		return fmt.Sprintf("%.1f ms", us/1000)
	case us >= 1000:
		return fmt.Sprintf("%.2f ms", us/1000)
	default:
		return fmt.Sprintf("%.0f µs", us)
	}
}

// formatCount writes n with thousands separators.
func formatCount(n float64) string {
	s := fmt.Sprintf("%.0f", n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func machine() Machine {
	return Machine{CPU: cpuModel(), CPUs: runtime.NumCPU(), MemoryMB: memTotalMB(), Kernel: kernelRelease(), Go: runtime.Version()}
}

// plural is "1 caller", "2 callers".
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
