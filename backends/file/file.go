// Package file registers the file:// backend: a regular file, a directory in which the tool
// creates its own bench files (one per job), or a block device. Local paths, mounted network
// filesystems and devices are all reached through the kernel with pread/pwrite.
//
// Safety rules: the tool writes only to files it created, unless OpenParams.AllowDestructive
// (--allow-destructive) says otherwise; block devices are never written without it. Files it
// created are removed on Close unless OpenParams.Keep (--keep).
//
// Durability: Sync is fsync(2), DataSync (fdatasync=N) fdatasync(2); fio's sync=
// (OpenParams.SyncWrites) opens for writing with O_SYNC or O_DSYNC.
package file

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/vmstorbench/vmstorbench/backends"
)

func init() {
	backends.Register(backends.Backend{
		Scheme:      "file",
		Description: "local file, directory (bench files created inside) or block device",
		URLForms:    []string{"file:///var/tmp/bench", "file:///mnt/nas/vm.img", "file:///dev/sdb"},
		Options: []backends.Option{
			{Name: "name", Help: "bench file name prefix inside a directory", Default: "vmstorbench"},
		},
		Open: open,
	})
}

type kind string

const (
	kindRegular kind = "regular"
	kindDir     kind = "directory"
	kindBlock   kind = "blockdev"
)

// Target is an open file or device.
type Target struct {
	f      *os.File
	fd     int
	path   string
	size   int64
	kind   kind
	direct bool
	// syncWrites is OpenParams.SyncWrites, for Describe.
	syncWrites string
	created    bool
	ours       bool // a bench file named after the prefix in a directory: reused and removed
	keep       bool
}

func open(_ context.Context, u *url.URL, p backends.OpenParams) (backends.Target, error) {
	if u.Host != "" && u.Host != "localhost" {
		return nil, fmt.Errorf("file URLs name a local path (file:///path), not host %q", u.Host)
	}
	if u.Path == "" {
		return nil, errors.New("no path (use file:///path)")
	}
	path := filepath.Clean(u.Path)
	st, err := os.Stat(path)
	k := kindRegular
	switch {
	case err == nil && st.IsDir():
		k = kindDir
		prefix := backends.NewQuery(u).String("name", "vmstorbench")
		if prefix != filepath.Base(prefix) {
			return nil, fmt.Errorf("name=%q: must be a plain file name", prefix)
		}
		path = filepath.Join(path, backends.DirFile(prefix, p))
	case err == nil && st.Mode()&fs.ModeDevice != 0 && st.Mode()&fs.ModeCharDevice == 0:
		k = kindBlock // jobs share a device
	case err == nil && !st.Mode().IsRegular():
		return nil, fmt.Errorf("%s is neither a regular file, a directory nor a block device", path)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	if k == kindRegular {
		path = backends.NamedFile(path, p)
	}
	return openPath(path, k, p)
}

func openPath(path string, k kind, p backends.OpenParams) (*Target, error) {
	t := &Target{path: path, kind: k, direct: p.Direct, keep: p.Keep}
	st, statErr := os.Stat(path)
	exists := statErr == nil
	// In a directory the tool owns the files named after its prefix, so reusing one left by
	// --keep is not destructive. A name from filename_format may be anyone's file.
	ours := k == kindDir && p.FileName == ""
	t.ours = ours
	if p.Write && exists && !ours && !p.AllowDestructive {
		what := "existing file"
		if k == kindBlock {
			what = "block device"
		}
		return nil, fmt.Errorf("refusing to write to %s %s that vmstorbench did not create: pass --allow-destructive to allow it", what, path)
	}
	if k != kindBlock {
		// Check before creating anything: a refused run leaves no file behind.
		var have int64
		if exists {
			have = st.Size()
		}
		var own int64
		if (!exists || ours || p.AllowDestructive) && p.Size > have {
			own = p.Size - have
		}
		if err := checkSpace(filepath.Dir(path), own, p); err != nil {
			return nil, err
		}
	}
	flags := os.O_RDONLY
	if p.Write || !exists {
		flags = os.O_RDWR
	}
	if !exists {
		flags |= os.O_CREATE | os.O_EXCL
		t.created = true
	}
	if p.Direct {
		flags |= syscall.O_DIRECT
	}
	sf, err := syncFlag(p.SyncWrites)
	if err != nil {
		return nil, err
	}
	if p.Write {
		flags |= sf // fio's sync=: only writes are synchronous; a read-only open needs none
	}
	t.syncWrites = p.SyncWrites
	f, err := os.OpenFile(path, flags, 0o644)
	if err != nil {
		if p.Direct && errors.Is(err, syscall.EINVAL) {
			return nil, fmt.Errorf("%s: direct=1 (O_DIRECT) is not supported on this filesystem (tmpfs has none): %w", path, err)
		}
		return nil, err
	}
	t.f, t.fd = f, int(f.Fd())
	if err := t.prepare(p, exists); err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

// checkSpace refuses a run whose new bytes do not fit in dir's filesystem (statfs(2)).
func checkSpace(dir string, own int64, p backends.OpenParams) error {
	if own <= 0 && p.SpaceNeeded <= 0 {
		return nil
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil {
		return fmt.Errorf("statfs %s: %w", dir, err)
	}
	bsize := int64(fs.Bsize)
	if fs.Frsize > 0 {
		bsize = int64(fs.Frsize)
	}
	s := backends.Space{Free: int64(fs.Bavail) * bsize, Size: int64(fs.Blocks) * bsize, Where: dir}
	return backends.CheckSpace(s, own, p)
}

// prepare sizes the file: a new file is allocated to p.Size and, for a reading workload,
// filled with data first (as fio lays out files) so that reads measure storage, not holes.
func (t *Target) prepare(p backends.OpenParams, existed bool) error {
	size, err := t.f.Seek(0, 2)
	if err != nil {
		return fmt.Errorf("%s: size: %w", t.path, err)
	}
	needLayout := false
	if size < p.Size && t.kind != kindBlock {
		if existed && !t.ownedOrAllowed(p) {
			// A read-only run over an existing smaller file: the engine reports it is too small.
			t.size = size
			return nil
		}
		if err := syscall.Fallocate(t.fd, 0, size, p.Size-size); err != nil {
			if err := t.f.Truncate(p.Size); err != nil {
				return fmt.Errorf("%s: extend to %d bytes: %w", t.path, p.Size, err)
			}
		}
		needLayout = p.Read
		size = p.Size
	}
	t.size = size
	if needLayout {
		return t.layout(size, p.LayoutProgress)
	}
	return nil
}

func (t *Target) ownedOrAllowed(p backends.OpenParams) bool {
	return t.created || t.ours || p.AllowDestructive
}

// layout writes the whole file with a non-compressible pattern.
func (t *Target) layout(size int64, progress func(done, total int64)) error {
	if err := backends.Layout(t, 0, size, 1<<20, 1, progress); err != nil {
		return fmt.Errorf("%s: lay out bench file: %w", t.path, err)
	}
	if err := t.f.Sync(); err != nil {
		return fmt.Errorf("%s: lay out bench file: sync: %w", t.path, err)
	}
	return nil
}

// ReadAt and WriteAt call pread/pwrite directly: os.File's ReadAt loops to fill the buffer,
// which would hide short reads, and adds locking the engine does not need.
func (t *Target) ReadAt(b []byte, off int64) (int, error) {
	n, err := syscall.Pread(t.fd, b, off)
	for err == syscall.EINTR {
		n, err = syscall.Pread(t.fd, b, off)
	}
	if err != nil {
		return max(n, 0), &fs.PathError{Op: "pread", Path: t.path, Err: err}
	}
	return n, nil
}

func (t *Target) WriteAt(b []byte, off int64) (int, error) {
	n, err := syscall.Pwrite(t.fd, b, off)
	for err == syscall.EINTR {
		n, err = syscall.Pwrite(t.fd, b, off)
	}
	if err != nil {
		return max(n, 0), &fs.PathError{Op: "pwrite", Path: t.path, Err: err}
	}
	return n, nil
}

// Sync is fsync(2).
func (t *Target) Sync() error { return t.f.Sync() }

// DataSync is fdatasync(2) (backends.DataSyncer, for fdatasync=N).
func (t *Target) DataSync() error {
	err := unix.Fdatasync(t.fd)
	for err == unix.EINTR {
		err = unix.Fdatasync(t.fd)
	}
	if err != nil {
		return &fs.PathError{Op: "fdatasync", Path: t.path, Err: err}
	}
	return nil
}

// syncFlag is the open(2) flag for OpenParams.SyncWrites.
func syncFlag(mode string) (int, error) {
	switch mode {
	case "":
		return 0, nil
	case "sync":
		return unix.O_SYNC, nil
	case "dsync":
		return unix.O_DSYNC, nil
	}
	return 0, fmt.Errorf("sync=%q: must be sync or dsync", mode)
}

// Size is the file or device size.
func (t *Target) Size() int64 { return t.size }

// Close closes the file and removes it if the tool created it and Keep is not set.
func (t *Target) Close() error {
	if t.f == nil {
		return nil
	}
	err := t.f.Close()
	t.f = nil
	// Bench files inside a directory are the tool's own, even when a --keep run left them.
	if (t.created || t.ours) && !t.keep {
		if rmErr := os.Remove(t.path); rmErr != nil && !errors.Is(rmErr, fs.ErrNotExist) && err == nil {
			err = rmErr
		}
	}
	return err
}

// DropCache drops the file's or device's pages from the page cache, as fio's invalidate=1
// does before a job: fdatasync (so dirty pages can go too), then
// posix_fadvise(POSIX_FADV_DONTNEED). fio uses the BLKFLSBUF ioctl on block devices; it
// needs CAP_SYS_ADMIN and some drivers (older brd ramdisks) discard their data on it, so
// block devices get the same fadvise, which drops their page cache as well.
func (t *Target) DropCache() (string, error) {
	if t.direct {
		return "direct", nil
	}
	if err := unix.Fdatasync(t.fd); err != nil {
		return "", fmt.Errorf("%s: drop cache: fdatasync: %w", t.path, err)
	}
	if err := unix.Fadvise(t.fd, 0, 0, unix.FADV_DONTNEED); err != nil {
		return "", fmt.Errorf("%s: drop cache: posix_fadvise DONTNEED: %w", t.path, err)
	}
	return "dropped (posix_fadvise DONTNEED)", nil
}

// Describe reports how the target was reached.
func (t *Target) Describe() map[string]string {
	d := map[string]string{"access": "kernel", "kind": string(t.kind), "security": "none"}
	if t.direct {
		d["direct"] = "1"
	}
	if t.syncWrites != "" {
		d["sync"] = t.syncWrites // O_SYNC or O_DSYNC writes
	}
	return d
}
