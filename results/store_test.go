package results

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vmstorbench/vmstorbench/workloads"
)

// sampleLatency records n values spread over lo..hi.
func sampleLatency(n int, lo, hi int64) Latency {
	h := NewHistogram()
	for i := range n {
		RecordClamped(h, lo+(hi-lo)*int64(i)/int64(max(n-1, 1)))
	}
	return LatencyFrom(h, lo, hi)
}

// sampleRun is a complete mixed-workload run with every part filled in.
func sampleRun() *Run {
	start := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	w := workloads.Workload{Name: "vm-boot", RW: workloads.RandMixed, RWMixRead: 70,
		BS: [2]workloads.BlockSize{workloads.Fixed(4096), workloads.Fixed(65536)}, Size: 64 << 20,
		IODepth: 16, NumJobs: 2, Runtime: 2 * time.Second, TimeBased: true, Verify: "crc32c"}.Defaults()
	return &Run{
		Schema: SchemaVersion, Tool: Tool{Name: "vmstorbench", Version: "0.1.0"}, ID: "0123456789abcdef",
		Start: start, End: start.Add(2100 * time.Millisecond), Command: []string{"vmstorbench", "run"},
		Host:     Host{Hostname: "h", OS: "linux", Arch: "amd64", CPUs: 2, GoVersion: "go1.26.8"},
		Target:   Target{URL: "smb://bench@127.0.0.1:4450/share/disk.img", Backend: "smb", Info: map[string]string{"security": "encrypted"}},
		Workload: w, Complete: true, RuntimeNS: int64(2 * time.Second),
		Submission: "goroutines", SubmissionFallback: "thinktime_spin: a slot's spinning pause would stall the job's other I/Os",
		Read:   &DirStats{IOs: 7000, Bytes: 7000 * 4096, IOPS: 3500, BWBps: 3500 * 4096, Lat: sampleLatency(7000, 50_000, 2_000_000)},
		Write:  &DirStats{IOs: 3000, Bytes: 3000 * 65536, Errors: 1, IOPS: 1500, BWBps: 1500 * 65536, Lat: sampleLatency(3000, 200_000, 9_000_000)},
		Verify: &Verify{Algorithm: "crc32c", Checked: 7000},
		CPU:    CPU{UserNS: 1e9, SysNS: 5e8, UsrPct: 50, SysPct: 25},
		Series: Series{IntervalNS: 1e9, Points: []Point{
			{TNS: 1e9, Read: &PointStats{IOs: 3000, Bytes: 3000 * 4096, IOPS: 3000, BWBps: 3000 * 4096}, Write: &PointStats{IOs: 1400, Bytes: 1400 * 65536, IOPS: 1400, BWBps: 1400 * 65536}},
			{TNS: 2e9, Read: &PointStats{IOs: 4000, Bytes: 4000 * 4096, IOPS: 4000, BWBps: 4000 * 4096}, Write: &PointStats{IOs: 1600, Bytes: 1600 * 65536, IOPS: 1600, BWBps: 1600 * 65536}},
		}},
		Labels: map[string]string{"suite": "smoke"},
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "sub")
	r := sampleRun()
	path, err := Save(dir, r)
	if err != nil {
		t.Fatal(err)
	}
	if want := "20260304T050607Z-smb-vm_boot-01234567.json"; filepath.Base(path) != want {
		t.Errorf("file name %s, want %s", filepath.Base(path), want)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, r) {
		t.Errorf("round trip changed the run:\n got %+v\nwant %+v", got, r)
	}
	data, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(data), "{\n  \"schema\": ") {
		t.Errorf("not indented JSON: %.40q", data)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the result (temp file left?)", len(entries))
	}
}

func TestSaveFillsIDAndSchema(t *testing.T) {
	r := sampleRun()
	r.ID, r.Schema, r.Workload.Name, r.Target.Backend = "", "", "", "a/b"
	path, err := Save(t.TempDir(), r)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(r.ID) || r.Schema != SchemaVersion {
		t.Errorf("ID %q schema %q", r.ID, r.Schema)
	}
	if want := "20260304T050607Z-a_b-randrw-" + r.ID[:8] + ".json"; filepath.Base(path) != want {
		t.Errorf("file name %s, want %s", filepath.Base(path), want)
	}
}

func TestSaveUnwritable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o644)
	if _, err := Save(filepath.Join(file, "dir"), sampleRun()); err == nil || !strings.Contains(err.Error(), "create result directory") {
		t.Errorf("Save under a file: %v", err)
	}
	if os.Geteuid() == 0 {
		return // root writes anywhere
	}
	ro := t.TempDir()
	os.Chmod(ro, 0o555)
	if _, err := Save(ro, sampleRun()); err == nil || !strings.Contains(err.Error(), "not writable") {
		t.Errorf("Save into read-only dir: %v", err)
	}
}

func TestLoadSchema(t *testing.T) {
	dir := t.TempDir()
	for name, doc := range map[string]string{
		"newer.json":  `{"schema":"vmstorbench.result/2","id":"x"}`,
		"minor.json":  `{"schema":"vmstorbench.result/1.3","id":"x","future_field":1}`,
		"other.json":  `{"fio version":"fio-3.33"}`,
		"broken.json": `{"schema":`,
	} {
		os.WriteFile(filepath.Join(dir, name), []byte(doc), 0o644)
	}
	if _, err := Load(filepath.Join(dir, "newer.json")); err == nil || !strings.Contains(err.Error(), "newer vmstorbench") {
		t.Errorf("newer major: %v", err)
	}
	if r, err := Load(filepath.Join(dir, "minor.json")); err != nil || r.ID != "x" {
		t.Errorf("newer minor: %v", err)
	}
	if _, err := Load(filepath.Join(dir, "other.json")); err == nil || !strings.Contains(err.Error(), "not a vmstorbench result") {
		t.Errorf("foreign JSON: %v", err)
	}
	if _, err := Load(filepath.Join(dir, "broken.json")); err == nil || !strings.Contains(err.Error(), "broken.json") {
		t.Errorf("broken JSON: %v", err)
	}
}

func TestLoadAll(t *testing.T) {
	dir := t.TempDir()
	var paths []string
	for i, name := range []string{"b", "a", "c"} {
		r := sampleRun()
		r.ID = strings.Repeat(name, 8)
		r.Start = r.Start.Add(time.Duration(i) * time.Hour)
		p, err := Save(dir, r)
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o644)
	ids := func(runs []*Run) string {
		var s []string
		for _, r := range runs {
			s = append(s, r.ID[:1])
		}
		return strings.Join(s, "")
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{dir}, "bac"}, // sorted by file name, i.e. by start time
		{[]string{filepath.Join(dir, "*-aaaa*.json"), paths[2]}, "ac"},
		{[]string{paths[2], paths[0]}, "cb"},
	} {
		runs, err := LoadAll(tc.args...)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if got := ids(runs); got != tc.want {
			t.Errorf("%v: got %s, want %s", tc.args, got, tc.want)
		}
	}
	for _, bad := range [][]string{nil, {filepath.Join(dir, "*.nope")}, {t.TempDir()}, {filepath.Join(dir, "missing.json")}, {filepath.Join(dir, "notes.txt")}} {
		if _, err := LoadAll(bad...); err == nil {
			t.Errorf("LoadAll(%v) succeeded", bad)
		}
	}
}

func TestLoadAllSkipUnreadable(t *testing.T) {
	dir := t.TempDir()
	if _, err := Save(dir, sampleRun()); err != nil {
		t.Fatal(err)
	}
	// Two files that are not readable results: not JSON, and a directory named like one
	// (unreadable whatever the user's privileges).
	if err := os.WriteFile(filepath.Join(dir, "broken.json"), []byte("{trunc"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "dir.json"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		opt         LoadOptions
		paths       []string
		runs, skips int
		err         string
	}{
		{"refused by default", LoadOptions{}, []string{dir}, 0, 0, "broken.json: not a JSON result"},
		{"skipped on request", LoadOptions{SkipUnreadable: true}, []string{dir}, 1, 2, ""},
		{"nothing readable", LoadOptions{SkipUnreadable: true}, []string{filepath.Join(dir, "broken.json")}, 0, 1, "none of the 1 result files could be read"},
		{"a missing path is still an error", LoadOptions{SkipUnreadable: true}, []string{filepath.Join(dir, "none")}, 0, 0, "no such file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			runs, skipped, err := LoadAllWith(tc.opt, tc.paths...)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || len(runs) != tc.runs || len(skipped) != tc.skips {
				t.Fatalf("%d runs, %d skipped (%v), err %v", len(runs), len(skipped), skipped, err)
			}
		})
	}
}
