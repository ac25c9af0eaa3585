package main

import (
	"encoding/xml"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/vmstorbench/vmstorbench/results"
)

// measure runs a short real workload repeat times and returns the directory of its results.
func measure(t *testing.T, target string, repeat int, extra ...string) string {
	t.Helper()
	dir := t.TempDir()
	args := append([]string{"run", "--target", target, "--rw", "randread", "--bs", "4k", "--size", "1m",
		"--runtime", "100ms", "--time-based", "--repeat", strconv.Itoa(repeat), "--results", dir, "--quiet"}, extra...)
	if _, stderr, err := runCLI(t, args...); err != nil {
		t.Fatalf("run: %v\n%s", err, stderr)
	}
	return dir
}

// rewrite copies the runs of dir into a new directory after edit changes each of them.
func rewrite(t *testing.T, dir string, edit func(i int, r *results.Run)) string {
	t.Helper()
	runs, err := results.LoadAll(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	for i, r := range runs {
		edit(i, r)
		if _, err := results.Save(out, r); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// exitCode is the status main would exit with for err.
func exitCode(err error) int {
	var ee *exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	}
	return 1
}

type junitDoc struct {
	Tests    int `xml:"tests,attr"`
	Failures int `xml:"failures,attr"`
	Suite    []struct {
		Cases []struct {
			Name    string `xml:"name,attr"`
			Failure *struct {
				Message string `xml:"message,attr"`
			} `xml:"failure"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

func readJUnit(t *testing.T, path string) junitDoc {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var j junitDoc
	if err := xml.Unmarshal(data, &j); err != nil || len(j.Suite) != 1 {
		t.Fatalf("JUnit file: %v, %d suites\n%s", err, len(j.Suite), data)
	}
	return j
}

func TestCompareRealRuns(t *testing.T) {
	// Capped at 5000 IOPS: uncapped runs on a busy machine spread by several times their
	// median (one descheduled run is enough), and the decisions below need steady figures.
	steady := []string{"--rate-iops", "5000", "--runtime", "200ms"}
	base, cand := measure(t, "mem://", 3, steady...), measure(t, "mem://", 3, steady...)
	out := t.TempDir()
	junitPath, mdPath := filepath.Join(out, "compare.xml"), filepath.Join(out, "compare.md")

	// Two real sets of runs of one workload: no tenfold drop, so no regression.
	stdout, _, err := runCLI(t, "compare", base, cand, "--fail-on", "iops<-90%", "--junit", junitPath, "--markdown", mdPath)
	if exitCode(err) != 0 {
		t.Fatalf("real runs: exit %d: %v\n%s", exitCode(err), err, stdout)
	}
	for _, w := range []string{"Result: no regression: 1 check passed", "Base: 3 runs, candidate: 3 runs, 1 case.",
		"Target: mem://", "Workload: randread bs=4KiB", "p99.9", "(n=3)"} {
		if !strings.Contains(stdout, w) {
			t.Errorf("output lacks %q:\n%s", w, stdout)
		}
	}
	if j := readJUnit(t, junitPath); j.Tests != 1 || j.Failures != 0 {
		t.Errorf("JUnit: %d tests, %d failures; want 1 and 0", j.Tests, j.Failures)
	}
	if md, err := os.ReadFile(mdPath); err != nil || !strings.Contains(string(md), "**Result:** no regression") ||
		!strings.Contains(string(md), "| read | iops") {
		t.Errorf("Markdown file: %v\n%s", err, md)
	}

	// A set against itself: every change is 0 and within noise, whatever the thresholds.
	stdout, _, err = runCLI(t, "compare", base, base, "--fail-on", "iops<-1%,p99>+1%", "--format", "md")
	if exitCode(err) != 0 || !regexp.MustCompile(`\| +\+0\.0% \| within noise \(ranges overlap\) \| ok +\|`).MatchString(stdout) {
		t.Errorf("self-comparison: exit %d: %v\n%s", exitCode(err), err, stdout)
	}

	// One candidate run at a tenth of the IOPS, the others as measured: the ranges overlap,
	// so whatever the median does it is within noise and not a regression.
	noisy := rewrite(t, base, func(i int, r *results.Run) {
		if i == 0 {
			r.Read.IOPS /= 10
			r.Read.BWBps /= 10
		}
	})
	stdout, _, err = runCLI(t, "compare", base, noisy, "--fail-on", "iops<-5%")
	if exitCode(err) != 0 || !strings.Contains(stdout, "within noise (ranges overlap)") {
		t.Errorf("one slow repeat: exit %d: %v\n%s", exitCode(err), err, stdout)
	}

	// Every run at a tenth of the IOPS, latencies as they were (and one more run that
	// failed): a regression in IOPS only.
	slow := rewrite(t, base, func(_ int, r *results.Run) {
		r.Read.IOPS /= 10
		r.Read.BWBps /= 10
	})
	runs, err := results.LoadAll(cand)
	if err != nil {
		t.Fatal(err)
	}
	failed := *runs[0]
	failed.ID, failed.Complete, failed.Error, failed.Read = results.NewID(), false, "mem: injected target failure", nil
	if _, err := results.Save(slow, &failed); err != nil {
		t.Fatal(err)
	}
	stdout, _, err = runCLI(t, "compare", base, slow, "--fail-on", "iops<-10%,p99>+50%", "--junit", junitPath)
	if exitCode(err) != 1 {
		t.Fatalf("regression: exit %d: %v\n%s", exitCode(err), err, stdout)
	}
	if msg := err.Error(); !strings.Contains(msg, "regression: 1 of 2 checks failed") || !strings.Contains(msg, "read iops changed -90.0%, beyond iops<-10%: worse (ranges apart)") {
		t.Errorf("error %q", msg)
	}
	for _, w := range []string{"REGRESSION", "worse (ranges apart)", "FAIL iops<-10%", "Incomplete runs, excluded",
		"mem: injected target failure", "candidate: 4 runs"} {
		if !strings.Contains(stdout, w) {
			t.Errorf("output lacks %q:\n%s", w, stdout)
		}
	}
	j := readJUnit(t, junitPath)
	if j.Tests != 2 || j.Failures != 1 {
		t.Errorf("JUnit: %d tests, %d failures; want 2 and 1", j.Tests, j.Failures)
	}
	for _, c := range j.Suite[0].Cases {
		if strings.HasSuffix(c.Name, "read iops") != (c.Failure != nil) {
			t.Errorf("test case %q failure %+v: only read iops fails", c.Name, c.Failure)
		}
	}
}

func TestCompareRefusesDifferentCases(t *testing.T) {
	memDir, nullDir := measure(t, "mem://", 1), measure(t, "null://", 1)
	bigger := measure(t, "mem://", 1, "--iodepth", "4")
	for _, c := range []struct {
		name       string
		base, cand string
		flags      []string
		want       []string
	}{
		{"targets", memDir, nullDir, nil, []string{"did not measure the same cases", "only in base: mem:// randread",
			"only in candidate: null:// randread", "--match-targets"}},
		{"workloads", memDir, bigger, nil, []string{"mem:// randread bs=4KiB iodepth=1 numjobs=1: workload differs in iodepth 1 vs 4"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			stdout, _, err := runCLI(t, append([]string{"compare", c.base, c.cand}, c.flags...)...)
			if exitCode(err) != 2 {
				t.Fatalf("exit %d: %v, want 2 (refused)\n%s", exitCode(err), err, stdout)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "\n") || stdout != "" {
				t.Errorf("want one error line and no report; error %q, stdout:\n%s", err, stdout)
			}
		})
	}
	// Told that the targets differ on purpose, it compares them.
	stdout, _, err := runCLI(t, "compare", memDir, nullDir, "--match-targets")
	if err != nil || !strings.Contains(stdout, "Target: mem:// → null://") || !strings.Contains(stdout, "single run, no noise estimate") {
		t.Errorf("--match-targets: %v\n%s", err, stdout)
	}
}

func TestCompareUsageErrors(t *testing.T) {
	dir := measure(t, "null://", 1)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"compare", dir}, "want two arguments, BASE and CANDIDATE"},
		{[]string{"compare", dir, dir, dir}, "got 3"},
		{[]string{"compare", dir, filepath.Join(dir, "nosuch")}, "compare: candidate: results:"},
		{[]string{"compare", t.TempDir(), dir}, "compare: base: results: no *.json files"},
		{[]string{"compare", dir, dir, "--fail-on", "iops<-10%,p99>20"}, `compare: --fail-on: threshold "p99>20": the limit "20" needs a % sign`},
		{[]string{"compare", dir, dir, "--fail-on", "latency>+5%"}, `threshold "latency>+5%": unknown metric "latency"`},
		{[]string{"compare", dir, dir, "--format", "csv"}, `unknown --format "csv"`},
		{[]string{"compare", dir, dir, "--alpha", "0"}, "--alpha 0: want a level between 0 and 1"},
		{[]string{"compare", dir, dir, "--no-such-flag"}, "unknown flag: --no-such-flag"},
		{[]string{"compare", dir, dir, "--junit", filepath.Join(dir, "nosuch", "x.xml")}, "compare: --junit:"},
	} {
		t.Run(strings.Join(c.args[1:], " "), func(t *testing.T) {
			_, _, err := runCLI(t, c.args...)
			if exitCode(err) != 2 || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("exit %d, error %v: want 2 and one line containing %q", exitCode(err), err, c.want)
			}
		})
	}
}

// TestCompareBinaryExitStatus checks the statuses CI scripts see from the real process.
func TestCompareBinaryExitStatus(t *testing.T) {
	base := measure(t, "null://", 2)
	slow := rewrite(t, base, func(_ int, r *results.Run) { r.Read.IOPS /= 10 })
	for _, c := range []struct {
		args []string
		want int
	}{
		{[]string{"compare", base, base, "--fail-on", "iops<-10%"}, 0},
		{[]string{"compare", base, slow, "--fail-on", "iops<-10%"}, 1},
		{[]string{"compare", base, slow}, 0}, // no thresholds: report only
		{[]string{"compare", base, filepath.Join(base, "nosuch")}, 2},
	} {
		cmd := exec.Command(binary(t), c.args...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != c.want {
			t.Errorf("%v: exit %d, want %d; stderr %s", c.args[3:], code, c.want, stderr.String())
		}
		if lines := strings.Count(strings.TrimSpace(stderr.String()), "\n"); code != 0 && lines != 0 {
			t.Errorf("%v: stderr %q: want one line", c.args[3:], stderr.String())
		}
	}
}

// TestCompareMigrationDowntime: --fail-on 'downtime>+20%' fails a candidate whose QEMU
// downtime rose beyond the noise of the repeats, and not one whose repeats overlap.
func TestCompareMigrationDowntime(t *testing.T) {
	runs := measure(t, "mem://", 3)
	withDowntime := func(ms ...float64) string {
		return rewrite(t, runs, func(i int, r *results.Run) {
			r.Migration = &results.Migration{Mode: "precopy", Security: "none", Outcome: "completed", Storage: "mirror",
				Link: &results.MigrationLink{Preset: "lan"}, QEMUDowntimeMS: ms[i], PauseMS: ms[i] + 10, LongestStallMS: 3 * ms[i]}
		})
	}
	base := withDowntime(40, 42, 38)
	for _, c := range []struct {
		name string
		cand string
		code int
		want string
	}{
		{"regression", withDowntime(60, 62, 58), 1, "migration downtime changed +50.0%, beyond downtime>+20%"},
		{"noise", withDowntime(60, 30, 80), 0, "crosses downtime>+20% within noise"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, stderr, err := runCLI(t, "compare", base, c.cand, "--fail-on", "downtime>+20%")
			if exitCode(err) != c.code || !strings.Contains(out+stderr, c.want) {
				t.Errorf("exit %d (%v), want %d and %q:\n%s%s", exitCode(err), err, c.code, c.want, out, stderr)
			}
			if !strings.Contains(out, "precopy none lan mirror") {
				t.Errorf("the case is not named by its scenario:\n%s", out)
			}
		})
	}
}
