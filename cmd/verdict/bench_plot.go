package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strings"
)

// plotSeries is one line of a plot panel.
type plotSeries struct {
	name   string
	color  string
	dashed bool
	x, y   []float64
}

// plotPanel is one chart: log-scale x (pending predictions), linear y from 0.
type plotPanel struct {
	title, yLabel string
	series        []plotSeries
	// notes are written at the top of the chart above their x.
	notes []plotNote
}

type plotNote struct {
	x    float64
	text string
}

// writeScaleSVG draws the scale curve from a run's points: the rates per path, and
// the disk bytes per prediction with the restart time. It is regenerated from the
// JSON by `verdict bench --plot FILE.json --scale-svg FILE.svg`.
func writeScaleSVG(path string, run ScaleRun) error {
	var xs, preds, lbls, cold, first, bpp, restart, rssMB []float64
	var loads []plotNote
	for _, p := range run.Points {
		loads = append(loads, plotNote{float64(p.Pending), fmt.Sprintf("load %.1f", p.Load1)})
		xs = append(xs, float64(p.Pending))
		preds = append(preds, p.LastPredictionsPerSec/1000)
		lbls = append(lbls, p.LabelsPerSec/1000)
		cold = append(cold, p.ColdLabelsPerSec/1000)
		first = append(first, p.FirstLabelsPerSec/1000)
		bpp = append(bpp, p.BytesPerPred)
		restart = append(restart, p.RestartSeconds)
		rssMB = append(rssMB, float64(p.RSSBytes)/(1<<20))
	}
	rates := plotPanel{title: "Events/s by store size", yLabel: "thousand events/s", notes: loads, series: []plotSeries{
		{name: "predictions/s", color: "#1f77b4", x: xs, y: preds},
		{name: "labels/s (page cache warm)", color: "#d62728", x: xs, y: lbls},
		{name: "labels/s after restart", color: "#ff7f0e", dashed: true, x: xs, y: first},
	}}
	if slicesAny(cold) {
		rates.series = append(rates.series, plotSeries{name: "labels/s (store files evicted from page cache)", color: "#9467bd", x: xs, y: cold})
	}
	size := plotPanel{title: "Disk bytes per pending prediction", yLabel: "bytes", series: []plotSeries{
		{name: "disk bytes / prediction", color: "#2ca02c", x: xs, y: bpp},
	}}
	mem := plotPanel{title: "RSS (MiB) and restart (s)", yLabel: "MiB / s", series: []plotSeries{
		{name: "RSS MiB", color: "#8c564b", x: xs, y: rssMB},
		{name: "restart s × 100", color: "#17becf", dashed: true, x: xs, y: scale(restart, 100)},
	}}
	caption := fmt.Sprintf("verdict bench --only scale, %s, %d CPUs shared with other work (load average at each point above), %d MiB block cache, fsync per commit, batches of %d",
		run.Date, run.CPUs, run.CacheMB, run.Batch)
	return os.WriteFile(path, svgPlot(caption, []plotPanel{rates, size, mem}), 0o644)
}

func slicesAny(v []float64) bool {
	for _, f := range v {
		if f > 0 {
			return true
		}
	}
	return false
}

func scale(v []float64, k float64) []float64 {
	out := make([]float64, len(v))
	for i, f := range v {
		out[i] = f * k
	}
	return out
}

// svgPlot draws panels side by side, each with its legend below it.
func svgPlot(caption string, panels []plotPanel) []byte {
	const pw, ph, left, top, plotW, plotH = 420, 360, 60, 40, 330, 220
	var b bytes.Buffer
	w := pw * len(panels)
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n", w, ph+20, w, ph+20)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", w, ph+20)
	fmt.Fprintf(&b, `<text x="10" y="%d" fill="#555">%s</text>`+"\n", ph+12, esc(caption))
	for i, p := range panels {
		ox := i * pw
		xmin, xmax, ymax := math.Inf(1), math.Inf(-1), 0.0
		for _, s := range p.series {
			for k := range s.x {
				xmin, xmax = math.Min(xmin, s.x[k]), math.Max(xmax, s.x[k])
				ymax = math.Max(ymax, s.y[k])
			}
		}
		if math.IsInf(xmin, 0) {
			continue
		}
		lo, hi := math.Floor(math.Log10(xmin)), math.Ceil(math.Log10(xmax))
		if hi == lo {
			hi++
		}
		ymax = niceCeil(ymax * 1.1)
		px := func(x float64) float64 { return float64(ox+left) + (math.Log10(x)-lo)/(hi-lo)*plotW }
		py := func(y float64) float64 { return float64(top+plotH) - y/ymax*plotH }
		fmt.Fprintf(&b, `<text x="%d" y="20" font-size="13" font-weight="bold">%s</text>`+"\n", ox+left, esc(p.title))
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#999"/>`+"\n", ox+left, top, plotW, plotH)
		for e := lo; e <= hi; e++ {
			x := px(math.Pow(10, e))
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#eee"/>`+"\n", x, top, x, top+plotH)
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">10^%d</text>`+"\n", x, top+plotH+14, int(e))
		}
		for k := 0; k <= 4; k++ {
			y := ymax * float64(k) / 4
			fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#eee"/>`+"\n", ox+left, py(y), ox+left+plotW, py(y))
			fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", ox+left-4, py(y)+4, trimFloat(y))
		}
		for _, n := range p.notes {
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" fill="#777" font-size="10">%s</text>`+"\n", px(n.x), top+24, esc(n.text))
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">pending predictions</text>`+"\n", ox+left+plotW/2, top+plotH+28)
		fmt.Fprintf(&b, `<text x="%d" y="%d" transform="rotate(-90 %d %d)" text-anchor="middle">%s</text>`+"\n", ox+14, top+plotH/2, ox+14, top+plotH/2, esc(p.yLabel))
		for k, s := range p.series {
			var pts []string
			for n := range s.x {
				if s.y[n] > 0 {
					pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(s.x[n]), py(s.y[n])))
				}
			}
			dash := ""
			if s.dashed {
				dash = ` stroke-dasharray="5,3"`
			}
			fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>`+"\n", strings.Join(pts, " "), s.color, dash)
			for _, pt := range pts {
				xy := strings.Split(pt, ",")
				fmt.Fprintf(&b, `<circle cx="%s" cy="%s" r="3" fill="%s"/>`+"\n", xy[0], xy[1], s.color)
			}
			ly := top + plotH + 46 + 14*k
			fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"%s/>`+"\n", ox+left, ly-4, ox+left+20, ly-4, s.color, dash)
			fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", ox+left+26, ly, esc(s.name))
		}
	}
	b.WriteString("</svg>\n")
	return b.Bytes()
}

func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func trimFloat(v float64) string { return strings.TrimSuffix(fmt.Sprintf("%.4g", v), ".0") }

func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// replotScale rewrites the SVG from a scale run's JSON.
func replotScale(jsonPath, svgPath string) error {
	data, err := os.ReadFile(jsonPath)
	if err != nil {
		return err
	}
	var run ScaleRun
	if err := json.Unmarshal(data, &run); err != nil {
		return fmt.Errorf("%s: %w", jsonPath, err)
	}
	return writeScaleSVG(svgPath, run)
}
