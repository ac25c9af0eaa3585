package workloads

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestProfiles(t *testing.T) {
	profiles := Profiles()
	var names []string
	for _, p := range profiles {
		names = append(names, p.Name)
		if err := p.Workload.Validate(); err != nil {
			t.Errorf("%s: %v", p.Name, err)
		}
		if p.Description == "" || strings.Contains(p.Description, "\n") {
			t.Errorf("%s: description must be one line: %q", p.Name, p.Description)
		}
		if p.Workload.Name != p.Name {
			t.Errorf("%s: workload name %q", p.Name, p.Workload.Name)
		}
		if !reflect.DeepEqual(p.Workload, p.Workload.Defaults()) {
			t.Errorf("%s: defaults not filled in", p.Name)
		}
		// A quick run by default.
		if p.Workload.Size != 256<<20 || p.Workload.Runtime != 10*time.Second || !p.Workload.TimeBased {
			t.Errorf("%s: size=%d runtime=%s time_based=%v", p.Name, p.Workload.Size, p.Workload.Runtime, p.Workload.TimeBased)
		}
		// The fio options reproduce the workload.
		w, err := ParseOptions(append(strings.Fields(p.Options), "name="+p.Name))
		if err != nil || !reflect.DeepEqual(w, p.Workload) {
			t.Errorf("%s: options %q give %+v, %v", p.Name, p.Options, w, err)
		}
		// Profile returns the same.
		if w, err := Profile(p.Name); err != nil || !reflect.DeepEqual(w, p.Workload) {
			t.Errorf("Profile(%q) = %+v, %v", p.Name, w, err)
		}
	}
	if !slices.IsSorted(names) {
		t.Errorf("not sorted: %v", names)
	}
	required := []string{"vm-boot", "oltp", "backup", "log", "vm-idle", "seq-read", "seq-write", "rand-read-4k", "rand-write-4k"}
	for _, n := range required {
		if !slices.Contains(names, n) {
			t.Errorf("profile %q missing", n)
		}
	}
}

func TestProfileShapes(t *testing.T) {
	bs := func(min, max int64) [2]BlockSize { return [2]BlockSize{{min, max}, {min, max}} }
	tests := []struct {
		name      string
		rw        string
		rwmixread int
		bs        [2]BlockSize
		iodepth   int
		fsync     int
		limited   bool
	}{
		{"vm-boot", RandRead, 0, bs(4096, 65536), 4, 0, false},
		{"oltp", RandMixed, 70, bs(8192, 8192), 16, 0, false},
		{"backup", SeqRead, 0, bs(1<<20, 1<<20), 4, 0, false},
		{"log", SeqWrite, 0, bs(4096, 4096), 1, 1, false},
		{"vm-idle", RandMixed, 50, bs(4096, 4096), 1, 0, true},
		{"seq-read", SeqRead, 0, bs(1<<20, 1<<20), 8, 0, false},
		{"seq-write", SeqWrite, 0, bs(1<<20, 1<<20), 8, 0, false},
		{"rand-read-4k", RandRead, 0, bs(4096, 4096), 32, 0, false},
		{"rand-write-4k", RandWrite, 0, bs(4096, 4096), 32, 0, false},
	}
	for _, tt := range tests {
		w, err := Profile(tt.name)
		if err != nil {
			t.Fatal(err)
		}
		got := []any{w.RW, w.RWMixRead, w.BS, w.IODepth, w.Fsync, w.RateIOPS != [2]int64{}}
		want := []any{tt.rw, tt.rwmixread, tt.bs, tt.iodepth, tt.fsync, tt.limited}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %v, want %v", tt.name, got, want)
		}
	}
}

func TestProfileUnknown(t *testing.T) {
	_, err := Profile("nope")
	if err == nil || !strings.Contains(err.Error(), `unknown profile "nope" (known: backup, log, oltp,`) {
		t.Errorf("error %v", err)
	}
}
