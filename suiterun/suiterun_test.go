package suiterun_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmstorbench/vmstorbench/backends"
	_ "github.com/vmstorbench/vmstorbench/backends/all"
	"github.com/vmstorbench/vmstorbench/results"
	"github.com/vmstorbench/vmstorbench/suite"
	"github.com/vmstorbench/vmstorbench/suiterun"
)

const tinySuite = `
name: tiny
labels: {purpose: test}
targets:
  - name: nothing
    url: null://
  - name: disk
    url: file://%DIR%
workloads:
  - name: rr
    rw: randread
    bs: 4k
    size: 2m
    runtime: 200ms
    time_based: true
`

func loadTiny(t *testing.T) *suite.Suite {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "tiny.yaml")
	if err := os.WriteFile(p, []byte(strings.ReplaceAll(tinySuite, "%DIR%", t.TempDir())), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := suite.Load(p, backends.Default)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestExecute(t *testing.T) {
	s := loadTiny(t)
	ctx := context.Background()
	out := filepath.Join(t.TempDir(), "first")
	var stdout, stderr bytes.Buffer
	o, err := suiterun.Execute(ctx, s, suiterun.Options{Out: out, Stdout: &stdout, Stderr: &stderr, Command: []string{"test"}})
	if err != nil {
		t.Fatal(err)
	}
	if o.Planned != 2 || o.Results != 2 || o.Failed+o.Corrupt+o.MigrationFailed != 0 || o.Interrupted || o.Comparison != nil || o.CompareErr != nil {
		t.Errorf("outcome %+v", o)
	}
	runs, err := results.LoadAll(out)
	if err != nil || len(runs) != 2 {
		t.Fatalf("%s: %d results, %v", out, len(runs), err)
	}
	for _, r := range runs {
		if r.Labels[suiterun.Label] != "tiny" || r.Labels["purpose"] != "test" || r.Labels[results.TargetLabel] == "" || !r.Complete {
			t.Errorf("run %s: labels %v complete %v", r.ID, r.Labels, r.Complete)
		}
	}
	for _, f := range []string{suiterun.CopyFile, suiterun.LogFile, suiterun.TableFile, suiterun.HTMLFile} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("no %s: %v", f, err)
		}
	}
	if !strings.Contains(stderr.String(), "[2/2] disk rr → read ") || !strings.Contains(stdout.String(), "nothing") {
		t.Errorf("stderr:\n%s\nstdout:\n%s", stderr.String(), stdout.String())
	}

	// The first directory as the baseline of a second run: compared, and written out.
	second := filepath.Join(t.TempDir(), "second")
	o, err = suiterun.Execute(ctx, s, suiterun.Options{Out: second, Baseline: out, Quiet: true})
	if err != nil {
		t.Fatal(err)
	}
	if o.Comparison == nil || o.CompareErr != nil || o.Baseline != out {
		t.Errorf("second outcome: %+v", o)
	}
	for _, f := range []string{suiterun.CompareFile, suiterun.CompareMDFile, suiterun.JUnitFile} {
		if _, err := os.Stat(filepath.Join(second, f)); err != nil {
			t.Errorf("no %s: %v", f, err)
		}
	}

	// Bad input is refused before anything runs.
	if _, err := suiterun.Execute(ctx, s, suiterun.Options{Out: t.TempDir(), Baseline: out, NoBaseline: true}); !errors.Is(err, suiterun.ErrBothBaselines) {
		t.Errorf("--baseline with --no-baseline: %v", err)
	}
	if _, err := suiterun.Execute(ctx, s, suiterun.Options{Out: out}); err == nil || !strings.Contains(err.Error(), "already holds result documents") {
		t.Errorf("an output directory with results: %v", err)
	}
}

func TestExecuteInterrupted(t *testing.T) {
	s := loadTiny(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	o, err := suiterun.Execute(ctx, s, suiterun.Options{Out: t.TempDir()})
	if err != nil || !o.Interrupted || o.Results != 0 {
		t.Errorf("cancelled before the first run: %+v, %v", o, err)
	}
}
