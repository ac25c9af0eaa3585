package runner_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	_ "github.com/vmstorbench/vmstorbench/backends/all"
	"github.com/vmstorbench/vmstorbench/bench"
	"github.com/vmstorbench/vmstorbench/results"
	"github.com/vmstorbench/vmstorbench/runner"
	"github.com/vmstorbench/vmstorbench/workloads"
)

func TestRunHostFileTarget(t *testing.T) {
	dir := t.TempDir()
	w, _, err := workloads.ApplyOptions(workloads.Workload{}, []string{"rw=randread", "bs=4k", "size=1m", "runtime=200ms", "time_based=1"})
	if err != nil {
		t.Fatal(err)
	}
	w.Name = "rr4k"
	var progressCalls, layoutCalls int
	spec := runner.HostSpec{
		Target: runner.Target{URL: "file://" + dir, Name: "scratch"}, Workload: w, SizeGiven: true,
		Interval: 50 * time.Millisecond, Labels: map[string]string{"purpose": "test"},
		Command: []string{"vmstorbench", "run", "--target=smb://u:secret@h/s"},
	}
	r, err := runner.RunHost(context.Background(), spec, runner.Hooks{
		Progress: func(bench.Progress) { progressCalls++ },
		Layout:   func(done, total int64) { layoutCalls++ },
	})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Complete || r.Read == nil || r.Read.IOs == 0 {
		t.Fatalf("result: complete %v read %+v", r.Complete, r.Read)
	}
	if r.Labels[results.TargetLabel] != "scratch" || r.Labels["purpose"] != "test" {
		t.Errorf("labels %v", r.Labels)
	}
	if spec.Labels[results.TargetLabel] != "" {
		t.Errorf("RunHost changed the caller's labels: %v", spec.Labels)
	}
	if !slices.Equal(r.Command, spec.Command) {
		t.Errorf("command %q, want %q", r.Command, spec.Command)
	}
	if progressCalls == 0 || layoutCalls == 0 {
		t.Errorf("hooks: %d progress, %d layout calls", progressCalls, layoutCalls)
	}
	// The engine removes the bench file it created (Keep is false).
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("left in the target directory: %v", left)
	}
}

func TestPlanJobs(t *testing.T) {
	dir := t.TempDir()
	jobFile := filepath.Join(dir, "two.fio")
	data := "[global]\nbs=4k\nsize=1m\n[a]\nrw=read\nfilename=" + filepath.Join(dir, "a.img") + "\n[b]\nrw=write\nfilename=" + filepath.Join(dir, "b.img") + "\nstonewall\n"
	if err := os.WriteFile(jobFile, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name        string
		plan        runner.JobPlan
		wantJobs    int
		wantTargets []string
		wantErr     string
	}{
		{name: "job file, filename= as target", plan: runner.JobPlan{JobFile: jobFile},
			wantJobs: 2, wantTargets: []string{"file://" + filepath.Join(dir, "a.img"), "file://" + filepath.Join(dir, "b.img")}},
		{name: "job file with targets", plan: runner.JobPlan{JobFile: jobFile, HaveTargets: true}, wantJobs: 2, wantTargets: []string{"", ""}},
		{name: "profile", plan: runner.JobPlan{Profile: "oltp", HaveTargets: true}, wantJobs: 1, wantTargets: []string{""}},
		{name: "flags only", plan: runner.JobPlan{Options: []string{"rw=randread", "bs=4k"}, HaveTargets: true}, wantJobs: 1, wantTargets: []string{""}},
		{name: "no target", plan: runner.JobPlan{Profile: "oltp"}, wantErr: "no target"},
		{name: "job file and profile", plan: runner.JobPlan{JobFile: jobFile, Profile: "oltp"}, wantErr: "not both"},
		{name: "missing job file", plan: runner.JobPlan{JobFile: filepath.Join(dir, "none.fio")}, wantErr: "job file"},
	} {
		jobs, _, err := runner.PlanJobs(c.plan)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%s: error %v, want %q", c.name, err, c.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		var targets []string
		for _, j := range jobs {
			targets = append(targets, j.Target)
			if c.plan.JobFile != "" && !j.FromFile {
				t.Errorf("%s: job %q not marked as from the file", c.name, j.Workload.Name)
			}
		}
		if len(jobs) != c.wantJobs || !slices.Equal(targets, c.wantTargets) {
			t.Errorf("%s: %d jobs, targets %q; want %d, %q", c.name, len(jobs), targets, c.wantJobs, c.wantTargets)
		}
	}
	// The second job's stonewall is kept for the job set.
	jobs, _, _ := runner.PlanJobs(runner.JobPlan{JobFile: jobFile})
	if len(jobs) == 2 && (jobs[0].Stonewall || !jobs[1].Stonewall) {
		t.Errorf("stonewall: %v, %v", jobs[0].Stonewall, jobs[1].Stonewall)
	}
	// Notes are returned, with the job's section, not printed.
	_, notes, err := runner.PlanJobs(runner.JobPlan{JobFile: jobFile, HaveTargets: true})
	if err != nil || len(notes) == 0 || !strings.HasPrefix(notes[0], "a: ") {
		t.Errorf("notes with --target over filename=: %q, %v", notes, err)
	}
}

func TestMigrationWorkload(t *testing.T) {
	w, _, err := runner.MigrationWorkload("oltp", nil)
	if err != nil || w.Name != "oltp" {
		t.Errorf("oltp: name %q err %v", w.Name, err)
	}
	w, _, err = runner.MigrationWorkload("oltp", []string{"size=8m"})
	if err != nil || w.Size != 8<<20 {
		t.Errorf("size=8m: size %d err %v", w.Size, err)
	}
	if _, _, err := runner.MigrationWorkload("no-such-profile", nil); err == nil {
		t.Error("an unknown profile was accepted")
	}
}

func TestClassify(t *testing.T) {
	ok := &results.Run{Complete: true}
	migrated := &results.Run{Complete: true, Migration: &results.Migration{Mode: "precopy", Outcome: "completed"}}
	cancelled := &results.Run{Complete: true, Migration: &results.Migration{Mode: "precopy", Outcome: "cancelled"}}
	baseline := &results.Run{Complete: true, Migration: &results.Migration{Mode: "none", Outcome: "none"}}
	corrupt := &results.Run{Complete: true, Verify: &results.Verify{Checked: 8, Mismatches: 1}, Migration: cancelled.Migration}
	for _, c := range []struct {
		name string
		r    *results.Run
		err  error
		want runner.Class
	}{
		{"ok", ok, nil, runner.OK},
		{"migrated", migrated, nil, runner.OK},
		{"baseline", baseline, nil, runner.OK},
		{"cancelled", cancelled, nil, runner.MigrationFailed},
		{"incomplete", &results.Run{}, nil, runner.Failed},
		{"no result", nil, errors.New("boom"), runner.Failed},
		{"verify wins", corrupt, errors.New("boom"), runner.VerifyFailed},
	} {
		if got := runner.Classify(c.r, c.err); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
}

func TestRedactArgs(t *testing.T) {
	got := runner.RedactArgs([]string{"vmstorbench", "--target=smb://u:pw@h/s", "nfs://u:pw@h/e", "--rw", "read"})
	if strings.Contains(strings.Join(got, " "), "pw") || got[3] != "--rw" {
		t.Errorf("redacted %q", got)
	}
}

// goDeps is what `go list -deps pkg` prints: pkg and every package it imports.
func goDeps(t *testing.T, pkg string) []string {
	t.Helper()
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if p, err := exec.LookPath("go"); err == nil {
		goBin = p
	}
	out, err := exec.Command(goBin, "list", "-deps", pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
	}
	return strings.Fields(string(out))
}

// The dependency direction: the guest agent, built into every guest image and booted under
// TCG, pulls in no orchestration (it would bring vm/migrate and QEMU control into the
// guest); runner renders no reports; suite parses and plans only, so `suite check` stays
// light.
func TestDependencyDirection(t *testing.T) {
	const mod = "github.com/vmstorbench/vmstorbench/"
	for _, c := range []struct {
		pkg, must string
		mustNot   []string
	}{
		{"../vm/internal/guestagent", mod + "vm/agent", []string{mod + "runner", mod + "suiterun"}},
		{"../vm/agent", mod + "bench", []string{mod + "runner", mod + "suiterun"}},
		{".", mod + "bench", []string{mod + "report", mod + "suiterun"}},
		{"../suite", mod + "workloads", []string{mod + "runner", mod + "suiterun", mod + "vm/migrate"}},
	} {
		deps := goDeps(t, c.pkg)
		if !slices.Contains(deps, c.must) {
			t.Errorf("%s: go list -deps lacks %s: wrong package?", c.pkg, c.must)
		}
		for _, bad := range c.mustNot {
			if slices.Contains(deps, bad) {
				t.Errorf("%s depends on %s", c.pkg, bad)
			}
		}
	}
}
