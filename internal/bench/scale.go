package bench

import (
	"context"
	"fmt"
	"time"
)

// The scale rows: cold start and warm invoke again with more functions
// deployed and with many idle environments alive, on a daemon of their own
// started fresh, so the catalog's size is the only thing that changed. The
// catalog's filler functions are the memory row's: they are invoked there.

// fillCatalog creates filler functions until there are n.
func (r *run) fillCatalog(ctx context.Context, n int) error {
	for r.fillers < n {
		if err := r.t.create(ctx, fillerName(r.t.prefix, r.fillers), r.cfg.EchoZip, 3*time.Second); err != nil {
			return err
		}
		r.fillers++
		if r.fillers%200 == 0 {
			r.progress("  %d functions deployed", r.fillers)
		}
	}
	return nil
}

func fillerName(prefix string, i int) string { return fmt.Sprintf("%sidle-%d", prefix, i) }

// coldSamples times the first invoke of k fresh functions, each created
// just before and deleted just after (untimed), so the catalog keeps its
// size.
func (r *run) coldSamples(ctx context.Context, k int) (samples, error) {
	var s samples
	for range k {
		r.scaleSeq++
		name := fmt.Sprintf("%sscale-cold-%d", r.t.prefix, r.scaleSeq)
		if err := r.t.create(ctx, name, r.cfg.EchoZip, 3*time.Second); err != nil {
			return nil, err
		}
		d, err := timed(func() error { _, err := r.t.invoke(ctx, name, payload); return err })
		if err != nil {
			return nil, err
		}
		s = append(s, d)
		if err := r.t.deleteFunction(ctx, name); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// warmSamples times n sequential invokes of fn after one untimed.
func (r *run) warmSamples(ctx context.Context, fn string, n int) (samples, error) {
	if _, err := r.t.invoke(ctx, fn, payload); err != nil {
		return nil, err
	}
	var s samples
	for range n {
		d, err := timed(func() error { _, err := r.t.invoke(ctx, fn, payload); return err })
		if err != nil {
			return nil, err
		}
		s = append(s, d)
	}
	return s, nil
}

// scaleBase is what the scale rows compare with: the first level's rows.
type scaleBase struct {
	cold, warm Row
	warmFn     string
	// coldName and warmName say how many functions the first level had.
	coldName, warmName string
}

// measureScale measures each level of cfg.ScaleFunctions: at level n the
// timed cold start's function is the n-th deployed, and so is the warm one.
// coldFloor and warmFloor are the main rows', the floors of the first level.
func (r *run) measureScale(ctx context.Context, coldFloor, warmFloor Row) ([]Row, scaleBase, error) {
	var rows []Row
	var base scaleBase
	base.warmFn = r.t.prefix + "scale-warm"
	warmMade := 0
	for i, n := range r.cfg.ScaleFunctions {
		r.progress("scale: %s deployed", plural(n, "function"))
		if err := r.fillCatalog(ctx, max(0, n-1-warmMade)); err != nil {
			return nil, base, err
		}
		settle() // what creating the catalog left behind is not timed
		deployed := len(r.t.created) + 1
		cold, err := r.coldSamples(ctx, r.cfg.ScaleColdStarts)
		if err != nil {
			return nil, base, fmt.Errorf("scale cold start: %w", err)
		}
		if warmMade == 0 {
			if err := r.t.create(ctx, base.warmFn, r.cfg.EchoZip, 3*time.Second); err != nil {
				return nil, base, err
			}
			warmMade = 1
		}
		if err := r.fillCatalog(ctx, max(0, n-1)); err != nil {
			return nil, base, err
		}
		warm, err := r.warmSamples(ctx, base.warmFn, r.cfg.ScaleWarmCalls)
		if err != nil {
			return nil, base, fmt.Errorf("scale warm invoke: %w", err)
		}
		coldRow := Row{ID: ScaleColdRow(n), Name: fmt.Sprintf("cold start, %s deployed (n=%d)", plural(deployed, "function"), len(cold)),
			Unit: UnitMicros, Result: cold.stat()}
		warmRow := Row{ID: ScaleWarmRow(n), Name: fmt.Sprintf("warm invoke, %s deployed (n=%d)", plural(len(r.t.created), "function"), len(warm)),
			Unit: UnitMicros, Result: warm.stat()}
		if i == 0 {
			coldRow.FloorName, coldRow.Floor = coldFloor.FloorName, coldFloor.Floor
			warmRow.FloorName, warmRow.Floor = warmFloor.FloorName, warmFloor.Floor
			base.cold, base.warm = coldRow, warmRow
			base.coldName = "the same, " + plural(deployed, "function") + " deployed (row above)"
			base.warmName = "the same, " + plural(len(r.t.created), "function") + " deployed (row above)"
		} else {
			coldRow.FloorName, coldRow.Floor = base.coldName, base.cold.Result
			warmRow.FloorName, warmRow.Floor = base.warmName, base.warm.Result
		}
		rows = append(rows, coldRow, warmRow)
	}
	return rows, base, nil
}

// measureIdleAlive times cold starts and warm invokes with the memory row's
// idle environments alive, against the first scale level.
func (r *run) measureIdleAlive(ctx context.Context, base scaleBase) ([]Row, error) {
	n := r.cfg.IdleEnvs
	r.progress("scale: %d idle environments alive", n)
	alive, err := r.t.alive(ctx)
	if err != nil {
		return nil, err
	}
	cold, err := r.coldSamples(ctx, r.cfg.ScaleColdStarts)
	if err != nil {
		return nil, fmt.Errorf("cold start with idle environments: %w", err)
	}
	warm, err := r.warmSamples(ctx, base.warmFn, r.cfg.ScaleWarmCalls)
	if err != nil {
		return nil, fmt.Errorf("warm invoke with idle environments: %w", err)
	}
	return []Row{
		{ID: IdleColdRow(n), Name: fmt.Sprintf("cold start, %d environments alive (n=%d)", alive, len(cold)), Unit: UnitMicros,
			Result: cold.stat(), FloorName: base.coldName, Floor: base.cold.Result},
		{ID: IdleWarmRow(n), Name: fmt.Sprintf("warm invoke, %d environments alive (n=%d)", alive, len(warm)), Unit: UnitMicros,
			Result: warm.stat(), FloorName: base.warmName, Floor: base.warm.Result},
	}, nil
}
