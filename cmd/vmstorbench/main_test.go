package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmstorbench/vmstorbench/results"
)

// runCLI runs the command in-process and returns stdout, stderr and the error.
func runCLI(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	t.Setenv("COLUMNS", "") // tables at full width, whatever the terminal running the tests
	cmd := newRootCmd()
	var out, errb bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), errb.String(), err
}

func TestRunFileTargetSavesAndPrints(t *testing.T) {
	dir, res := t.TempDir(), t.TempDir()
	out, stderr, err := runCLI(t, "run", "--target", "file://"+dir, "--rw", "randrw", "--bs", "4k",
		"--size", "8m", "--iodepth", "4", "--verify", "crc32c", "--results", res, "--quiet")
	if err != nil {
		t.Fatalf("run: %v\n%s", err, stderr)
	}
	if !strings.Contains(out, "randrw") || !strings.Contains(out, "IOPS") {
		t.Errorf("table missing workload or IOPS:\n%s", out)
	}
	runs, err := results.LoadAll(res)
	if err != nil || len(runs) != 1 {
		t.Fatalf("saved results: %v, %d runs", err, len(runs))
	}
	r := runs[0]
	if !r.Complete || r.Read == nil || r.Write == nil || r.Verify == nil || r.Verify.Checked == 0 || r.Verify.Mismatches != 0 {
		t.Fatalf("result: complete=%v verify=%+v", r.Complete, r.Verify)
	}
	if r.Read.Bytes+r.Write.Bytes != 8<<20 {
		t.Errorf("transferred %d bytes, want 8MiB", r.Read.Bytes+r.Write.Bytes)
	}
	// The bench file is removed afterwards, and nothing else is left in the directory.
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("bench directory not cleaned: %v", entries)
	}
	// report renders the saved document in every format.
	for _, f := range []string{"table", "md", "csv"} {
		out, _, err := runCLI(t, "report", res, "--format", f)
		if err != nil || !strings.Contains(out, "randrw") {
			t.Errorf("report --format %s: %v\n%s", f, err, out)
		}
	}
}

func TestRunKeepAndProfile(t *testing.T) {
	dir := t.TempDir()
	_, stderr, err := runCLI(t, "run", "--target", "file://"+dir, "--profile", "log", "--size", "4m", "--runtime", "300ms", "--no-save", "--keep", "--quiet")
	if err != nil {
		t.Fatalf("run: %v\n%s", err, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "vmstorbench.job0.dat")); err != nil {
		t.Errorf("--keep: bench file gone: %v", err)
	}
}

func TestRunJSONAndFioJSON(t *testing.T) {
	out, _, err := runCLI(t, "run", "--target", "null://", "--rw", "randread", "--size", "4m", "--json", "--no-save")
	if err != nil {
		t.Fatal(err)
	}
	var r results.Run
	if err := json.Unmarshal([]byte(out), &r); err != nil || r.Read == nil || r.Read.IOs != 1024 || r.Submission != "goroutines" {
		t.Fatalf("--json: %v, %+v, submission %q", err, r.Read, r.Submission)
	}
	// mem:// has a queue: auto drives iodepth > 1 through it, --submission goroutines not.
	for _, mode := range []string{"auto", "goroutines"} {
		out, _, err = runCLI(t, "run", "--target", "mem://", "--rw", "randread", "--size", "4m", "--iodepth", "8", "--submission", mode, "--json", "--no-save")
		var r results.Run
		if err != nil || json.Unmarshal([]byte(out), &r) != nil || r.Read == nil || r.Read.IOs != 1024 {
			t.Fatalf("--submission %s: %v", mode, err)
		}
		if want := map[string]string{"auto": "queue", "goroutines": "goroutines"}[mode]; r.Submission != want {
			t.Errorf("--submission %s: result says %q, want %q", mode, r.Submission, want)
		}
	}
	out, _, err = runCLI(t, "run", "--target", "null://", "--rw", "randwrite", "--size", "4m", "--output-format", "fio-json", "--no-save")
	if err != nil {
		t.Fatal(err)
	}
	var fio struct {
		Jobs []struct {
			Write struct {
				TotalIOs int64 `json:"total_ios"`
				Clat     struct {
					Percentile map[string]int64 `json:"percentile"`
				} `json:"clat_ns"`
			} `json:"write"`
		} `json:"jobs"`
	}
	if err := json.Unmarshal([]byte(out), &fio); err != nil || len(fio.Jobs) != 1 || fio.Jobs[0].Write.TotalIOs != 1024 {
		t.Fatalf("fio-json: %v\n%.400s", err, out)
	}
	if _, ok := fio.Jobs[0].Write.Clat.Percentile["99.000000"]; !ok {
		t.Errorf("fio-json: no 99.000000 percentile")
	}
}

func TestRunJobFile(t *testing.T) {
	dir := t.TempDir()
	job := filepath.Join(dir, "job.fio")
	data := "[global]\nioengine=libaio\nbs=4k\nsize=2m\n\n[reader]\nrw=randread\n\n[writer]\nrw=write\nbs=64k\n"
	if err := os.WriteFile(job, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, err := runCLI(t, "run", job, "--target", "file://"+dir, "--no-save", "--quiet")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if !strings.Contains(out, "randread") || !strings.Contains(out, "write") {
		t.Errorf("want both jobs in the table:\n%s", out)
	}
	if !strings.Contains(stderr, "ioengine") {
		t.Errorf("want a note about ioengine, stderr:\n%s", stderr)
	}
}

func TestBadInputIsOneClearError(t *testing.T) {
	dir := t.TempDir()
	badJob := filepath.Join(dir, "bad.fio")
	os.WriteFile(badJob, []byte("[j]\nrw=read\nzonemode=zbd\n"), 0o644)
	roDir := filepath.Join(dir, "ro")
	os.Mkdir(roDir, 0o500)
	existing := filepath.Join(dir, "existing.img")
	os.WriteFile(existing, make([]byte, 1<<20), 0o644)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"unknown backend", []string{"run", "--target", "ftp://x/y"}, "unknown backend"},
		{"bad url", []string{"run", "--target", "::nope"}, "target URL"},
		{"no target", []string{"run", "--rw", "read"}, "no target"},
		{"bad size", []string{"run", "--target", "null://", "--size", "12q"}, "size"},
		{"bad runtime", []string{"run", "--target", "null://", "--runtime", "soon"}, "runtime"},
		{"bad rw", []string{"run", "--target", "null://", "--rw", "sideways"}, "rw"},
		{"unsupported fio option", []string{"run", badJob, "--target", "null://"}, "bad.fio:3"},
		{"unknown profile", []string{"run", "--target", "null://", "--profile", "nope"}, "nope"},
		{"password in url", []string{"run", "--target", "smb://u:hunter2@127.0.0.1/s/f"}, "password"},
		{"unwritable results", []string{"run", "--target", "null://", "--size", "1m", "--results", filepath.Join(roDir, "sub")}, "results directory"},
		{"existing file", []string{"run", "--target", "file://" + existing, "--rw", "write", "--no-save"}, "allow-destructive"},
		{"bad format", []string{"run", "--target", "null://", "--output-format", "xml"}, "output-format"},
		{"migrate on a testbed that is not up", []string{"migrate", "--target", "testbed:smb", "--testbed-state", filepath.Join(dir, "none")}, "no testbed running"},
		{"bad submission", []string{"run", "--target", "null://", "--submission", "async"}, "--submission"},
		{"queue on a backend without one", []string{"run", "--target", "null://", "--size", "1m", "--iodepth", "4", "--submission", "queue", "--no-save"}, "the null backend has no queue"},
	}
	if os.Getuid() == 0 {
		// root writes into a 0500 directory anyway
		cases = append(cases[:9], cases[10:]...)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := runCLI(t, c.args...)
			if err == nil {
				t.Fatalf("no error")
			}
			msg := err.Error()
			// Bad input has its own exit status (main.go's table); an existing image the
			// run may not overwrite is found when the target opens, a failed run.
			want := exitUsage
			if c.name == "existing file" || c.name == "queue on a backend without one" {
				want = exitFailed
			}
			if code := exitCode(err); code != want {
				t.Errorf("exit %d, want %d", code, want)
			}
			if !strings.Contains(msg, c.want) || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line containing %q", msg, c.want)
			}
			if strings.Contains(msg, "hunter2") {
				t.Errorf("error leaks the password: %q", msg)
			}
		})
	}
}

// TestBinaryExitStatus checks the real process: one line on stderr and a non-zero exit.
func TestBinaryExitStatus(t *testing.T) {
	cmd := exec.Command(binary(t), "run", "--target", "nosuch://x")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != exitUsage {
		t.Fatalf("exit: %v, want status %d (bad input)", err, exitUsage)
	}
	if lines := strings.Split(strings.TrimSpace(stderr.String()), "\n"); len(lines) != 1 || !strings.Contains(lines[0], "unknown backend") {
		t.Errorf("stderr %q: want one line naming the unknown backend", stderr.String())
	}
}

func TestRunJobFileJobsRunTogether(t *testing.T) {
	dir := t.TempDir()
	job := filepath.Join(dir, "job.fio")
	// 16 I/Os at 50 per second: each job takes about 300 ms.
	data := "[global]\nbs=4k\nsize=64k\nrate_iops=50\n\n[a]\nrw=randread\nnumjobs=2\n\n[b]\nrw=randwrite\n"
	if err := os.WriteFile(job, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, err := runCLI(t, "run", job, "--target", "null://", "--no-save", "--quiet", "--json")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	var runs []results.Run
	if err := json.Unmarshal([]byte(out), &runs); err != nil || len(runs) != 2 {
		t.Fatalf("--json: %v, %d runs", err, len(runs))
	}
	a, b := runs[0], runs[1]
	if a.Job == nil || b.Job == nil || a.Job.Name != "a" || b.Job.Name != "b" || a.Job.Set != b.Job.Set {
		t.Fatalf("job info %+v %+v", a.Job, b.Job)
	}
	if !(a.Start.Before(b.End) && b.Start.Before(a.End)) {
		t.Errorf("jobs of one group did not overlap: a %s..%s b %s..%s", a.Start, a.End, b.Start, b.End)
	}
	if len(a.Jobs) != 2 || a.Jobs[0].Read.IOs+a.Jobs[1].Read.IOs != a.Read.IOs {
		t.Errorf("per-job figures of numjobs=2: %+v", a.Jobs)
	}
	if strings.Contains(stderr, "one after another") {
		t.Errorf("stale note: %s", stderr)
	}

	out, stderr, err = runCLI(t, "run", job, "--target", "null://", "--no-save", "--quiet", "--output-format", "json+")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	var fio struct {
		Version string `json:"fio version"`
		Jobs    []struct {
			JobName string `json:"jobname"`
			Read    struct {
				TotalIOs int64 `json:"total_ios"`
				Clat     struct {
					Bins map[string]int64 `json:"bins"`
				} `json:"clat_ns"`
			} `json:"read"`
		} `json:"jobs"`
	}
	if err := json.Unmarshal([]byte(out), &fio); err != nil || len(fio.Jobs) != 3 || !strings.HasPrefix(fio.Version, "vmstorbench-") {
		t.Fatalf("json+: %v\n%.600s", err, out)
	}
	for _, j := range fio.Jobs[:2] {
		var n int64
		for _, c := range j.Read.Clat.Bins {
			n += c
		}
		if j.JobName != "a" || j.Read.TotalIOs != 16 || n != 16 {
			t.Errorf("clone entry %s: %d I/Os, bins count %d", j.JobName, j.Read.TotalIOs, n)
		}
	}
}
func TestTableWidth(t *testing.T) {
	env := func(m map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	var buf bytes.Buffer
	for _, tc := range []struct {
		env  map[string]string
		want int
	}{
		{nil, 0}, // not a terminal, no $COLUMNS: the full table
		{map[string]string{"COLUMNS": "100"}, 100},
		{map[string]string{"COLUMNS": " 80 "}, 80},
		{map[string]string{"COLUMNS": "wide"}, 0},
		{map[string]string{"COLUMNS": "-3"}, 0},
	} {
		if got := tableWidth(&buf, env(tc.env)); got != tc.want {
			t.Errorf("tableWidth with %v = %d, want %d", tc.env, got, tc.want)
		}
	}
}

func TestRunDefaultResultsDir(t *testing.T) {
	// Run from a repository root, documents must not land in the results package's folder.
	dir := t.TempDir()
	t.Chdir(dir)
	if _, stderr, err := runCLI(t, "run", "--target", "null://", "--rw", "randread", "--size", "1m", "--quiet"); err != nil {
		t.Fatalf("run: %v\n%s", err, stderr)
	}
	runs, err := results.LoadAll(filepath.Join(dir, "vmstorbench-results"))
	if err != nil || len(runs) != 1 {
		t.Fatalf("default results directory: %v, %d runs", err, len(runs))
	}
	if _, err := os.Stat(filepath.Join(dir, "results")); !os.IsNotExist(err) {
		t.Errorf("./results exists: %v", err)
	}
}
