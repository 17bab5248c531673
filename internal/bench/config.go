// Package bench measures icebox against the machine's floors: every number it
// reports (cold start, warm invoke, throughput, environments created per
// second, freeze/thaw, memory per idle environment) is measured in the same
// run next to the cheapest thing the kernel and net/http can do for the same
// job, so a reader can tell the platform's cost from the machine's.
//
// It drives the Lambda API with the real aws-sdk-go-v2 client, against a
// daemon it starts in-process (the default) or one named by Config.Endpoint.
package bench

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Config says what to measure and how much. Zero values take the defaults
// documented on each field (those of Default); Full and Smoke are presets.
type Config struct {
	// Endpoint, when set, is a running icebox to measure ("http://host:port");
	// otherwise the bench starts a daemon in this process on a temporary
	// data dir and a free loopback port. Memory per environment can only be
	// measured in-process (it reads the sandboxes' /proc entries).
	Endpoint string
	// AccessKeyID, SecretAccessKey and SessionToken sign requests to
	// Endpoint. In-process, the bench generates root credentials of its own.
	AccessKeyID, SecretAccessKey, SessionToken string
	// Region of the endpoint. Default us-east-1.
	Region string

	// EchoZip is the deployment package (a provided.al2023 bootstrap) of an
	// echo function: it must return its event. Required.
	EchoZip []byte
	// SleepZip is a function that sleeps for the event's "sleepMs" and
	// returns {"env": id fixed at init, "startNs": handler start}; see
	// testdata/sleep. Without it the environments-per-second row is skipped.
	SleepZip []byte
	// ExtensionLayer is a layer zip with one no-op external extension
	// (ExtensionLayer of testdata/noopext). Without it the warm invoke row
	// with an extension is skipped.
	ExtensionLayer []byte

	// ColdStarts is how many fresh functions are timed. Default 30.
	ColdStarts int
	// WarmCalls is how many sequential warm invokes are timed. Default 2000.
	WarmCalls int
	// Concurrency lists the levels of the throughput rows. Default 1, 8, 32, 64.
	Concurrency []int
	// ThroughputTime is how long each throughput level runs. Default 2s.
	ThroughputTime time.Duration
	// Burst is how many concurrent calls the environments-per-second row
	// makes, each held long enough to need its own environment. Default 100.
	Burst int
	// BurstSleep is how long each burst call holds its environment. Default 3s.
	BurstSleep time.Duration
	// IdleEnvs is how many idle frozen environments the memory row keeps.
	// Default 100 (Full: 1000).
	IdleEnvs int
	// FreezeCycles is how many freeze/thaw pairs are timed. Default 1000.
	FreezeCycles int

	// IceboxBin is the icebox binary whose `icebox run` the single-function
	// rows measure. Without it those rows are skipped.
	IceboxBin string
	// PeerRIE is the path of AWS's runtime interface emulator
	// (aws-lambda-rie), measured on the same echo bootstrap next to
	// `icebox run`. Without it its rows are left out.
	PeerRIE string
	// SingleConcurrency lists the callers of the single-function rows.
	// Default 1, 4, 32.
	SingleConcurrency []int
	// ScaleFunctions lists the catalog sizes at which cold start and warm
	// invoke are measured again, on a fresh daemon; the idle environments
	// of the memory row are then measured the same way. Default 1, 100
	// (Full: 1, 100, 1000).
	ScaleFunctions []int
	// ScaleColdStarts is how many cold starts each scale row times.
	// Default 10.
	ScaleColdStarts int
	// ScaleWarmCalls is how many warm invokes each scale row times.
	// Default 1000.
	ScaleWarmCalls int

	// Egress adds the egress rows (in-process only): cold start and
	// environments per second again on a daemon with --egress nat, and a
	// 50 MB download from a test host in a network namespace next to the
	// host's own. Default off.
	Egress bool

	// Cluster runs the cluster rows only (RunCluster): sync invokes through
	// one node and through ClusterNodes nodes on one external JetStream,
	// all in-process. Default off.
	Cluster bool

	// Only, when not empty, names the row groups to run (Groups lists
	// them); the others are skipped. A row whose floor is another group's
	// row (the scale rows) runs that group too. Default: every group.
	Only []string

	// Progress, when set, receives one line per phase.
	Progress io.Writer
	// Log receives the in-process daemon's log. Default: discarded.
	Log *slog.Logger
}

// Groups are the row groups Config.Only can name, in the order they run.
var Groups = []string{"cold", "warm", "extension", "url", "load", "envs", "freeze", "egress", "run", "scale", "memory"}

// CheckGroups refuses a name that is not one of Groups.
func CheckGroups(names []string) error {
	for _, g := range names {
		if !slices.Contains(Groups, g) {
			return fmt.Errorf("bench: unknown row group %q (groups: %s)", g, strings.Join(Groups, ", "))
		}
	}
	return nil
}

// wants reports whether group g runs.
func (c *Config) wants(g string) bool {
	return len(c.Only) == 0 || slices.Contains(c.Only, g) ||
		// The scale rows are judged against the cold and warm rows.
		(g == "cold" || g == "warm") && slices.Contains(c.Only, "scale")
}

// Default is the configuration `icebox-bench` runs without --full: every row,
// with 100 idle environments, in under two minutes on a 2-vCPU machine.
func Default() Config {
	return Config{
		ColdStarts:     30,
		WarmCalls:      2000,
		Concurrency:    []int{1, 8, 32, 64},
		ThroughputTime: 2 * time.Second,
		Burst:          100,
		BurstSleep:     3 * time.Second,
		IdleEnvs:       100,
		FreezeCycles:   1000,

		SingleConcurrency: []int{1, 4, 32},
		ScaleFunctions:    []int{1, 100},
		ScaleColdStarts:   10,
		ScaleWarmCalls:    1000,
	}
}

// Full is Default with the 1,000 idle environments and more samples.
func Full() Config {
	c := Default()
	c.ColdStarts = 100
	c.WarmCalls = 5000
	c.ThroughputTime = 5 * time.Second
	c.IdleEnvs = 1000
	c.FreezeCycles = 5000
	c.ScaleFunctions = []int{1, 100, 1000}
	c.ScaleColdStarts = 20
	c.ScaleWarmCalls = 2000
	return c
}

// Smoke is a run of a few seconds for CI: enough samples for a median, not
// for a tail.
func Smoke() Config {
	return Config{
		ColdStarts:     2,
		WarmCalls:      200,
		Concurrency:    []int{1, 8},
		ThroughputTime: 300 * time.Millisecond,
		Burst:          8,
		BurstSleep:     time.Second,
		IdleEnvs:       2,
		FreezeCycles:   200,

		SingleConcurrency: []int{1, 4},
		ScaleFunctions:    []int{1, 3},
		ScaleColdStarts:   2,
		ScaleWarmCalls:    100,
	}
}

func (c *Config) setDefaults() {
	d := Default()
	if c.Region == "" {
		c.Region = "us-east-1"
	}
	if c.ColdStarts == 0 {
		c.ColdStarts = d.ColdStarts
	}
	if c.WarmCalls == 0 {
		c.WarmCalls = d.WarmCalls
	}
	if len(c.Concurrency) == 0 {
		c.Concurrency = d.Concurrency
	}
	if c.ThroughputTime == 0 {
		c.ThroughputTime = d.ThroughputTime
	}
	if c.Burst == 0 {
		c.Burst = d.Burst
	}
	if c.BurstSleep == 0 {
		c.BurstSleep = d.BurstSleep
	}
	if c.IdleEnvs == 0 {
		c.IdleEnvs = d.IdleEnvs
	}
	if c.FreezeCycles == 0 {
		c.FreezeCycles = d.FreezeCycles
	}
	if len(c.SingleConcurrency) == 0 {
		c.SingleConcurrency = d.SingleConcurrency
	}
	if len(c.ScaleFunctions) == 0 {
		c.ScaleFunctions = d.ScaleFunctions
	}
	if c.ScaleColdStarts == 0 {
		c.ScaleColdStarts = d.ScaleColdStarts
	}
	if c.ScaleWarmCalls == 0 {
		c.ScaleWarmCalls = d.ScaleWarmCalls
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	if c.Log == nil {
		c.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
}

// Validate checks the configuration (after defaults are applied).
func (c *Config) Validate() error {
	if len(c.EchoZip) == 0 {
		return errors.New("bench: the echo function's zip is required")
	}
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("bench: endpoint %q must be an http(s) URL", c.Endpoint)
		}
		if c.AccessKeyID == "" || c.SecretAccessKey == "" {
			return errors.New("bench: an endpoint needs credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)")
		}
	}
	if err := CheckGroups(c.Only); err != nil {
		return err
	}
	if c.Cluster && c.Endpoint != "" {
		return errors.New("bench: the cluster rows start their own nodes (no --endpoint)")
	}
	if c.Egress && c.Endpoint != "" {
		return errors.New("bench: the egress rows need the in-process server (no --endpoint)")
	}
	switch {
	case c.ColdStarts < 2 || c.WarmCalls < 2 || c.FreezeCycles < 2:
		return errors.New("bench: cold starts, warm calls and freeze cycles need at least 2 samples each")
	case c.Burst < 1 || c.IdleEnvs < 1:
		return errors.New("bench: burst and idle environments must be positive")
	case c.ThroughputTime < 10*time.Millisecond:
		return fmt.Errorf("bench: throughput time %v is too short to measure", c.ThroughputTime)
	case c.BurstSleep < 100*time.Millisecond:
		return fmt.Errorf("bench: burst sleep %v is too short to hold environments", c.BurstSleep)
	}
	for _, n := range append(slices.Clone(c.Concurrency), c.SingleConcurrency...) {
		if n < 1 || n > 1024 {
			return fmt.Errorf("bench: concurrency %d must be in 1..1024", n)
		}
	}
	for _, n := range c.ScaleFunctions {
		if n < 1 || n > 100000 {
			return fmt.Errorf("bench: scale level %d must be in 1..100000 functions", n)
		}
	}
	if c.ScaleColdStarts < 2 || c.ScaleWarmCalls < 2 {
		return errors.New("bench: scale rows need at least 2 samples each")
	}
	return nil
}
