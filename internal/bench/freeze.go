package bench

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"icebox/internal/sandbox"
	sblinux "icebox/internal/sandbox/linux"
)

// measureFreezeThaw times Freeze and Thaw of a real sandbox whose runtime
// (the echo function) waits in /next, as an idle environment's does, next
// to the same writes on a bare cgroup holding an idle copy of the binary.
// The sandbox comes from a Manager of the bench's own (its own cgroup
// parent), so the platform's freezer code is measured without the pool.
func (r *run) measureFreezeThaw(ctx context.Context) (freeze, thaw Row, version int, err error) {
	freeze = Row{ID: RowFreeze, Name: "freeze (sandbox with an idle runtime)", Unit: UnitMicros}
	thaw = Row{ID: RowThaw, Name: "thaw (sandbox with an idle runtime)", Unit: UnitMicros}
	m, err := sblinux.NewManager(sblinux.Config{
		StateDir:     filepath.Join(r.dir, "sandbox"),
		CgroupParent: "icebox-bench/" + randomHex(6),
		Prebuilt:     -1,
	})
	if err != nil {
		return freeze, thaw, 0, err
	}
	defer m.Close()
	version = m.CgroupVersion()
	sb, err := m.Create(ctx, sandbox.Spec{
		ID: randomHex(6), CodeDir: r.echoDir, MemoryMB: 128, TmpMB: 512,
		Args: []string{"/var/task/bootstrap"},
		Env:  []string{"AWS_LAMBDA_RUNTIME_API=" + sblinux.RuntimeAPIAddr, "_HANDLER=bootstrap"},
	})
	if err != nil {
		return freeze, thaw, version, err
	}
	defer sb.Destroy()
	stub := serveRuntimeAPI(sb.Listener(), true)
	defer stub.stop()
	go io.Copy(io.Discard, sb.Output())
	if err := sb.Start(); err != nil {
		return freeze, thaw, version, err
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := stub.waitNext(wctx, 1); err != nil {
		return freeze, thaw, version, err
	}

	idle, err := startIdle(ctx, r.echoBin, 1)
	if err != nil {
		return freeze, thaw, version, fmt.Errorf("idle process: %w", err)
	}
	defer idle.stop()
	raw, err := newRawFreezer(version, idle.pids()[0])
	if err != nil {
		return freeze, thaw, version, err
	}
	defer func() {
		idle.stop()
		raw.remove()
	}()

	// Alternate in blocks so both see the same machine.
	var fz, th, rfz, rth samples
	cycle := func(fr, tw func() error, fs, ts *samples) error {
		d, err := timed(fr)
		if err != nil {
			return fmt.Errorf("freeze: %w", err)
		}
		*fs = append(*fs, d)
		if d, err = timed(tw); err != nil {
			return fmt.Errorf("thaw: %w", err)
		}
		*ts = append(*ts, d)
		return nil
	}
	const block = 100
	for done := 0; done < r.cfg.FreezeCycles; done += block {
		for range min(block, r.cfg.FreezeCycles-done) {
			if err := cycle(sb.Freeze, sb.Thaw, &fz, &th); err != nil {
				return freeze, thaw, version, err
			}
		}
		for range min(block, r.cfg.FreezeCycles-done) {
			if err := cycle(raw.freeze, raw.thaw, &rfz, &rth); err != nil {
				return freeze, thaw, version, err
			}
		}
	}
	floorName := fmt.Sprintf("raw cgroup v%d freezer write (bare group, one idle process)", version)
	freeze.Result, freeze.FloorName, freeze.Floor = fz.stat(), floorName, rfz.stat()
	thaw.Result, thaw.FloorName, thaw.Floor = th.stat(), floorName, rth.stat()
	return freeze, thaw, version, nil
}
