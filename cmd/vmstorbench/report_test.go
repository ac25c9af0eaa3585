package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// savedRuns runs two short workloads on null:// and saves their documents into a directory.
func savedRuns(t *testing.T) string {
	t.Helper()
	res := t.TempDir()
	for _, rw := range []string{"randread", "randwrite"} {
		if _, stderr, err := runCLI(t, "run", "--target", "null://", "--rw", rw, "--size", "4m", "--runtime", "200ms",
			"--time-based", "--rate-iops", "20000", "--results", res, "--quiet"); err != nil {
			t.Fatalf("run %s: %v\n%s", rw, err, stderr)
		}
	}
	return res
}

func TestReportHTMLAndCharts(t *testing.T) {
	res := savedRuns(t)
	out := t.TempDir()
	html := filepath.Join(out, "new", "report.html") // its directory is created
	charts := filepath.Join(out, "charts")

	// Writing HTML and charts still prints the table, and says what it wrote on stderr.
	stdout, stderr, err := runCLI(t, "report", res, "--html", html, "--title", "Nightly", "--charts", charts)
	if err != nil {
		t.Fatalf("report: %v\n%s", err, stderr)
	}
	if !strings.Contains(stdout, "randread") || !strings.Contains(stdout, "IOPS") {
		t.Errorf("no table on stdout:\n%s", stdout)
	}
	if !strings.Contains(stderr, html) || !strings.Contains(stderr, charts) {
		t.Errorf("stderr does not say what was written: %q", stderr)
	}
	page, err := os.ReadFile(html)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"<title>Nightly</title>", `data-dir="read"`, `data-dir="write"`, "<svg ", "[randread]", `<code class="cmd">`} {
		if !strings.Contains(string(page), s) {
			t.Errorf("HTML lacks %q", s)
		}
	}
	for _, ext := range []string{".svg", ".png"} {
		files, _ := filepath.Glob(filepath.Join(charts, "*"+ext))
		if len(files) == 0 {
			t.Errorf("no %s chart files in %s", ext, charts)
		}
	}
	if files, _ := filepath.Glob(filepath.Join(charts, "*.pdf")); len(files) != 0 {
		t.Errorf("PDF charts written without being asked for: %v", files)
	}
	if tmp, _ := filepath.Glob(filepath.Join(out, "new", ".vmstorbench-report-*")); len(tmp) != 0 {
		t.Errorf("temporary files left: %v", tmp)
	}

	// --quiet: nothing on stdout or stderr, the files still written; --chart-format picks.
	pdfDir := filepath.Join(out, "pdf")
	stdout, stderr, err = runCLI(t, "report", res, "--charts", pdfDir, "--chart-format", "PDF", "--quiet")
	if err != nil || stdout != "" || stderr != "" {
		t.Errorf("--quiet: err %v, stdout %q, stderr %q", err, stdout, stderr)
	}
	if files, _ := filepath.Glob(filepath.Join(pdfDir, "*.pdf")); len(files) == 0 {
		t.Errorf("--chart-format pdf wrote no PDF")
	}
}

func TestReportErrors(t *testing.T) {
	res := savedRuns(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no results", []string{"report"}, "name result files"},
		{"empty dir", []string{"report", dir}, "json"},
		{"bad format", []string{"report", res, "--format", "xml"}, "--format"},
		{"bad chart format", []string{"report", res, "--charts", dir, "--chart-format", "svg,gif"}, "gif"},
		{"chart format without charts", []string{"report", res, "--chart-format", "svg"}, "needs --charts"},
		{"quiet alone", []string{"report", res, "--quiet"}, "would write nothing"},
		{"html under a file", []string{"report", res, "--html", filepath.Join(file, "r.html")}, "r.html"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := runCLI(t, c.args...)
			if err == nil {
				t.Fatal("no error")
			}
			if msg := err.Error(); !strings.Contains(msg, c.want) || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line containing %q", msg, c.want)
			}
		})
	}
}

func TestReportAndCompareSkipUnreadable(t *testing.T) {
	res := savedRuns(t)
	if err := os.WriteFile(filepath.Join(res, "truncated.json"), []byte(`{"schema": "vmstorbench.result/1", "id": `), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := runCLI(t, "report", res)
	if err == nil || !strings.Contains(err.Error(), "truncated.json") || !strings.Contains(err.Error(), "--skip-unreadable") {
		t.Fatalf("report without the option: %v", err)
	}
	out, stderr, err := runCLI(t, "report", res, "--skip-unreadable")
	if err != nil || !strings.Contains(out, "IOPS") || !strings.Contains(stderr, "warning: skipped ") || !strings.Contains(stderr, "truncated.json") {
		t.Fatalf("report --skip-unreadable: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr)
	}
	if _, _, err := runCLI(t, "compare", res, res); exitCode(err) != exitUsage || !strings.Contains(err.Error(), "--skip-unreadable") {
		t.Errorf("compare without the option: exit %d, %v", exitCode(err), err)
	}
	if _, stderr, err := runCLI(t, "compare", res, res, "--skip-unreadable"); err != nil || strings.Count(stderr, "warning: skipped") != 2 {
		t.Errorf("compare --skip-unreadable: %v\n%s", err, stderr)
	}
}
