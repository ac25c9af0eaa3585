package file

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vmstorbench/vmstorbench/backends"
)

func openURL(t *testing.T, url string, p backends.OpenParams) (backends.Target, error) {
	t.Helper()
	return backends.Open(context.Background(), url, p)
}

func TestDirectoryBenchFiles(t *testing.T) {
	dir := t.TempDir()
	tg, err := openURL(t, "file://"+dir, backends.OpenParams{Size: 1 << 20, Job: 3, Write: true, Read: true})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "vmstorbench.job3.dat")
	if st, err := os.Stat(path); err != nil || st.Size() != 1<<20 {
		t.Fatalf("bench file: %v", err)
	}
	// A reading workload's new file is laid out with data, not holes.
	buf := make([]byte, 4096)
	if _, err := tg.ReadAt(buf, 512<<10); err != nil || bytes.Equal(buf, make([]byte, 4096)) {
		t.Fatalf("read laid-out data: %v (all zero: %v)", err, bytes.Equal(buf, make([]byte, 4096)))
	}
	if _, err := tg.WriteAt([]byte("hello"), 100); err != nil {
		t.Fatal(err)
	}
	if err := tg.Sync(); err != nil {
		t.Fatal(err)
	}
	if tg.Size() != 1<<20 {
		t.Errorf("Size %d", tg.Size())
	}
	if err := tg.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("bench file not removed: %v", err)
	}
}

func TestSafetyRules(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "vm.img")
	os.WriteFile(existing, make([]byte, 1<<20), 0o644)
	cases := []struct {
		name    string
		url     string
		p       backends.OpenParams
		wantErr string
		remains bool // the file exists after Close
	}{
		{"read existing", "file://" + existing, backends.OpenParams{Size: 1 << 20, Read: true}, "", true},
		{"write existing refused", "file://" + existing, backends.OpenParams{Size: 1 << 20, Write: true}, "--allow-destructive", true},
		{"write existing allowed", "file://" + existing, backends.OpenParams{Size: 1 << 20, Write: true, AllowDestructive: true}, "", true},
		{"new file removed", "file://" + filepath.Join(dir, "new.img"), backends.OpenParams{Size: 1 << 20, Write: true}, "", false},
		{"new file kept", "file://" + filepath.Join(dir, "kept.img"), backends.OpenParams{Size: 1 << 20, Write: true, Keep: true}, "", true},
		{"remote host", "file://nas/x", backends.OpenParams{Size: 1}, "local path", false},
		{"bad name option", "file://" + dir + "?name=../x", backends.OpenParams{Size: 1}, "plain file name", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tg, err := openURL(t, c.url, c.p)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tg.Close()
			path := strings.TrimPrefix(c.url, "file://")
			if _, err := os.Stat(path); (err == nil) != c.remains {
				t.Errorf("file exists after Close: %v, want %v", err == nil, c.remains)
			}
		})
	}
}

func TestBlockDeviceNeedsAllowDestructive(t *testing.T) {
	// /dev/null is a character device, /dev/loop* may not exist: use any block device there is.
	matches, _ := filepath.Glob("/dev/loop*")
	var dev string
	for _, m := range matches {
		if st, err := os.Stat(m); err == nil && st.Mode()&os.ModeDevice != 0 && st.Mode()&os.ModeCharDevice == 0 {
			dev = m
			break
		}
	}
	if dev == "" {
		t.Skip("no block device to open")
	}
	_, err := openURL(t, "file://"+dev, backends.OpenParams{Size: 4096, Write: true})
	if err == nil || !strings.Contains(err.Error(), "block device") {
		t.Fatalf("err %v, want a refusal naming the block device", err)
	}
}

func TestDirectIOOnTmpfsIsAClearError(t *testing.T) {
	if _, err := os.Stat("/dev/shm"); err != nil {
		t.Skip("no /dev/shm")
	}
	dir, err := os.MkdirTemp("/dev/shm", "vmstorbench-test")
	if err != nil {
		t.Skip(err)
	}
	defer os.RemoveAll(dir)
	tg, err := openURL(t, "file://"+dir, backends.OpenParams{Size: 1 << 20, Write: true, Direct: true})
	if err == nil {
		tg.Close() // a tmpfs with O_DIRECT support (Linux >= 6.6) is fine too
		return
	}
	if !strings.Contains(err.Error(), "O_DIRECT") {
		t.Fatalf("err %v, want it to name O_DIRECT", err)
	}
}

// fio's sync= opens for O_SYNC or O_DSYNC writes; fdatasync=N needs DataSync.
func TestSyncWritesAndDataSync(t *testing.T) {
	for _, c := range []struct {
		mode      string
		want, not int
	}{
		{"", 0, unix.O_DSYNC},
		{"dsync", unix.O_DSYNC, unix.O_SYNC &^ unix.O_DSYNC},
		{"sync", unix.O_SYNC, 0},
	} {
		dir := t.TempDir()
		tg, err := openURL(t, "file://"+dir, backends.OpenParams{Size: 1 << 20, Write: true, SyncWrites: c.mode})
		if err != nil {
			t.Fatal(err)
		}
		fl, err := unix.FcntlInt(uintptr(tg.(*Target).fd), unix.F_GETFL, 0)
		if err != nil {
			t.Fatal(err)
		}
		if fl&c.want != c.want || fl&c.not != 0 {
			t.Errorf("sync=%q: open flags %#o, want %#o set and %#o clear", c.mode, fl, c.want, c.not)
		}
		if got := tg.(backends.Describer).Describe()["sync"]; got != c.mode {
			t.Errorf("sync=%q: Describe says %q", c.mode, got)
		}
		if _, err := tg.WriteAt([]byte("durable"), 0); err != nil {
			t.Fatal(err)
		}
		if err := tg.(backends.DataSyncer).DataSync(); err != nil {
			t.Fatal(err)
		}
		tg.Close()
	}
	if _, err := openURL(t, "file://"+t.TempDir(), backends.OpenParams{Size: 1 << 20, Write: true, SyncWrites: "always"}); err == nil || !strings.Contains(err.Error(), "sync=") {
		t.Errorf("sync=always: err %v, want a sync= error", err)
	}
}
