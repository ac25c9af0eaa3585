package smb

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/bench"
	"github.com/vmstorbench/vmstorbench/testbed"
	"github.com/vmstorbench/vmstorbench/workloads"
)

// A size twice the share's free space is refused with one line from the server's
// FileFsFullSizeInformation, and the bench file is not left behind.
func TestIntegrationSMBSpaceCheck(t *testing.T) {
	_, eps, password, stateDir := startSambaDir(t)
	shareDir := filepath.Join(stateDir, "share")
	t.Setenv(PasswordEnv, password)
	var st syscall.Statfs_t
	if err := syscall.Statfs(shareDir, &st); err != nil {
		t.Fatal(err)
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	w := workloads.Workload{RW: "write", Size: 2 * free / (1 << 20) * (1 << 20)}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := bench.Run(ctx, bench.Config{Target: eps["smb"].URL, Workload: w})
	if err == nil {
		t.Fatalf("a run of %d bytes with %d free was accepted", w.Size, free)
	}
	msg := err.Error()
	t.Log(msg)
	want := "need " + backends.HumanBytes(w.Size) + " for 1 bench file(s), "
	if !strings.Contains(msg, want) || !strings.Contains(msg, ` free on \\127.0.0.1\`) || strings.Contains(msg, "\n") {
		t.Errorf("error %q: want one line with %q and the share", msg, want)
	}
	if _, err := os.Stat(filepath.Join(shareDir, testbed.SambaFile)); !os.IsNotExist(err) {
		t.Errorf("refused run left its bench file: %v", err)
	}
}

// A URL naming a directory of the share gets the tool's own bench files inside it, one per
// job and file (fio nrfiles), removed at the end.
func TestIntegrationSMBDirectoryFiles(t *testing.T) {
	_, eps, password, stateDir := startSambaDir(t)
	shareDir := filepath.Join(stateDir, "share")
	t.Setenv(PasswordEnv, password)
	dir := filepath.Join(shareDir, "bench")
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o777)
	w := workloads.Workload{Name: "j", RW: "randrw", Size: 4 << 20, NumJobs: 2, NrFiles: 2}
	var seen []string
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	obs := &observerFunc{f: func() {
		if seen == nil {
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				seen = append(seen, e.Name())
			}
		}
	}}
	res, err := bench.Run(ctx, bench.Config{Target: withFile(eps["smb"].URL, "bench", ""), Workload: w, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	if res.Target.Info["files"] != "2" || res.Target.Info["cache"] != "server cache not droppable" {
		t.Errorf("info %v", res.Target.Info)
	}
	if strings.Join(seen, " ") != "vmstorbench.job0.0.dat vmstorbench.job0.1.dat vmstorbench.job1.0.dat vmstorbench.job1.1.dat" {
		t.Errorf("files during the run: %v", seen)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("%d bench file(s) left behind", len(ents))
	}
}

// observerFunc calls f on every completion, one call at a time.
type observerFunc struct {
	mu sync.Mutex
	f  func()
}

func (o *observerFunc) Observe(bench.Completion) {
	o.mu.Lock()
	o.f()
	o.mu.Unlock()
}
