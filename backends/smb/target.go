package smb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sync"
	"time"

	smb2 "github.com/cloudsoda/go-smb2"

	"github.com/vmstorbench/vmstorbench/backends"
)

// maxIO caps one SMB READ or WRITE: Windows refuses more than 1 MiB whatever it announces,
// and go-smb2 applies the same cap.
const maxIO = 1 << 20

// maxCredits is how many credits the client asks the server to keep granted. A 1 MiB request
// costs 16 credits; go-smb2's default of 128 allows only 8 of them in flight and, worse,
// shrinks requests to the credits at hand when more are queued. 2048 covers 128 MiB in
// flight; Samba grants up to 8192 ("smb2 max credits").
const maxCredits = 2048

// target is one bench file on one TCP connection, session and tree connect. Concurrent
// ReadAt/WriteAt calls are pipelined on the connection: go-smb2 sends each request as soon
// as it has credits and matches responses by MessageId.
type target struct {
	cfg     config
	name    string // file path inside the share
	raw     *wireConn
	session *smb2.Session
	share   *smb2.Share
	file    *smb2.File
	size    int64
	created bool
	owned   bool // the file is the tool's own bench file in a directory (reused, removed)
	keep    bool
	// writeThrough: the file was opened with FILE_WRITE_THROUGH for fio's sync= (see openFile).
	writeThrough bool
	neg          negotiated
	signing      string // the session's signing algorithm ("AES-128-GMAC", ...)
	maxRead      int
	maxWrt       int

	// connCtx is the context of every go-smb2 call; abort cancels it and closes the socket,
	// which ends every call in flight.
	connCtx   context.Context
	cancel    context.CancelFunc
	abortOnce sync.Once
	abortErr  error // set before cancel; read after connCtx is done
	onTimeout func()

	closeOnce sync.Once
	closeErr  error
}

// dial connects, authenticates, mounts the share and opens (or creates) the bench file within
// ctx and the configured timeout, then lays the file out if needed (each write bounded by
// the timeout like any request, the whole by ctx).
func dial(ctx context.Context, c config, password string, p backends.OpenParams) (_ *target, err error) {
	setupCtx, cancelSetup := context.WithTimeout(ctx, c.timeout)
	defer cancelSetup()

	conn, err := backends.Dial(setupCtx, c.addr)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", c.addr, err)
	}
	t := &target{cfg: c, name: backends.NamedFile(c.file, p), raw: newWireConn(conn), keep: p.Keep}
	t.connCtx, t.cancel = context.WithCancel(context.Background())
	t.onTimeout = func() {
		t.abort(fmt.Errorf("no response from %s within %v (URL option timeout=); connection closed", c.addr, c.timeout))
	}
	// go-smb2 calls run on connCtx, during Open as after; the deadlines abort them.
	stopSetupWatch := context.AfterFunc(setupCtx, func() {
		t.abort(fmt.Errorf("connection set-up to %s: %w", c.addr, context.Cause(setupCtx)))
	})
	stopCallerWatch := context.AfterFunc(ctx, func() {
		t.abort(fmt.Errorf("open: %w", context.Cause(ctx)))
	})
	defer func() {
		if err != nil {
			t.discard()
		}
		stopSetupWatch()
		stopCallerWatch()
		if err != nil {
			// A call cut short by a deadline fails with a bare "context canceled": say why.
			if r := t.abortReason(); r != nil {
				err = fmt.Errorf("%w (%v)", r, err)
			}
			t.abort(errOpenFailed)
		}
	}()

	d := &smb2.Dialer{
		MaxCreditBalance: maxCredits,
		Negotiator:       smb2.Negotiator{RequireMessageSigning: c.sign, SpecifiedDialect: c.dialect},
		Initiator:        &smb2.NTLMInitiator{User: c.user, Password: password, Domain: c.domain},
	}
	s, err := d.DialConn(t.connCtx, t.raw, c.addr)
	if err != nil {
		return nil, fmt.Errorf("session set-up as user %q: %w", c.user, err)
	}
	t.session = s.WithContext(t.connCtx)
	t.signing = s.SigningAlgorithm()
	share, err := t.session.Mount(`\\` + c.host + `\` + c.share)
	if err != nil {
		return nil, fmt.Errorf("tree connect to share %q: %w", c.share, explain(err))
	}
	t.share = share.WithContext(t.connCtx)
	if st, err := t.share.Stat(c.file); err == nil && st.IsDir() {
		// A directory: one bench file per job (and file) inside it, which the tool owns.
		// A filename_format name may be anyone's file: only the tool's own names are owned.
		t.name, t.owned = path.Join(c.file, backends.DirFile("vmstorbench", p)), p.FileName == ""
	}
	from, err := t.openFile(p)
	if err != nil {
		return nil, err
	}
	t.neg = t.raw.stopSniffing()
	t.maxRead = clampIO(t.neg.maxRead)
	t.maxWrt = clampIO(t.neg.maxWrite)
	stopSetupWatch() // laying out a large file may take long; each write has its own limit
	if from < t.size {
		if err := t.layout(from, t.size, p.LayoutProgress); err != nil {
			return nil, fmt.Errorf("lay out %q: %w", t.name, err)
		}
	}
	return t, nil
}

var errOpenFailed = errors.New("open failed")

// discard undoes a failed Open as far as the connection allows: it closes the file and
// removes it if this Open created it. Errors are dropped: the Open error is the one to report.
func (t *target) discard() {
	if t.file == nil || t.abortReason() != nil {
		return
	}
	timer := time.AfterFunc(closeTimeout, func() { t.abort(errOpenFailed) })
	defer timer.Stop()
	_ = t.file.Close()
	if (t.created || t.owned) && !t.keep {
		_ = t.share.Remove(t.name)
	}
}

// openFile opens the bench file under the rules the file backend follows: a file that does
// not exist is created (removed again on Close unless Keep) and, for a reading workload, laid
// out with data; an existing file is written only with AllowDestructive, and only grown when
// it was opened for writing. A reading job never needs write access to an existing file.
// It returns where layout has to start (t.size when there is nothing to lay out).
func (t *target) openFile(p backends.OpenParams) (layoutFrom int64, err error) {
	where := fmt.Sprintf("%q on share %q", t.name, t.cfg.share)
	// fio's sync= (O_SYNC or O_DSYNC): SMB has one per-open equivalent for both, the
	// FILE_WRITE_THROUGH create option (the go-smb2 copy maps os.O_SYNC to it); the server
	// then completes a WRITE only once it is on stable storage. Reads need none.
	wt := 0
	if p.SyncWrites != "" && p.Write {
		wt, t.writeThrough = os.O_SYNC, true
	}
	if !p.Write {
		t.file, err = t.share.OpenFile(t.name, os.O_RDONLY, 0)
	} else {
		err = os.ErrNotExist // try to create it first
	}
	if errors.Is(err, os.ErrNotExist) {
		t.file, err = t.share.OpenFile(t.name, os.O_RDWR|os.O_CREATE|os.O_EXCL|wt, 0o644)
		t.created = err == nil
		if errors.Is(err, os.ErrExist) { // it exists: only a writing job gets here
			if !p.AllowDestructive && !t.owned {
				return 0, fmt.Errorf("%s exists and was not created by vmstorbench: refusing to write to it without --allow-destructive", where)
			}
			t.file, err = t.share.OpenFile(t.name, os.O_RDWR|wt, 0)
		}
	}
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", where, explain(err))
	}
	st, err := t.file.Stat()
	if err != nil {
		return 0, fmt.Errorf("stat %s: %w", where, err)
	}
	t.size = st.Size()
	layoutFrom = t.size
	if t.size < p.Size && (t.created || p.Write) {
		if err := t.checkSpace(p.Size-t.size, p); err != nil {
			return 0, err
		}
		if err := t.file.Truncate(p.Size); err != nil {
			return 0, fmt.Errorf("set size of %s to %d: %w", where, p.Size, err)
		}
		if !p.Read {
			layoutFrom = p.Size
		}
		t.size = p.Size
	}
	return layoutFrom, nil
}

// checkSpace refuses a run whose new bytes do not fit in the share's free space
// (FileFsFullSizeInformation: the allocation units available to the caller).
func (t *target) checkSpace(own int64, p backends.OpenParams) error {
	where := `\\` + t.cfg.host + `\` + t.cfg.share
	fs, err := t.share.Statfs("")
	if err != nil {
		return fmt.Errorf("statfs %s: %w", where, err)
	}
	bs := fs.BlockSize()
	s := backends.Space{Free: int64(fs.AvailableBlockCount() * bs), Size: int64(fs.TotalBlockCount() * bs), Where: where}
	return backends.CheckSpace(s, own, p)
}

// layoutInFlight is how many 1 MiB writes layout keeps in flight.
const layoutInFlight = 8

// layout fills [from, to) with an incompressible pattern so that reads read data rather than
// holes, and flushes it.
func (t *target) layout(from, to int64, progress func(done, total int64)) error {
	if err := backends.Layout(t, from, to, maxIO, layoutInFlight, progress); err != nil {
		return err
	}
	return t.Sync()
}

// explain turns go-smb2's bare os errors into messages that say what is missing.
func explain(err error) error {
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("no such file, directory or share: %w", err)
	case errors.Is(err, os.ErrPermission):
		return fmt.Errorf("access denied: %w", err)
	}
	return err
}

func clampIO(negotiated uint32) int {
	if negotiated == 0 || negotiated > maxIO {
		return maxIO
	}
	return int(negotiated)
}

// abort ends the connection once: every call in flight and every later call fails with
// reason.
func (t *target) abort(reason error) {
	t.abortOnce.Do(func() {
		t.abortErr = reason
		t.cancel()
		_ = t.raw.Close()
	})
}

// abortReason is why the connection was aborted, or nil.
func (t *target) abortReason() error {
	if t.connCtx.Err() == nil {
		return nil
	}
	return t.abortErr
}

// guard runs one go-smb2 call under the per-request timeout: a request without an answer
// for that long means a dead or hung server, and aborting the connection makes every
// pending call return.
func (t *target) guard(op string, off int64, call func() (int, error)) (n int, err error) {
	if err = t.abortReason(); err == nil {
		timer := time.AfterFunc(t.cfg.timeout, t.onTimeout)
		n, err = call()
		timer.Stop()
		if err == nil || errors.Is(err, io.EOF) {
			return n, err
		}
		if r := t.abortReason(); r != nil {
			err = r // "context canceled" or "use of closed connection" would hide the cause
		}
	}
	if off >= 0 {
		return n, fmt.Errorf("smb: %s %s at offset %d: %w", op, t.name, off, err)
	}
	return n, fmt.Errorf("smb: %s %s: %w", op, t.name, err)
}

// ReadAt reads len(b) bytes at off. Requests larger than the negotiated maximum are split
// and the pieces sent at once, so one large read keeps several requests in flight.
func (t *target) ReadAt(b []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("smb: read %s: negative offset %d", t.name, off)
	}
	if len(b) <= t.maxRead {
		return t.readChunk(b, off)
	}
	return split(b, off, t.maxRead, t.readChunk)
}

func (t *target) readChunk(b []byte, off int64) (int, error) {
	n, err := t.guard("read", off, func() (int, error) { return t.file.ReadAt(b, off) })
	if err == nil && n < len(b) {
		err = io.EOF // go-smb2 reports a short read at end of file without an error
	}
	return n, err
}

// WriteAt writes b at off, split like ReadAt.
func (t *target) WriteAt(b []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("smb: write %s: negative offset %d", t.name, off)
	}
	if len(b) <= t.maxWrt {
		return t.writeChunk(b, off)
	}
	return split(b, off, t.maxWrt, t.writeChunk)
}

func (t *target) writeChunk(b []byte, off int64) (int, error) {
	n, err := t.guard("write", off, func() (int, error) { return t.file.WriteAt(b, off) })
	if err == nil && n < len(b) {
		err = fmt.Errorf("smb: write %s at offset %d: short write (%d of %d bytes)", t.name, off, n, len(b))
	}
	return n, err
}

// split runs io on chunk-sized pieces of b concurrently. Like io.ReaderAt it reports the
// bytes done before the first failing piece.
func split(b []byte, off int64, chunk int, io func([]byte, int64) (int, error)) (int, error) {
	pieces := (len(b) + chunk - 1) / chunk
	ns := make([]int, pieces)
	errs := make([]error, pieces)
	var wg sync.WaitGroup
	for i := range pieces {
		lo, hi := i*chunk, min((i+1)*chunk, len(b))
		wg.Go(func() { ns[i], errs[i] = io(b[lo:hi], off+int64(lo)) })
	}
	wg.Wait()
	total := 0
	for i := range pieces {
		total += ns[i]
		if errs[i] != nil {
			return total, errs[i]
		}
	}
	return total, nil
}

// Sync sends SMB2 FLUSH for the file.
func (t *target) Sync() error {
	_, err := t.guard("flush", -1, func() (int, error) { return 0, t.file.Sync() })
	return err
}

// Size is the usable size: the job's size, or the file's when the job did not say.
func (t *target) Size() int64 { return t.size }

// DropCache has nothing to drop: go-smb2 keeps no cache, and the server's cache is out of
// the client's reach.
func (t *target) DropCache() (string, error) { return "server cache not droppable", nil }

// Describe reports what was negotiated, not what the URL asked for.
func (t *target) Describe() map[string]string {
	d := map[string]string{"access": "userspace", "security": t.neg.createSecurity}
	if t.neg.dialect != 0 {
		d["dialect"] = dialectName(t.neg.dialect)
	}
	if d["security"] == "" {
		d["security"] = "unknown"
	}
	if t.writeThrough {
		d["sync"] = "write-through"
	}
	// Which algorithm signed decides what signing costs (AES-GMAC runs in parallel like
	// AES-GCM, AES-CMAC is a serial chain): record it where the level is "signed".
	if d["security"] == securitySigned && t.signing != "" {
		d["signing"] = t.signing
	}
	return d
}

// Close closes the file (removing it if this target created it and Keep is off), the tree
// connect and the session, each bounded by the request timeout; the socket is closed in any
// case.
func (t *target) Close() error {
	t.closeOnce.Do(func() { t.closeErr = t.close() })
	return t.closeErr
}

func (t *target) close() error {
	defer t.abort(errors.New("target closed"))
	if t.abortReason() != nil {
		return nil // the connection is gone; the failing call reported why
	}
	// A graceful close needs a live server: bound it as a whole, shorter than a request
	// (the engine closes targets under stuck workers and waits only briefly).
	limit := min(t.cfg.timeout, closeTimeout)
	timer := time.AfterFunc(limit, func() {
		t.abort(fmt.Errorf("close did not finish within %v; connection closed", limit))
	})
	defer timer.Stop()
	var errs []error
	step := func(op string, f func() error) {
		if r := t.abortReason(); r != nil {
			if len(errs) == 0 {
				errs = append(errs, fmt.Errorf("smb: %s %s: %w", op, t.name, r))
			}
			return
		}
		if err := f(); err != nil {
			if r := t.abortReason(); r != nil {
				err = r
			}
			errs = append(errs, fmt.Errorf("smb: %s %s: %w", op, t.name, err))
		}
	}
	step("close", t.file.Close)
	if (t.created || t.owned) && !t.keep {
		step("remove", func() error { return t.share.Remove(t.name) })
	}
	step("tree disconnect", t.share.Umount)
	step("logoff", t.session.Logoff)
	return errors.Join(errs...)
}

// closeTimeout bounds Close.
const closeTimeout = 5 * time.Second
