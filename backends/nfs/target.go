package nfs

import (
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	nfsc "github.com/willscott/go-nfs-client/nfs"

	"github.com/vmstorbench/vmstorbench/backends"
)

// maxIO caps one READ or WRITE even when the server advertises more (go-nfs advertises
// 1 GiB and answers at most 16 MiB per READ).
const maxIO = 16 << 20

// target is one open bench file on one TCP connection.
type target struct {
	c      *rpcConn
	fh     []byte
	dir    []byte // directory holding the file, for REMOVE
	name   string // file name in dir
	where  string // host:port:/path, for errors
	stable uint32
	rmax   int
	wmax   int

	fsWhere string // host:port:/dir holding the file, for the free-space error

	remove bool // remove the file on Close
	closed atomic.Bool
	size   atomic.Int64 // last known size

	verfMu sync.Mutex
	cycle  verfCycle // unstable writes since the last COMMIT was sent
}

// verfCycle tracks the write verifiers of unstable writes between two COMMITs: a COMMIT
// makes them durable only if the server kept the same verifier (did not restart) for all.
type verfCycle struct {
	writes int64
	verf   [8]byte
	mixed  bool
}

func (v *verfCycle) add(verf [8]byte) {
	if v.writes > 0 && verf != v.verf {
		v.mixed = true
	}
	if v.writes == 0 {
		v.verf = verf
	}
	v.writes++
}

func (v *verfCycle) merge(o verfCycle) {
	if o.writes == 0 {
		return
	}
	if v.writes == 0 {
		*v = o
		return
	}
	v.mixed = v.mixed || o.mixed || v.verf != o.verf
	v.writes += o.writes
}

// newTarget walks from the export root to the bench file and opens it under the rules every
// file-creating backend follows: a missing file is created (create=auto) and removed on Close
// unless Keep; an existing file the tool did not create is written only with
// AllowDestructive. A URL naming a directory gets one bench file per job in it,
// <name>.job<N>.dat, which the tool owns; a URL naming a file is job 0's file, and job N > 0
// uses <file>.<N>.
func newTarget(o *opener, c *rpcConn, root []byte, export string, p backends.OpenParams) (*target, error) {
	cfg := o.cfg
	t := &target{c: c, stable: cfg.stable}
	fi, err := fsinfo(c, root, o.deadline())
	if err != nil {
		return nil, fmt.Errorf("%s:%s: %w", c.addr, export, err)
	}
	t.rmax = ioLimit(fi.rtmax, fi.rtpref, cfg.rsize)
	t.wmax = ioLimit(fi.wtmax, fi.wtpref, cfg.wsize)

	// Walk the path below the export. The last component may be a directory (bench files
	// per job inside it), an existing file or a file to create.
	rel := strings.Trim(strings.TrimPrefix(cfg.path, export), "/")
	var parts []string
	if rel != "" {
		parts = strings.Split(rel, "/")
	}
	dir, walked, isDir := root, export, true
	for i, part := range parts {
		last := i == len(parts)-1
		walked = path.Join(walked, part)
		fh, attr, err := lookup(c, dir, part, o.deadline())
		if last && isNotExist(err) {
			isDir = false
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s:%s: %w", c.addr, walked, err)
		}
		if attr == nil {
			a, err := getattr(c, fh, o.deadline())
			if err != nil {
				return nil, fmt.Errorf("%s:%s: %w", c.addr, walked, err)
			}
			attr = &a
		}
		if attr.Type != nfsc.NF3Dir {
			if !last {
				return nil, fmt.Errorf("%s:%s: not a directory", c.addr, walked)
			}
			isDir = false
			break
		}
		dir = fh
	}

	if isDir {
		t.name = backends.DirFile(cfg.name, p)
		t.where = c.addr + ":" + path.Join(cfg.path, t.name)
		// The tool owns the files named after its prefix; a filename_format name may be
		// anyone's file.
		t.remove = !p.Keep && p.FileName == ""
	} else {
		t.name = backends.NamedFile(parts[len(parts)-1], p)
		t.where = c.addr + ":" + path.Join(path.Dir(cfg.path), t.name)
	}
	t.dir = dir
	t.fsWhere = c.addr + ":" + path.Dir(strings.TrimPrefix(t.where, c.addr+":"))
	owned := isDir && p.FileName == ""
	if err := t.openFile(o, p, owned); err != nil {
		return nil, err
	}
	return t, nil
}

// ioLimit is the largest READ or WRITE to send: the server's maximum (its preferred size if
// it gives no maximum), capped by maxIO and by the user's rsize/wsize.
func ioLimit(max, pref uint32, user int64) int {
	n := int(max)
	if n == 0 {
		n = int(pref)
	}
	if n <= 0 {
		n = 64 << 10
	}
	n = min(n, maxIO)
	if user > 0 {
		n = min(n, int(user))
	}
	return n
}

// openFile looks the bench file up or creates it, checks the write permission rules and
// sizes it for the job.
func (t *target) openFile(o *opener, p backends.OpenParams, owned bool) error {
	c := t.c
	fh, attr, err := lookup(c, t.dir, t.name, o.deadline())
	exists := err == nil
	if err != nil && !isNotExist(err) {
		return fmt.Errorf("lookup %s: %w", t.where, err)
	}
	if !exists && !o.cfg.create {
		return fmt.Errorf("%s does not exist (create=never)", t.where)
	}
	var size uint64
	if exists {
		if attr == nil {
			a, err := getattr(c, fh, o.deadline())
			if err != nil {
				return fmt.Errorf("%s: %w", t.where, err)
			}
			attr = &a
		}
		if attr.Type != nfsc.NF3Reg {
			return fmt.Errorf("%s is not a regular file (NFS type %d)", t.where, attr.Type)
		}
		if p.Write && !owned && !p.AllowDestructive {
			return fmt.Errorf("refusing to write to existing file %s that vmstorbench did not create: pass --allow-destructive to allow it", t.where)
		}
		size = attr.Filesize
	}
	mayResize := !exists || owned || p.AllowDestructive
	grow := p.Size > 0 && size < uint64(p.Size) && mayResize
	// Check before creating anything: a refused run leaves no file behind.
	var own int64
	if grow {
		own = p.Size - int64(size)
	}
	if err := t.checkSpace(o, own, p); err != nil {
		return err
	}
	if !exists {
		if fh, err = create(c, t.dir, t.name, 0o644, o.deadline()); err != nil {
			return fmt.Errorf("create %s: %w", t.where, err)
		}
		t.remove = !p.Keep
	}
	t.fh = fh
	if grow {
		if err := truncate(c, fh, uint64(p.Size), o.deadline()); err != nil {
			return fmt.Errorf("set size of %s to %d: %w", t.where, p.Size, err)
		}
		if p.Read {
			// As fio does: reads of a new file must hit data, not holes.
			if err := t.layout(int64(size), p.Size, p.LayoutProgress); err != nil {
				return err
			}
		}
		size = uint64(p.Size)
	}
	// A read-only job on an existing smaller file keeps its size: the engine reports it.
	t.size.Store(int64(size))
	return nil
}

// checkSpace refuses a run whose new bytes do not fit in the free space FSSTAT reports for
// the directory of the bench file (abytes: available to this user).
func (t *target) checkSpace(o *opener, own int64, p backends.OpenParams) error {
	if own <= 0 && p.SpaceNeeded <= 0 {
		return nil
	}
	fs, err := fsstat(t.c, t.dir, o.deadline())
	if err != nil {
		return fmt.Errorf("fsstat %s: %w", t.fsWhere, err)
	}
	s := backends.Space{Free: clampInt64(fs.abytes), Size: clampInt64(fs.tbytes), Where: t.fsWhere}
	return backends.CheckSpace(s, own, p)
}

func clampInt64(v uint64) int64 {
	if v > 1<<63-1 {
		return 1<<63 - 1
	}
	return int64(v)
}

// layout writes [from, to) with non-compressible data, 8 requests in flight, UNSTABLE and
// then COMMIT, whatever stable= says: it prepares the file and is not measured.
func (t *target) layout(from, to int64, progress func(done, total int64)) error {
	chunk := min(t.wmax, 1<<20)
	write := backends.WriterAtFunc(func(p []byte, off int64) (int, error) {
		return transfer(p, off, t.wmax, t.writeOp(stableUnst, nil))
	})
	err := backends.Layout(write, from, to, chunk, 8, progress)
	if err == nil {
		_, err = commit(t.c, t.fh)
	}
	if err != nil {
		return fmt.Errorf("lay out %s: %w", t.where, err)
	}
	return nil
}

// transfer runs op over p in pieces of at most max bytes. Pieces of one call are sent
// together, so a request larger than the server's limit still costs about one round trip;
// a short piece ends the round and the rest is retried from there.
func transfer(p []byte, off int64, max int, op func(b []byte, off int64) (int, bool, error)) (int, error) {
	done := 0
	for done < len(p) {
		rest := p[done:]
		if len(rest) <= max {
			n, eof, err := op(rest, off+int64(done))
			done += n
			if err != nil {
				return done, err
			}
			if n < len(rest) {
				if eof {
					return done, io.EOF
				}
				if n == 0 {
					return done, errNoProgress
				}
			}
			continue
		}
		type result struct {
			n   int
			eof bool
			err error
		}
		k := (len(rest) + max - 1) / max
		out := make([]result, k)
		var wg sync.WaitGroup
		for i := range k {
			piece := rest[i*max : min((i+1)*max, len(rest))]
			pieceOff := off + int64(done+i*max)
			wg.Go(func() {
				n, eof, err := op(piece, pieceOff)
				out[i] = result{n, eof, err}
			})
		}
		wg.Wait()
		for i, r := range out {
			want := min(max, len(rest)-i*max)
			done += r.n
			if r.err != nil {
				return done, r.err
			}
			if r.n < want {
				if r.eof {
					return done, io.EOF
				}
				if r.n == 0 {
					return done, errNoProgress
				}
				break // retry the rest from here
			}
		}
	}
	return done, nil
}

var errNoProgress = errors.New("server transferred no data and did not report end of file")

// ReadAt reads with READ calls at explicit offsets; concurrent calls are pipelined.
func (t *target) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("nfs: read %s: negative offset %d", t.where, off)
	}
	n, err := transfer(p, off, t.rmax, func(b []byte, off int64) (int, bool, error) {
		return read(t.c, t.fh, uint64(off), b)
	})
	if err != nil && err != io.EOF {
		err = fmt.Errorf("nfs: read %s at %d: %w", t.where, off, err)
	}
	return n, err
}

// WriteAt writes with WRITE calls at explicit offsets (FILE_SYNC, or UNSTABLE with
// stable=unstable); concurrent calls are pipelined.
func (t *target) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("nfs: write %s: negative offset %d", t.where, off)
	}
	n, err := transfer(p, off, t.wmax, t.writeOp(t.stable, t.noteVerf))
	if err != nil {
		return n, fmt.Errorf("nfs: write %s at %d: %w", t.where, off, err)
	}
	return n, nil
}

// writeOp is one WRITE of the given stability; note, if set, sees the verifier of each
// write the server left unstable.
func (t *target) writeOp(stable uint32, note func([8]byte)) func(b []byte, off int64) (int, bool, error) {
	return func(b []byte, off int64) (int, bool, error) {
		n, committed, verf, err := write(t.c, t.fh, uint64(off), b, stable)
		if err != nil {
			return n, false, err
		}
		return n, false, checkWrite(b, n, committed, verf, stable, note)
	}
}

// checkWrite checks a WRITE's result (n of b taken, committed as committed) against the
// stability asked for and passes the verifier of an unstable write to note, if set.
func checkWrite(b []byte, n int, committed uint32, verf [8]byte, stable uint32, note func([8]byte)) error {
	if committed < stable {
		return fmt.Errorf("server committed a FILE_SYNC write only as %d (UNSTABLE=0, DATA_SYNC=1)", committed)
	}
	if committed == stableUnst && note != nil {
		note(verf)
	}
	if n == 0 && len(b) > 0 {
		return errors.New("server accepted no data")
	}
	return nil
}

func (t *target) noteVerf(verf [8]byte) {
	t.verfMu.Lock()
	t.cycle.add(verf)
	t.verfMu.Unlock()
}

// Sync sends COMMIT when writes are unstable and fails if the server's write verifier
// changed between those writes and the COMMIT: the server restarted and may have lost them.
// FILE_SYNC writes are durable when they complete, so Sync has nothing to do.
func (t *target) Sync() error {
	if t.stable != stableUnst {
		return nil
	}
	// Writes that complete from here on belong to the next COMMIT.
	t.verfMu.Lock()
	cycle := t.cycle
	t.cycle = verfCycle{}
	t.verfMu.Unlock()
	verf, err := commit(t.c, t.fh)
	if err != nil {
		t.verfMu.Lock()
		t.cycle.merge(cycle)
		t.verfMu.Unlock()
		return fmt.Errorf("nfs: commit %s: %w", t.where, err)
	}
	if cycle.writes > 0 && (cycle.mixed || cycle.verf != verf) {
		return fmt.Errorf("nfs: commit %s: the server's write verifier changed (it restarted?): some of %d unstable writes may be lost", t.where, cycle.writes)
	}
	return nil
}

// Size is the file size from GETATTR, or the last size known if that fails.
func (t *target) Size() int64 {
	if t.closed.Load() {
		return t.size.Load()
	}
	a, err := getattr(t.c, t.fh, time.Time{})
	if err == nil {
		t.size.Store(int64(a.Filesize))
	}
	return t.size.Load()
}

// Close removes the bench file if this target created it (unless Keep) and closes the
// connection; calls still in flight fail at once.
func (t *target) Close() error {
	if t.closed.Swap(true) {
		return nil
	}
	var err error
	if t.remove {
		if rerr := remove(t.c, t.dir, t.name, time.Time{}); rerr != nil && !isNotExist(rerr) {
			err = fmt.Errorf("nfs: remove %s: %w", t.where, rerr)
		}
	}
	t.c.close()
	return err
}

// DropCache has nothing to drop: the userspace client keeps no cache, and the server's
// cache is out of the client's reach.
func (t *target) DropCache() (string, error) { return "server cache not droppable", nil }

// Describe reports how the target was reached.
func (t *target) Describe() map[string]string {
	stable := "filesync"
	if t.stable == stableUnst {
		stable = "unstable"
	}
	return map[string]string{"security": "auth_sys", "protocol": "nfsv3", "access": "userspace", "stable": stable}
}
