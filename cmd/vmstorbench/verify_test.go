package main

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/backends/mem"
	"github.com/vmstorbench/vmstorbench/results"
	"github.com/vmstorbench/vmstorbench/suiterun"
)

// zeroesTarget is a disk that acknowledges every write and keeps none of them: everything
// reads back as zeros, as a bench file overwritten with zeros during the run does.
type zeroesTarget struct{ *mem.Target }

func (z zeroesTarget) WriteAt(b []byte, _ int64) (int, error) { return len(b), nil }

// The CLI reaches backends through the process-wide registry only; "zeroes" exists in this
// test binary alone.
func init() {
	backends.Register(backends.Backend{Scheme: "zeroes", Description: "test: writes are lost",
		Open: func(_ context.Context, _ *url.URL, p backends.OpenParams) (backends.Target, error) {
			m, err := mem.New(p.Size)
			if err != nil {
				return nil, err
			}
			return zeroesTarget{m}, nil
		}})
}

func TestRunVerifyMismatchesFail(t *testing.T) {
	res := t.TempDir()
	workload := []string{"--rw", "write", "--bs", "4k", "--size", "8m", "--verify", "crc32c", "--quiet"}
	stdout, stderr, err := runCLI(t, append([]string{"run", "--target", "zeroes://", "--results", res}, workload...)...)
	if code := exitCode(err); code != exitVerify {
		t.Fatalf("exit %d (%v), want %d for verify mismatches\n%s", code, err, exitVerify, stderr)
	}
	const line = "vmstorbench: zeroes://: verify: 2048 of 2048 blocks mismatched (first at offsets 0, 4096, 8192, …)"
	if !strings.Contains(stderr, line) {
		t.Errorf("stderr lacks %q:\n%s", line, stderr)
	}
	if !strings.Contains(stdout, "VERIFY FAILED") {
		t.Errorf("the table does not mark the run:\n%s", stdout)
	}
	runs, err := results.LoadAll(res)
	if err != nil || len(runs) != 1 {
		t.Fatalf("saved: %v, %d runs", err, len(runs))
	}
	files, _ := filepath.Glob(filepath.Join(res, "*.json"))
	raw, err := os.ReadFile(files[0])
	if err != nil || !strings.Contains(string(raw), `"status": "verify_failed"`) || !strings.Contains(string(raw), `"mismatches": 2048`) {
		t.Errorf("document not flagged (%v):\n%.600s", err, raw)
	}

	// report marks it in the table and the HTML.
	html := filepath.Join(t.TempDir(), "r.html")
	out, _, err := runCLI(t, "report", res, "--html", html)
	if err != nil || !strings.Contains(out, "VERIFY FAILED") {
		t.Errorf("report: %v\n%s", err, out)
	}
	if page, _ := os.ReadFile(html); !strings.Contains(string(page), "verify failed") {
		t.Errorf("HTML does not say verify failed")
	}

	// compare: the candidate that lost every write is faster than any disk, and fails.
	base := t.TempDir()
	if _, stderr, err := runCLI(t, append([]string{"run", "--target", "mem://", "--results", base}, workload...)...); err != nil {
		t.Fatalf("base run: %v\n%s", err, stderr)
	}
	out, _, err = runCLI(t, "compare", base, res, "--match-targets")
	if exitCode(err) != exitRegression || !strings.Contains(err.Error(), "verify: 2048 of 2048 blocks mismatched") {
		t.Errorf("compare: exit %d, %v\n%s", exitCode(err), err, out)
	}
}

func TestSuiteCountsVerifyMismatchesAsFailed(t *testing.T) {
	dir := t.TempDir()
	path := writeSuite(t, dir, "z.yaml", `
name: z
targets: [mem://, zeroes://]
workloads:
  - {name: w, rw: write, bs: 4k, size: 1m, verify: crc32c}
`)
	out := filepath.Join(dir, "out")
	stdout, stderr, err := runCLI(t, "suite", "run", path, "--out", out, "--quiet")
	if code := exitCode(err); code != exitVerify || !strings.Contains(err.Error(), "verify failed in 1 of 2 runs") {
		t.Fatalf("exit %d, %v, want %d\n%s", code, err, exitVerify, stderr)
	}
	log, _ := os.ReadFile(filepath.Join(out, suiterun.LogFile))
	if !strings.Contains(string(log), "[2/2] zeroes:// w → VERIFY FAILED: verify: 256 of 256 blocks mismatched") {
		t.Errorf("suite.log:\n%s", log)
	}
	if !strings.Contains(stdout, "VERIFY FAILED") {
		t.Errorf("table:\n%s", stdout)
	}
}
