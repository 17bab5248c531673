package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"time"

	"icebox/internal/sandbox/linux/egresstest"
)

// Rows of the egress phase (Config.Egress): the cold start and
// environments-per-second rows again on a daemon with --egress nat, and a
// download through it.
const (
	RowColdStartEgress = "cold_start_egress"
	RowEnvRateEgress   = "env_create_rate_egress"
	RowDownloadEgress  = "download_egress"
)

// downloadBytes is the size of the download row's file.
const downloadBytes = 50 << 20

// measureEgress starts a second in-process daemon with --egress nat and a
// test host in a network namespace on 198.18.0.0/15 (no packet leaves the
// machine), and measures on it the cold start and environments-per-second
// rows, then a 50 MB download from the test host by a function next to
// the same download by the host itself.
func (r *run) measureEgress(ctx context.Context) (_ []Row, err error) {
	th, err := egresstest.Start()
	if err != nil {
		return nil, fmt.Errorf("test host: %w", err)
	}
	defer th.Close()
	t, err := startTarget(ctx, &r.cfg, filepath.Join(r.dir, "egress"), true)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, t.close()) }()
	if err := th.Route(t.d.EgressBridge()); err != nil {
		return nil, fmt.Errorf("route to the test host: %w", err)
	}
	plain := r.t
	r.t = t
	defer func() { r.t = plain }()

	r.progress("with --egress nat: cold starts: %d fresh functions", r.cfg.ColdStarts)
	cold, _, err := r.measureCold(ctx, r.cfg.ColdStarts)
	if err != nil {
		return nil, fmt.Errorf("cold start with egress: %w", err)
	}
	cold.ID, cold.Name = RowColdStartEgress, cold.Name+", --egress nat"
	r.progress("with --egress nat: environments per second: burst of %d", r.cfg.Burst)
	rate, err := r.measureEnvRate(ctx)
	if err != nil {
		return nil, fmt.Errorf("environment burst with egress: %w", err)
	}
	rate.ID, rate.Name = RowEnvRateEgress, rate.Name+", --egress nat"
	r.progress("with --egress nat: 50 MB downloads")
	dl, err := r.measureDownload(ctx, th)
	if err != nil {
		return nil, fmt.Errorf("download: %w", err)
	}
	return []Row{cold, rate, dl}, nil
}

// measureDownload times a function's 50 MB download from the test host
// (the invoke that makes it, sequential) and the host's own.
func (r *run) measureDownload(ctx context.Context, th *egresstest.Host) (Row, error) {
	const n = 5
	url := fmt.Sprintf("http://%s/bytes/%d", th.Addr, downloadBytes)
	row := Row{ID: RowDownloadEgress, Name: fmt.Sprintf("50 MB download from a test host by a function, --egress nat (n=%d)", n),
		Unit: UnitMicros, FloorName: "the same download by the host, net/http"}
	if len(r.cfg.SleepZip) == 0 {
		row.Skipped = "no slow function (build internal/bench/testdata/sleep)"
		return row, nil
	}
	name := r.t.prefix + "download"
	if err := r.t.create(ctx, name, r.cfg.SleepZip, 60*time.Second); err != nil {
		return row, err
	}
	ev, _ := json.Marshal(map[string]string{"fetch": url})
	if err := r.fetchOnce(ctx, name, ev); err != nil { // a cold start is not a download
		return row, err
	}
	var fn, floor samples
	for range n {
		d, err := timed(func() error { return r.fetchOnce(ctx, name, ev) })
		if err != nil {
			return row, err
		}
		fn = append(fn, d)
	}
	quiesce()
	client := &http.Client{Timeout: time.Minute}
	for range n {
		d, err := timed(func() error {
			resp, err := client.Get(url)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			got, err := io.Copy(io.Discard, resp.Body)
			if err == nil && got != downloadBytes {
				err = fmt.Errorf("host download: %d bytes, want %d", got, downloadBytes)
			}
			return err
		})
		if err != nil {
			return row, err
		}
		floor = append(floor, d)
	}
	row.Result, row.Floor = fn.stat(), floor.stat()
	mbps := func(us float64) float64 { return downloadBytes / (1 << 20) / (us / 1e6) }
	row.Note = fmt.Sprintf("p50 %.0f MB/s by the function, %.0f MB/s by the host", mbps(row.Result.P50), mbps(row.Floor.P50))
	return row, nil
}

// fetchOnce has the sleep function download what ev names and checks it
// got all of it.
func (r *run) fetchOnce(ctx context.Context, name string, ev []byte) error {
	out, err := r.t.invoke(ctx, name, ev)
	if err != nil {
		return err
	}
	var res struct {
		Bytes int64  `json:"bytes"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return err
	}
	if res.Error != "" || res.Bytes != downloadBytes {
		return fmt.Errorf("function download: %d bytes, %s", res.Bytes, res.Error)
	}
	return nil
}
