package chart

import (
	"fmt"
	"image/color"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// okabeIto is the Okabe–Ito palette, distinguishable with the common colour-vision
// deficiencies; its order puts the colours that read best on white first (yellow and black,
// which look like axes and text, come last).
var okabeIto = [...]color.NRGBA{
	{0x00, 0x72, 0xB2, 0xff}, // blue
	{0xE6, 0x9F, 0x00, 0xff}, // orange
	{0x00, 0x9E, 0x73, 0xff}, // bluish green
	{0xD5, 0x5E, 0x00, 0xff}, // vermillion
	{0x56, 0xB4, 0xE9, 0xff}, // sky blue
	{0xCC, 0x79, 0xA7, 0xff}, // reddish purple
	{0xF0, 0xE4, 0x42, 0xff}, // yellow
	{0x00, 0x00, 0x00, 0xff}, // black
}

// seriesColor is the colour of the i-th target. Past eight the palette repeats lightened,
// so that at least the shade still tells series apart.
func seriesColor(i int) color.NRGBA {
	c := okabeIto[i%len(okabeIto)]
	if round := i / len(okabeIto); round > 0 {
		f := math.Min(0.6, 0.35*float64(round))
		c = mix(c, color.NRGBA{0xff, 0xff, 0xff, 0xff}, f)
	}
	return c
}

// mix blends c towards d by f (0: c, 1: d).
func mix(c, d color.NRGBA, f float64) color.NRGBA {
	m := func(a, b uint8) uint8 { return uint8(math.Round(float64(a)*(1-f) + float64(b)*f)) }
	return color.NRGBA{m(c.R, d.R), m(c.G, d.G), m(c.B, d.B), 0xff}
}

// alpha returns c with opacity a (0..1).
func alpha(c color.NRGBA, a float64) color.NRGBA {
	c.A = uint8(math.Round(255 * a))
	return c
}

// seriesDashes gives lines a second cue besides colour (grey-scale prints, colour-blind
// readers): solid, dashed, dotted, cycling with a period prime to the palette's, so that
// colour and pattern together stay unique for 24 series.
func seriesDashes(i int) []vg.Length {
	switch i % 3 {
	case 1:
		return []vg.Length{vg.Points(6), vg.Points(3)}
	case 2:
		return []vg.Length{vg.Points(1.5), vg.Points(2)}
	}
	return nil
}

var (
	textColor = color.NRGBA{0x20, 0x20, 0x20, 0xff}
	gridColor = color.NRGBA{0xdd, 0xdd, 0xdd, 0xff}
	noteColor = color.NRGBA{0x55, 0x55, 0x55, 0xff}
)

// sans is the chart font: a sans-serif reads better than gonum's default serif at small
// sizes.
func sans(size vg.Length) font.Font {
	return font.From(font.Font{Typeface: "Liberation", Variant: "Sans"}, size)
}

// newPlot returns a plot with this package's fonts and legend layout.
func newPlot(title, xLabel, yLabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font = sans(12)
	p.Title.TextStyle.Color = textColor
	p.Title.Padding = vg.Points(8)
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font = sans(10)
		a.Label.TextStyle.Color = textColor
		a.Tick.Label.Font = sans(9)
		a.Tick.Label.Color = textColor
		a.Tick.Length = vg.Points(4)
		a.Padding = vg.Points(2)
	}
	p.X.Label.Text, p.Y.Label.Text = xLabel, yLabel
	p.Legend.TextStyle.Font = sans(9)
	p.Legend.TextStyle.Color = textColor
	p.Legend.Top, p.Legend.Left = true, true
	p.Legend.ThumbnailWidth = vg.Points(18)
	p.Legend.Padding = vg.Points(3)
	return p
}

// addGrid adds light grid lines at the major ticks of the value axes only: on bar charts,
// lines along the bars would cut through them.
func addGrid(p *plot.Plot, horizontal, vertical bool) {
	g := plotter.NewGrid()
	g.Horizontal.Color, g.Horizontal.Width = nil, vg.Points(0.5)
	g.Vertical.Color, g.Vertical.Width = nil, vg.Points(0.5)
	if horizontal {
		g.Horizontal.Color = gridColor
	}
	if vertical {
		g.Vertical.Color = gridColor
	}
	p.Add(g)
}

// dirTitle is a direction as the start of a title.
func dirTitle(dir string) string {
	switch dir {
	case "read":
		return "Read"
	case "write":
		return "Write"
	case "sync":
		return "Sync (flush)"
	}
	return dir
}

// validDir checks a direction name.
func validDir(dir string) error {
	switch dir {
	case "read", "write", "sync":
		return nil
	}
	return fmt.Errorf("unknown direction %q (read, write or sync)", dir)
}

// latUnit picks the unit of a linear latency axis from 0 to maxNS: ms when most of the
// axis lies above 1 ms, else µs.
func latUnit(maxNS float64) (unit string, perNS float64) {
	if maxNS >= 2e6 {
		return "ms", 1e-6
	}
	return "µs", 1e-3
}

// countTicks labels a linear axis at a 1-2-5 step with k/M/G suffixes, so that 6-digit
// IOPS do not crowd the axis.
type countTicks struct{}

func (countTicks) Ticks(min, max float64) []plot.Tick {
	return niceTicks(min, max, 8, compactNumber)
}

// timeTicks marks a time axis in seconds.
type timeTicks struct{}

func (timeTicks) Ticks(min, max float64) []plot.Tick {
	return niceTicks(min, max, 12, sig3)
}

// niceTicks marks [min, max] at the 1-2-5 step giving at most maxLabels labels, with four
// minor ticks between labels.
func niceTicks(min, max float64, maxLabels int, label func(float64) string) []plot.Tick {
	span := max - min
	if !(span > 0) || math.IsInf(span, 0) || math.IsNaN(span) {
		return nil
	}
	n := float64(maxLabels)
	step := math.Pow(10, math.Floor(math.Log10(span/n)))
	for _, m := range []float64{1, 2, 5, 10} {
		if span/(step*m) <= n {
			step *= m
			break
		}
	}
	var ts []plot.Tick
	for i := math.Ceil(min / step * 5); i <= math.Floor(max/step*5); i++ {
		v := i * step / 5
		t := plot.Tick{Value: v}
		if math.Mod(i, 5) == 0 {
			// Round away float noise (0.30000000000000004) before formatting.
			p := math.Pow(10, math.Max(0, -math.Floor(math.Log10(step))))
			t.Label = label(math.Round(v*p) / p)
		}
		ts = append(ts, t)
	}
	return ts
}

// humanNumber formats v with about 3 significant digits and a k/M/G suffix from 10000 on:
// 0.05, 1.5, 250, 1000, 2500, 10k, 1.2M. Never in exponent notation.
func humanNumber(v float64) string { return numberFrom(v, 1e4) }

// compactNumber is humanNumber with k from 1000 on (1.5k, 25k), for bar values and linear
// axes, where 1500 next to 25k would read as the odd one out.
func compactNumber(v float64) string { return numberFrom(v, 1e3) }

func numberFrom(v, kFrom float64) string {
	a := math.Abs(v)
	if s := sig3(v); a < kFrom && strings.TrimPrefix(s, "-") != strconv.FormatFloat(kFrom, 'f', -1, 64) {
		return s // 999.9 rounds to 1000: that is 1k when k starts at 1000
	}
	units := []struct {
		div    float64
		suffix string
	}{{1e3, "k"}, {1e6, "M"}, {1e9, "G"}}
	for i, u := range units {
		last := i == len(units)-1
		if a >= u.div*1e3 && !last {
			continue
		}
		s := sig3(v / u.div)
		if strings.TrimPrefix(s, "-") == "1000" && !last {
			continue // 999.96k rounds up to 1M
		}
		return s + u.suffix
	}
	return sig3(v)
}

// sig3 formats v with 3 significant digits (all integer digits from 1000 on), without
// trailing zeros or an exponent.
func sig3(v float64) string {
	a := math.Abs(v)
	if a == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	decimals := max(0, 2-int(math.Floor(math.Log10(a))))
	s := strconv.FormatFloat(v, 'f', decimals, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	if s == "-0" {
		s = "0"
	}
	return s
}

// Log axes are linear axes over log10 of the values, with ticks labelled in the values:
// gonum's LogScale places the axis label's glyph box at the arithmetic middle of the range
// (shifting the plot area) and panics on values <= 0.

// log10Ticks marks such an axis at each decade's 1..9, labelling the decades, and also the
// 2s and 5s when that gives fewer than three labels (a narrow range), and every mark when
// even that gives fewer than two. Labels are plain numbers (0.1, 1, 10, 1000, 10k).
type log10Ticks struct{}

func (log10Ticks) Ticks(min, max float64) []plot.Tick {
	if !(max > min) || math.IsInf(max, 0) || math.IsInf(min, 0) {
		return nil
	}
	for _, labels := range [][]int{{1}, {1, 2, 5}} {
		ts := log10Marks(min, max, labels)
		n := 0
		for _, t := range ts {
			if t.Label != "" {
				n++
			}
		}
		if n >= 3 || labels[0] == 1 && len(labels) > 1 && n >= 2 {
			return ts
		}
	}
	return log10Marks(min, max, []int{1, 2, 3, 4, 5, 6, 7, 8, 9})
}

// log10Marks returns the 1..9 marks of each decade in [10^min, 10^max], labelling the
// mantissas in labels.
func log10Marks(min, max float64, labels []int) []plot.Tick {
	lo, hi := math.Pow(10, min), math.Pow(10, max)
	var ts []plot.Tick
	for e := math.Floor(min); e <= math.Ceil(max); e++ {
		base := math.Pow(10, e)
		for m := 1; m <= 9; m++ {
			v := float64(m) * base
			if v < lo*0.999 || v > hi*1.001 {
				continue
			}
			t := plot.Tick{Value: math.Log10(v)}
			if slices.Contains(labels, m) {
				t.Label = humanNumber(v)
			}
			ts = append(ts, t)
		}
	}
	return ts
}

// setLogAxis makes a a log axis over the values [lo, hi] (both > 0), padded a little; data
// drawn on it must go through log10.
func setLogAxis(a *plot.Axis, lo, hi float64) {
	if !(lo > 0) {
		lo = hi / 10
	}
	if !(hi > lo) {
		hi = lo * 10
	}
	a.Tick.Marker = log10Ticks{}
	a.Min, a.Max = math.Log10(lo/1.15), math.Log10(hi*1.15)
}

// logUnit picks the unit of a log latency axis over [loNS, hiNS]: ms when most of the axis
// (its logarithmic middle) lies above 1 ms, else µs.
func logUnit(loNS, hiNS float64) (unit string, perNS float64) {
	if loNS > 0 && hiNS > 0 && math.Sqrt(loNS*hiNS) >= 1e6 {
		return "ms", 1e-6
	}
	return "µs", 1e-3
}

// legendWidth is where legend entries wrap. gonum gives every entry the height of the
// tallest, so entries are kept to one line and only very long names wrap.
const legendWidth = 40

// wrap breaks s into lines of at most width characters at spaces.
func wrap(s string, width int) string {
	var lines []string
	for _, para := range strings.Split(s, "\n") {
		line := ""
		for _, w := range strings.Fields(para) {
			if line != "" && len([]rune(line))+1+len([]rune(w)) > width {
				lines = append(lines, line)
				line = w
				continue
			}
			if line != "" {
				line += " "
			}
			line += w
		}
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n")
}

// heading is a chart's title: the main line says what is plotted ("Read IOPS —
// rand-read-4k (4k randread QD1)"), the note below it, smaller, how (repeats, method,
// which way is better). Both wrap to the canvas width, so that no title is ever clipped.
type heading struct{ main, note string }

// oneLine is the heading for captions: "Main. Note."
func (h heading) oneLine() string {
	if h.note == "" {
		return h.main
	}
	return h.main + ". " + sentence(h.note) + "."
}

// sentence capitalises the first letter of s.
func sentence(s string) string {
	r := []rune(s)
	if len(r) > 0 {
		r[0] = unicode.ToUpper(r[0])
	}
	return string(r)
}

// headingPad is the heading's margin to the canvas edges.
const headingPad = vg.Length(8)

func headingStyles() (main, note text.Style) {
	main = text.Style{Color: textColor, Font: sans(12), Handler: plot.DefaultTextHandler, XAlign: draw.XLeft, YAlign: draw.YTop}
	note = main
	note.Font = sans(9.5)
	note.Color = noteColor
	return main, note
}

// lines lays the heading out for a canvas width: the main lines, then the note's.
func (h heading) lines(width vg.Length) (main, note []string) {
	ms, ns := headingStyles()
	w := width - 2*headingPad
	if h.main != "" {
		main = wrapTo(ms, h.main, w)
	}
	if h.note != "" {
		note = wrapTo(ns, sentence(h.note), w)
	}
	return main, note
}

// draw draws the heading at the top of c (left-aligned) and returns the canvas below it.
func (h heading) draw(c draw.Canvas) draw.Canvas {
	if h.main == "" && h.note == "" {
		return c
	}
	main, note := h.lines(c.Max.X - c.Min.X)
	ms, ns := headingStyles()
	y := c.Max.Y - headingPad
	for _, part := range []struct {
		sty   text.Style
		lines []string
	}{{ms, main}, {ns, note}} {
		lh := part.sty.Font.Size * 1.25
		for _, l := range part.lines {
			c.FillText(part.sty, vg.Point{X: c.Min.X + headingPad, Y: y}, l)
			y -= lh
		}
		if len(part.lines) > 0 {
			y -= vg.Points(2)
		}
	}
	c.Max.Y = y - vg.Points(4)
	return c
}

// wrapTo breaks s at spaces into lines no wider than width in sty's font; a word wider
// than a line on its own is broken between letters.
func wrapTo(sty text.Style, s string, width vg.Length) []string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(s) {
		try := w
		if line != "" {
			try = line + " " + w
		}
		if sty.Width(try) <= width {
			line = try
			continue
		}
		if line != "" {
			lines = append(lines, line)
		}
		line = ""
		for _, r := range w {
			if line != "" && sty.Width(line+string(r)) > width {
				lines = append(lines, line)
				line = ""
			}
			line += string(r)
		}
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}

// safeName makes s usable in a file name: lower case letters, digits, dots and dashes.
func safeName(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.'
		if ok {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	out := strings.Trim(b.String(), "-.")
	if len(out) > 60 {
		out = strings.Trim(out[:60], "-.")
	}
	return out
}

// fillRect fills a rectangle of the canvas.
func fillRect(c draw.Canvas, clr color.Color, r vg.Rectangle) {
	c.FillPolygon(clr, []vg.Point{r.Min, {X: r.Max.X, Y: r.Min.Y}, r.Max, {X: r.Min.X, Y: r.Max.Y}})
}
