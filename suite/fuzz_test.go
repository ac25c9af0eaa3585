package suite

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// FuzzParse checks that no suite file makes Parse panic or hang, that its errors name the
// file, and that a suite it accepts can be planned and described. `go test` runs the seeds
// below and testdata/fuzz/FuzzParse; `go test -run '^$' -fuzz FuzzParse ./suite` searches
// further. Job files named by the input resolve in an empty temporary directory (one of
// them, jobs.fio, exists).
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"targets: [mem://]\nworkloads: ['rw=randread bs=4k']\n",
		`name: nfs-vs-smb
description: NFS vs SMB
repeats: 3
interval: 500ms
labels: {lab: loopback}
allow_destructive: false
targets:
  - testbed:nfs-ganesha
  - name: nas-smb
    url: smb://bench@nas.lab/vms/bench.img?sign=required
    secret_env: NAS_SMB_PASSWORD
  - url: testbed:iscsi-tgt
    optional: true
    allow_destructive: true
workloads:
  - rand-read-4k
  - {profile: oltp, runtime: 30s}
  - job_file: jobs.fio
  - profile: rand-write-4k
    runtime: 5s
    iodepth: 4
scenarios:
  - host
  - {mode: precopy, security: tls, link: wan}
  - {mode: postcopy, at: 3s, after: 3s, outside: true, memory_mib: 512}
baseline: baselines/nfs-vs-smb
thresholds: iops<-10%, p99>+20%
`,
		"testbed: true\nworkloads: [{profile: seq-read}]\nscenarios: [{mode: precopy}]\n",
		"a: &x [1, 2]\nb: *x\n",
		"---\ntargets: [mem://]\n---\n",
	} {
		f.Add(s)
	}
	dir := f.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "jobs.fio"), []byte("[global]\nbs=4k\n[a]\nrw=randread\n[b]\nrw=randwrite\nstonewall\n"), 0o644); err != nil {
		f.Fatal(err)
	}
	file := filepath.Join(dir, "suite.yaml")
	f.Fuzz(func(t *testing.T, text string) {
		// A job file outside the directory could be a device or a FIFO: not the parser's
		// concern here.
		if strings.Contains(text, "/dev") || strings.Contains(text, "/proc") || strings.Contains(text, "/sys") {
			return
		}
		s, err := Parse(file, []byte(text), testRegistry())
		if err != nil {
			if !strings.HasPrefix(err.Error(), file) {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		eps := s.DeclaredEndpoints()
		runs := s.Plan(eps)
		if len(runs) == 0 || len(runs) > maxRuns {
			t.Fatalf("accepted a suite of %d runs", len(runs))
		}
		for _, r := range runs[:min(len(runs), 100)] {
			_ = r.String()
		}
		_ = s.Problems(func(string) (string, bool) { return "", false })
		_ = s.Migrates()
		for _, sc := range s.Scenarios {
			_ = sc.Name()
		}
	})
}

// TestParseBoundsTheMatrix: a few lines used to ask Plan for any number of runs (repeats x
// scenarios x jobs x targets); beyond maxRuns the suite is refused.
func TestParseBoundsTheMatrix(t *testing.T) {
	suite := func(targets, workloads int) string {
		var b strings.Builder
		b.WriteString("repeats: 1000\ntargets:\n")
		for i := range targets {
			b.WriteString("  - {name: t" + string(rune('a'+i)) + ", url: 'mem://'}\n")
		}
		b.WriteString("workloads:\n")
		for i := range workloads {
			b.WriteString("  - {name: w" + string(rune('a'+i)) + ", rw: randread, bs: " + strconv.Itoa(i+1) + "k}\n")
		}
		return b.String()
	}
	for _, tc := range []struct {
		name              string
		targets, workload int
		ok                bool
	}{
		{"at the bound", 10, 10, true},
		{"beyond", 11, 10, false},
	} {
		s, err := Parse("suite.yaml", []byte(suite(tc.targets, tc.workload)), testRegistry())
		if tc.ok != (err == nil) {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if err != nil && !strings.Contains(err.Error(), "more than 100000") {
			t.Errorf("%s: %v", tc.name, err)
		}
		if s != nil && len(s.Plan(s.DeclaredEndpoints())) != maxRuns {
			t.Errorf("%s: plan of %d runs", tc.name, len(s.Plan(s.DeclaredEndpoints())))
		}
	}
}
