package file

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/bench"
	"github.com/vmstorbench/vmstorbench/workloads"
)

// tmpfs mounts a size-limited tmpfs on a new directory and unmounts it after the test.
func tmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs to test free-space checks (needs root or CAP_SYS_ADMIN): %v: %s", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

func TestSpaceCheckRefusesBeforeWriting(t *testing.T) {
	dir := tmpfs(t, "64m")
	for _, c := range []struct {
		name string
		url  string
		p    backends.OpenParams
		want string
	}{
		{"directory", "file://" + dir, backends.OpenParams{Size: 100 << 20, Write: true, Read: true}, "need 100.0 MiB for 1 bench file(s)"},
		{"new file", "file://" + filepath.Join(dir, "vm.img"), backends.OpenParams{Size: 1 << 30, Write: true}, "need 1.0 GiB for 1 bench file(s)"},
		// 8 MiB here is fine alone, but the rest of the run needs 7 × 8 MiB more.
		{"whole run", "file://" + dir, backends.OpenParams{Size: 8 << 20, Read: true, SpaceNeeded: 56 << 20, SpaceFiles: 7}, "need 64.0 MiB for 8 bench file(s)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			tg, err := openURL(t, c.url, c.p)
			if err == nil {
				tg.Close()
				t.Fatal("a run larger than the free space was accepted")
			}
			msg := err.Error()
			if !strings.Contains(msg, c.want) || !strings.Contains(msg, "free on "+dir) || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line with %q and the free space of %s", msg, c.want, dir)
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 0 {
				t.Errorf("refused run left %d file(s) behind (%s)", len(ents), ents[0].Name())
			}
		})
	}
	// What fits is accepted, and an existing file needs only what it grows by.
	tg, err := openURL(t, "file://"+dir, backends.OpenParams{Size: 40 << 20, Write: true, Read: true, Keep: true})
	if err != nil {
		t.Fatalf("40 MiB of 64: %v", err)
	}
	tg.Close()
	tg, err = openURL(t, "file://"+dir, backends.OpenParams{Size: 40 << 20, Write: true, Read: true})
	if err != nil {
		t.Fatalf("reusing the kept 40 MiB file needs nothing new, refused: %v", err)
	}
	tg.Close()
}

func TestDropCache(t *testing.T) {
	dir := t.TempDir()
	tg, err := openURL(t, "file://"+dir, backends.OpenParams{Size: 1 << 20, Write: true, Read: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	got, err := tg.(backends.CacheDropper).DropCache()
	if err != nil || got != "dropped (posix_fadvise DONTNEED)" {
		t.Errorf("DropCache: %q, %v", got, err)
	}
}

// The engine tells the first target what the whole run needs: 8 jobs × 3 files × 4 MiB do not
// fit in 64 MiB although each file does, and nothing is written.
func TestRunRefusedWhenAllJobsDoNotFit(t *testing.T) {
	dir := tmpfs(t, "64m")
	w := workloads.Workload{RW: "randread", Size: 12 << 20, NumJobs: 8, NrFiles: 3, Runtime: 1}
	_, err := bench.Run(context.Background(), bench.Config{Target: "file://" + dir, Workload: w})
	if err == nil || !strings.Contains(err.Error(), "need 96.0 MiB for 24 bench file(s)") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("want a one-line refusal naming 96 MiB for 24 files, got %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("refused run left %d file(s) behind", len(ents))
	}
	// Fewer jobs fit: the run goes ahead, lays the files out and removes them.
	w.NumJobs = 2
	var laid, total int64
	res, err := bench.Run(context.Background(), bench.Config{Target: "file://" + dir, Workload: w, LayoutProgress: func(d, t int64) { laid, total = d, t }})
	if err != nil {
		t.Fatal(err)
	}
	if laid != 24<<20 || total != 24<<20 {
		t.Errorf("layout progress %d of %d, want 24 MiB of 24 MiB", laid, total)
	}
	if res.Target.Info["files"] != "3" || res.Target.Info["cache"] != "dropped (posix_fadvise DONTNEED)" {
		t.Errorf("target info %v", res.Target.Info)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("run left %d file(s) behind", len(ents))
	}
}
