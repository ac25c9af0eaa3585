package runner_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vmstorbench/vmstorbench/runner"
)

// TestPlanEngineJobs: without --target, a job of fio's libiscsi, nbd or nfs engine gets
// the URL its engine connects to as its target, with a note saying so; a --target
// replaces it, with a note; what cannot be mapped is an error naming file, line and job.
func TestPlanEngineJobs(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, text  string
		haveTargets bool
		target      string // want, without --target
		note, err   string
	}{
		{"libiscsi", "[a]\nioengine=libiscsi\nrw=randread\n" + `filename=iscsi\://127.0.0.1\:3260/iqn.2016-02.com.fio\:system\:fio/1`, false,
			"iscsi://127.0.0.1:3260/iqn.2016-02.com.fio:system:fio/1",
			"a: ioengine=libiscsi filename=iscsi://127.0.0.1:3260/iqn.2016-02.com.fio:system:fio/1 runs on iscsi://127.0.0.1:3260/iqn.2016-02.com.fio:system:fio/1", ""},
		{"nbd", "[global]\nioengine=nbd\nuri=nbd+unix:///?socket=/tmp/nbd.sock\n[b]\nrw=randrw", false,
			"nbd+unix:///?socket=/tmp/nbd.sock", "b: ioengine=nbd uri=nbd+unix:///?socket=/tmp/nbd.sock runs on nbd+unix:///?socket=/tmp/nbd.sock", ""},
		{"nfs", "[c]\nioengine=nfs\nnfs_url=nfs://127.0.0.1/export?mountport=20048\nfilename=vm.img", false,
			"nfs://127.0.0.1/export/vm.img?export=/export&mountport=20048&stable=unstable", "c: ioengine=nfs nfs_url=nfs://127.0.0.1/export?mountport=20048 filename=vm.img runs on", ""},
		{"replaced by --target", "[d]\nioengine=nbd\nuri=nbd://127.0.0.1/e", true, "", "d: ioengine=nbd uri=nbd://127.0.0.1/e replaced by the target", ""},
		{"still the engine note", "[e]\nioengine=nbd\nuri=nbd://127.0.0.1/e", false, "nbd://127.0.0.1/e", "e: ioengine=nbd replaced by the vmstorbench backend", ""},
		{"unmappable", "[f]\nioengine=nbd\nuri=nbd://127.0.0.1/e?tls-certificates=/c", false, "", "", `:1: job "f": uri=nbd://127.0.0.1/e?tls-certificates=/c: URL option "tls-certificates"`},
		{"unmappable is replaced too", "[g]\nioengine=nbd\nuri=nbd://127.0.0.1/e?tls-certificates=/c", true, "", "g: ioengine=nbd uri=nbd://127.0.0.1/e?tls-certificates=/c replaced by the target", ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(dir, tt.name+".fio")
			if err := os.WriteFile(file, []byte(tt.text+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			jobs, notes, err := runner.PlanJobs(runner.JobPlan{JobFile: file, HaveTargets: tt.haveTargets})
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one with %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(jobs) != 1 || jobs[0].Target != tt.target {
				t.Errorf("test %d: jobs %+v, want one with target %q", i, jobs, tt.target)
			}
			if !slices.ContainsFunc(notes, func(n string) bool { return strings.HasPrefix(n, tt.note) }) {
				t.Errorf("notes %q, want one starting %q", notes, tt.note)
			}
		})
	}
}
