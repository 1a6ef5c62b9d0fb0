// Package scaleplot draws the cost curves of `node scale --curve` (docs/SCALE.md)
// into a PNG with gonum/plot. It is apart from internal/scale so that the
// node binary does not carry gonum/plot and its fonts (8 MB of the binary,
// 5 MiB of every node process's RSS): cmd/scaleplot draws from the
// curve's JSON.
package scaleplot

import (
	"fmt"
	"image/color"
	"os"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/relay-dev/relay/internal/scale"
)

// panel is one chart of the plot: a value of a report against N.
type panel struct {
	title, y string
	series   []series
}

// series is one line of a panel, drawn for each mode.
type series struct {
	name  string
	value func(r *scale.Report) float64
	dash  bool
}

var modeColors = map[string]color.Color{
	scale.ModeDirect:  color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	scale.ModeProxied: color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
}

// panels are the charts of Plot: connections, memory and latency.
func panels() []panel {
	conns := func(r *scale.Report) float64 { z, _ := scale.Connections(r.End); return float64(z) }
	redis := func(r *scale.Report) float64 { _, c := scale.Connections(r.End); return float64(c) }
	rss := func(r *scale.Report) float64 {
		var t int64
		for _, u := range r.End {
			t += u.RSS
		}
		return float64(t) / (1 << 20)
	}
	per := func(r *scale.Report) float64 { _, p := scale.ComputeRSS(r.End); return float64(p) / (1 << 20) }
	lat := func(get func(r *scale.Report) float64) func(r *scale.Report) float64 { return get }
	return []panel{
		{title: "TCP connections", y: "connections", series: []series{
			{name: "ZeroMQ", value: conns}, {name: "to Redis", value: redis, dash: true}}},
		{title: "Memory (RSS)", y: "MiB", series: []series{
			{name: "all processes", value: rss}, {name: "per compute node ×100", value: func(r *scale.Report) float64 { return 100 * per(r) }, dash: true}}},
		{title: "Call latency", y: "ms", series: []series{
			{name: "compute→conductor p50", value: lat(func(r *scale.Report) float64 { return r.ComputeCalls.P50.Seconds() * 1000 })},
			{name: "compute→conductor p99", value: lat(func(r *scale.Report) float64 { return r.ComputeCalls.P99.Seconds() * 1000 }), dash: true}}},
		{title: "Fanout, storm", y: "s", series: []series{
			{name: "fanout last receiver p50", value: func(r *scale.Report) float64 { return r.Fanouts.LastP50.Seconds() }},
			{name: "storm: all answer a call", value: func(r *scale.Report) float64 { return r.Storm.Reachable.Seconds() }, dash: true}}},
	}
}

// Plot draws connections, memory, latency and the storm against N (log
// scales), one line per mode and measure, into a PNG file at path.
func Plot(reps []*scale.Report, path string) error {
	if len(reps) == 0 {
		return fmt.Errorf("scaleplot: no runs")
	}
	ps := panels()
	plots := make([][]*plot.Plot, 2)
	for i, pn := range ps {
		p := plot.New()
		p.Title.Text = pn.title
		p.X.Label.Text = "compute nodes (N)"
		p.Y.Label.Text = pn.y
		p.X.Scale, p.X.Tick.Marker = plot.LogScale{}, plot.LogTicks{Prec: -1}
		p.Y.Scale, p.Y.Tick.Marker = plot.LogScale{}, plot.LogTicks{Prec: -1}
		p.Legend.Top, p.Legend.Left = true, true
		p.Add(plotter.NewGrid())
		lines := 0
		for _, mode := range scale.Modes {
			for _, s := range pn.series {
				added, err := addLine(p, reps, mode, s)
				if err != nil {
					return err
				}
				lines += added
			}
		}
		if lines == 0 {
			// Nothing positive to draw: a log scale of no data would
			// panic; the panel stays empty on a linear one.
			for _, ax := range []*plot.Axis{&p.X, &p.Y} {
				ax.Scale, ax.Tick.Marker = plot.LinearScale{}, plot.DefaultTicks{}
				ax.Min, ax.Max = 0, 1
			}
		}
		plots[i/2] = append(plots[i/2], p)
	}
	const w, h = 12 * vg.Inch, 9 * vg.Inch
	img := vgimg.New(w, h)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 2, Cols: 2, PadX: vg.Millimeter * 4, PadY: vg.Millimeter * 4,
		PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	canvases := plot.Align(plots, tiles, dc)
	for r := range plots {
		for c, p := range plots[r] {
			p.Draw(canvases[r][c])
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("scaleplot: %w", err)
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("scaleplot: %w", err)
	}
	return f.Close()
}

// addLine adds the line of series s for mode, if any run of that mode
// has a positive value (a log scale takes no zero), and reports how many
// lines it added (0 or 1).
func addLine(p *plot.Plot, reps []*scale.Report, mode string, s series) (int, error) {
	var pts plotter.XYs
	for _, r := range reps {
		if r.Mode == mode {
			if v := s.value(r); v > 0 {
				pts = append(pts, plotter.XY{X: float64(r.Nodes), Y: v})
			}
		}
	}
	if len(pts) == 0 {
		return 0, nil
	}
	slices.SortFunc(pts, func(a, b plotter.XY) int { return int(a.X - b.X) })
	line, points, err := plotter.NewLinePoints(pts)
	if err != nil {
		return 0, fmt.Errorf("scaleplot: %w", err)
	}
	line.Color, points.Color = modeColors[mode], modeColors[mode]
	if s.dash {
		line.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		points.Shape = draw.BoxGlyph{}
	}
	p.Add(line, points)
	p.Legend.Add(mode+": "+s.name, line, points)
	return 1, nil
}
