package bench

import (
	"errors"
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"slices"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Plot file names WritePlots writes.
const (
	PlotLatency = "bench-latency-concurrency.png"
	PlotCold    = "bench-cold-start-environments.png"
)

// WritePlots draws the report's curves as PNGs into dir: invoke and echo
// latency (p50, p99) against concurrency, and cold start against the
// environments alive when it happened. It returns the files written.
func (r *Report) WritePlots(dir string) ([]string, error) {
	if len(r.Concurrency) == 0 || len(r.ColdByAlive) == 0 {
		return nil, errors.New("bench: nothing to plot (no throughput or cold start points)")
	}
	lat, err := r.latencyPlot()
	if err != nil {
		return nil, err
	}
	cold, err := r.coldPlot()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var files []string
	for name, p := range map[string]*plot.Plot{PlotLatency: lat, PlotCold: cold} {
		f := filepath.Join(dir, name)
		if err := p.Save(16*vg.Centimeter, 10*vg.Centimeter, f); err != nil {
			return files, fmt.Errorf("plot %s: %w", name, err)
		}
		files = append(files, f)
	}
	slices.Sort(files)
	return files, nil
}

var (
	blue  = color.RGBA{R: 31, G: 119, B: 180, A: 255}
	gray  = color.RGBA{R: 127, G: 127, B: 127, A: 255}
	faint = color.NRGBA{R: 31, G: 119, B: 180, A: 110}
)

func (r *Report) latencyPlot() (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "icebox warm invoke latency vs concurrency (one function)"
	p.X.Label.Text = "concurrent callers"
	p.Y.Label.Text = "latency (ms, log scale)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Legend.Top, p.Legend.Left = true, true
	p.Legend.YOffs = -vg.Points(4)
	series := []struct {
		name  string
		value func(ConcurrencyPoint) float64
		color color.Color
		dash  bool
	}{
		{"invoke p99", func(c ConcurrencyPoint) float64 { return c.Invoke.P99 }, blue, true},
		{"invoke p50", func(c ConcurrencyPoint) float64 { return c.Invoke.P50 }, blue, false},
		{"SDK to a trivial server p99 (floor)", func(c ConcurrencyPoint) float64 { return c.Echo.P99 }, gray, true},
		{"SDK to a trivial server p50 (floor)", func(c ConcurrencyPoint) float64 { return c.Echo.P50 }, gray, false},
	}
	for _, s := range series {
		xys := make(plotter.XYs, len(r.Concurrency))
		for i, c := range r.Concurrency {
			// Log scale: a latency below 1 µs cannot happen, clamp to it.
			xys[i] = plotter.XY{X: float64(c.Concurrency), Y: max(s.value(c), 1) / 1000}
		}
		line, points, err := plotter.NewLinePoints(xys)
		if err != nil {
			return nil, err
		}
		line.Color, points.Color = s.color, s.color
		if s.dash {
			line.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
			points.Shape = draw.TriangleGlyph{}
		}
		p.Add(line, points)
		p.Legend.Add(s.name, line, points)
	}
	return p, nil
}

func (r *Report) coldPlot() (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "icebox cold start vs environments alive"
	p.X.Label.Text = "environments alive (idle, frozen) before the call"
	p.Y.Label.Text = "cold start (ms)"
	p.Legend.Top = true
	pts := slices.Clone(r.ColdByAlive)
	slices.SortFunc(pts, func(a, b ColdPoint) int { return a.Alive - b.Alive })
	xys := make(plotter.XYs, len(pts))
	for i, c := range pts {
		xys[i] = plotter.XY{X: float64(c.Alive), Y: ms(c.Latency)}
	}
	sc, err := plotter.NewScatter(xys)
	if err != nil {
		return nil, err
	}
	sc.GlyphStyle.Color = faint
	sc.GlyphStyle.Radius = vg.Points(1.5)
	sc.GlyphStyle.Shape = draw.CircleGlyph{}
	p.Add(sc)
	p.Legend.Add("one cold start", sc)
	// A running median over windows of about 5% of the points.
	w := max(len(pts)/20, 5)
	var med plotter.XYs
	for i := 0; i+w <= len(pts); i += max(w/2, 1) {
		win := make([]float64, w)
		for j := range win {
			win[j] = ms(pts[i+j].Latency)
		}
		slices.Sort(win)
		med = append(med, plotter.XY{X: float64(pts[i+w/2].Alive), Y: win[w/2]})
	}
	if len(med) > 1 {
		line, err := plotter.NewLine(med)
		if err != nil {
			return nil, err
		}
		line.Color = color.Black
		line.Width = vg.Points(1.5)
		p.Add(line)
		p.Legend.Add(fmt.Sprintf("median of %d", w), line)
	}
	return p, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
