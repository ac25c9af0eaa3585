package report

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmstorbench/vmstorbench/report/chart"
)

// chromiumBinary finds a Chromium to render pages with. With CI set a missing browser is a
// failure: CI installs it (scripts/deps.sh).
func chromiumBinary(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("CI needs Chromium for the HTML report test (scripts/deps.sh installs the chromium package)")
	}
	t.Skip("no chromium or chromium-browser in PATH: install the chromium package to test the HTML report in a browser")
	return ""
}

// headless renders file in headless Chromium at width × height: it writes a screenshot to
// shot and returns the DOM after rendering. Chromium runs in its own process group with a
// private profile and home directory, no network access, and is killed as a group when it
// ends or takes longer than a minute, so no browser process outlives the test.
func headless(t *testing.T, bin, file, shot string, width, height int) string {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin,
		"--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--force-device-scale-factor=1",
		"--user-data-dir="+filepath.Join(dir, "profile"), "--no-first-run", "--no-default-browser-check",
		"--disable-extensions", "--disable-sync", "--disable-background-networking", "--disable-component-update",
		"--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>", // any fetch of the page would fail
		fmt.Sprintf("--window-size=%d,%d", width, height), "--screenshot="+shot, "--dump-dom",
		"file://"+file)
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_CONFIG_HOME="+dir, "XDG_CACHE_HOME="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if cmd.Process != nil {
		// Chromium's helpers (zygote, GPU and network services) may outlive the browser.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	if err != nil {
		t.Fatalf("chromium: %v (%v)\n%s", err, context.Cause(ctx), tail(stderr.String(), 2000))
	}
	return stdout.String()
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

func decodePNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot %s: %v", path, err)
	}
	return img
}

// inkStats counts the pixels of r that are not (near) white and the distinct colours in r.
func inkStats(img image.Image, r image.Rectangle) (ink, colours int) {
	seen := map[uint32]bool{}
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			cr, cg, cb = cr>>8, cg>>8, cb>>8
			seen[cr<<16|cg<<8|cb] = true
			if cr < 240 || cg < 240 || cb < 240 {
				ink++
			}
		}
	}
	return ink, len(seen)
}

// chartGrid is a style the test adds to a copy of the report: everything but the charts is
// hidden and each figure gets a fixed cell, so that chart i is at a known place in the
// screenshot.
const (
	cellW, cellH = 620, 420
	chartGrid    = `<style>
body > *:not(#charts), #charts > :not(.charts), figcaption { display: none !important; }
html, body { margin: 0 !important; padding: 0 !important; max-width: none !important; background: #fff; }
.charts { display: grid !important; grid-template-columns: repeat(2, 620px); gap: 0 !important; }
figure.chart { width: 620px; height: 420px; max-width: none; margin: 0; padding: 10px; border: 0; overflow: hidden; }
</style>
</head>`
)

var svgOpen = regexp.MustCompile(`<svg\b`)

// TestHTMLInChromium renders the report in a real browser: the DOM after rendering has one
// <svg> figure per chart with its title, the full-page screenshot decodes at the window's
// size and is not blank, and every chart, alone in its cell, has drawn lines in several
// colours.
func TestHTMLInChromium(t *testing.T) {
	bin := chromiumBinary(t)
	runs := engineRuns(t)
	charts, err := chart.All(runs)
	if err != nil || len(charts) == 0 {
		t.Fatalf("chart.All: %d charts, %v", len(charts), err)
	}
	dir := t.TempDir()
	page := pageOf(t, runs, HTMLOptions{Title: "Browser test"})
	file := filepath.Join(dir, "report.html")
	if err := os.WriteFile(file, []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}

	const width, height = 1280, 4000
	shot := filepath.Join(dir, "report.png")
	dom := headless(t, bin, file, shot, width, height)
	if !strings.Contains(dom, "<h1>Browser test</h1>") {
		t.Fatalf("DOM after rendering lacks the page:\n%s", tail(dom, 2000))
	}
	// The migration summary table and the migration chart are on the rendered page.
	migTable := regexp.MustCompile(`(?s)<table class="grid" data-table="migrations-summary">.*?QEMU downtime \(ms\).*?<td class="num">12\.5</td>.*?</table>`)
	if !migTable.MatchString(dom) {
		t.Errorf("DOM lacks the migration summary table")
	}
	if !regexp.MustCompile(`(?s)<figure class="chart" id="fig-migration-downtime-stall">\s*<svg .*?</svg>`).MatchString(dom) {
		t.Errorf("DOM lacks the migration downtime chart")
	}
	figs := regexp.MustCompile(`(?s)<figure class="chart" id="[^"]+">(.*?)</figure>`).FindAllStringSubmatch(dom, -1)
	if len(figs) != len(charts) {
		t.Fatalf("DOM has %d chart figures, want %d", len(figs), len(charts))
	}
	for i, f := range figs {
		if n := len(svgOpen.FindAllString(f[1], -1)); n != 1 {
			t.Errorf("figure %d has %d <svg> elements, want 1", i+1, n)
		}
		// Chromium serialises text with &, < and > escaped (quotes as they are).
		title := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "\u00a0", "&nbsp;").Replace(charts[i].Title)
		if !strings.Contains(f[1], fmt.Sprintf("Figure %d.</b> %s", i+1, title)) {
			t.Errorf("figure %d: caption does not name %q", i+1, charts[i].Title)
		}
	}
	img := decodePNG(t, shot)
	if b := img.Bounds(); b.Dx() != width || b.Dy() != height {
		t.Fatalf("screenshot is %v, want %dx%d", b, width, height)
	}
	// The top of the page (title, summary tables, the first charts) is well inked.
	top := image.Rect(0, 0, width, 1500)
	if ink, colours := inkStats(img, top); ink < top.Dx()*top.Dy()/100 || colours < 20 {
		t.Errorf("screenshot looks blank: %d inked pixels, %d colours in %v", ink, colours, top)
	}

	// The charts alone, each in a known cell.
	grid := strings.Replace(page, "</head>", chartGrid, 1)
	gridFile := filepath.Join(dir, "charts.html")
	if err := os.WriteFile(gridFile, []byte(grid), 0o644); err != nil {
		t.Fatal(err)
	}
	rows := (len(charts) + 1) / 2
	gridShot := filepath.Join(dir, "charts.png")
	headless(t, bin, gridFile, gridShot, width, rows*cellH+40)
	gimg := decodePNG(t, gridShot)
	for i, c := range charts {
		x, y := (i%2)*cellW, (i/2)*cellH
		// inside the figure's padding
		cell := image.Rect(x+12, y+12, x+cellW-12, y+cellH-12)
		ink, colours := inkStats(gimg, cell)
		// Axes, ticks, labels and data: more than 0.5% of the cell inked, several colours.
		if ink < cell.Dx()*cell.Dy()/200 || colours < 8 {
			t.Errorf("chart %d (%s) looks empty in the browser: %d inked pixels, %d colours", i+1, c.Title, ink, colours)
		}
	}
	// The cell-free margin on the right stays white: the counting sees what is drawn.
	margin := image.Rect(2*cellW+5, 0, width, rows*cellH)
	if ink, _ := inkStats(gimg, margin); ink != 0 {
		t.Errorf("%d inked pixels right of the chart grid: the grid layout did not apply", ink)
	}
	if t.Failed() {
		// Keep the evidence.
		for _, f := range []string{shot, gridShot, file} {
			if b, err := os.ReadFile(f); err == nil {
				_ = os.WriteFile(filepath.Join(os.TempDir(), "vmstorbench-htmltest-"+filepath.Base(f)), b, 0o644)
			}
		}
		t.Logf("screenshots kept in %s/vmstorbench-htmltest-*", os.TempDir())
	}
}
