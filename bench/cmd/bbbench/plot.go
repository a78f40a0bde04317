package main

import (
	"fmt"
	"image/color"
	"math"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// errorPoints are medians with their min and max, for plotter.YErrorBars.
type errorPoints struct {
	plotter.XYs
	low, high []float64 // distances below and above each Y
}

func (e errorPoints) YError(i int) (float64, float64) { return e.low[i], e.high[i] }

// logScaleAbove is the ratio of the largest to the smallest figure in a
// plot above which its Y axis is logarithmic: the contenders differ by
// orders of magnitude and a linear axis would flatten the slow ones to zero.
const logScaleAbove = 20

// PlotComparison draws one comparison at path, in the format its extension
// names (.svg or .png): one marker per
// contender and matrix point at the median, a bar from the lowest to the
// highest round, the physical limit as a dashed line when it is in a
// comparable unit, and the comparison's Beside under the title. It returns
// false, with no file, when nothing ran.
func PlotComparison(c Comparison, path string) (bool, error) {
	g := c.Group
	var rows []string
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, row := range c.Rows {
		ok := false
		for _, cell := range row.Cells {
			if cell.Status == CellOK && cell.Stat.Min > 0 {
				ok = true
				lo, hi = math.Min(lo, cell.Stat.Min), math.Max(hi, cell.Stat.Max)
			}
		}
		if ok {
			rows = append(rows, row.Key)
		}
	}
	if len(rows) == 0 {
		return false, nil
	}
	limit := math.NaN()
	if c.LimitStat != nil && !g.Limit.Percent && HigherIsBetter(g.Unit) && HigherIsBetter(g.Limit.Unit) {
		limit = c.LimitStat.Median
		lo, hi = math.Min(lo, limit), math.Max(hi, limit)
	}

	p := plot.New()
	p.Title.Text = g.Title
	if c.Beside != "" {
		p.Title.Text += "\n" + c.Beside
	}
	p.Y.Label.Text = g.Unit
	if HigherIsBetter(g.Unit) {
		p.Y.Label.Text += ", higher is better"
	} else {
		p.Y.Label.Text += ", lower is better"
	}
	labels := make([]string, len(rows))
	for i, r := range rows {
		labels[i] = strings.ReplaceAll(r, "/", "\n")
		if labels[i] == "" {
			labels[i] = "-"
		}
	}
	p.NominalX(labels...)
	p.X.Min, p.X.Max = -0.5, float64(len(rows))-0.5
	// Headroom above the highest bar keeps the legend (top left) clear of
	// the data.
	if hi/lo > logScaleAbove {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
		p.Y.Label.Text += " (log scale)"
		p.Y.Min, p.Y.Max = lo/2, hi*10
	} else {
		p.Y.Min, p.Y.Max = 0, hi*1.4
	}
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	p.Legend.Left = true
	p.Legend.TextStyle.Font.Size = vg.Points(8)

	n := len(g.Series)
	for si, s := range g.Series {
		var pts errorPoints
		for ri, key := range rows {
			for _, row := range c.Rows {
				if row.Key != key {
					continue
				}
				cell := row.Cells[si]
				if cell.Status != CellOK || cell.Stat.Min <= 0 {
					continue
				}
				x := float64(ri) + (float64(si)-float64(n-1)/2)*0.5/float64(n)
				pts.XYs = append(pts.XYs, plotter.XY{X: x, Y: cell.Stat.Median})
				pts.low = append(pts.low, cell.Stat.Median-cell.Stat.Min)
				pts.high = append(pts.high, cell.Stat.Max-cell.Stat.Median)
			}
		}
		if len(pts.XYs) == 0 {
			continue
		}
		scatter, err := plotter.NewScatter(pts.XYs)
		if err != nil {
			return false, fmt.Errorf("bbbench: plot %s: %w", g.ID, err)
		}
		scatter.GlyphStyle.Color = plotutil.Color(si)
		scatter.GlyphStyle.Shape = plotutil.Shape(si)
		scatter.GlyphStyle.Radius = vg.Points(3.5)
		bars, err := plotter.NewYErrorBars(pts)
		if err != nil {
			return false, fmt.Errorf("bbbench: plot %s: %w", g.ID, err)
		}
		bars.Color = plotutil.Color(si)
		p.Add(bars, scatter)
		p.Legend.Add(s.Label, scatter)
	}
	if !math.IsNaN(limit) {
		line := plotter.NewFunction(func(float64) float64 { return limit })
		line.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		line.Color = color.Gray{Y: 0x30}
		p.Add(line)
		p.Legend.Add(fmt.Sprintf("limit: %s %s (%s)", formatValue(limit), g.Limit.Unit, strings.TrimPrefix(g.Limit.Name, "Benchmark")), line)
	}
	width := max(8*vg.Inch, vg.Length(len(rows))*vg.Inch)
	if err := p.Save(width, 4.5*vg.Inch, path); err != nil {
		return false, fmt.Errorf("bbbench: save %s: %w", filepath.Base(path), err)
	}
	return true, nil
}
