// Package backends is the contract between the engine and storage: a registry of backends,
// each of which opens a Target from a URL. The engine imports this package only; concrete
// backends live in sub-packages that register themselves from init (as database/sql drivers
// do) and are linked in by the command with blank imports.
package backends

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"sync"
)

// Target is one open storage object: a file, a LUN, a block device. Every method must be safe
// for concurrent use: the engine issues iodepth calls at once on one Target.
type Target interface {
	io.ReaderAt
	io.WriterAt
	// Sync makes completed writes durable (fsync, NFS COMMIT, SMB FLUSH, SCSI SYNCHRONIZE CACHE).
	Sync() error
	// Size is the usable size in bytes.
	Size() int64
	Close() error
}

// DataSyncer is implemented by Targets with a data-only sync (fdatasync(2)): it makes
// completed writes durable, with only the metadata needed to read them back. The engine uses
// it for fdatasync=N; Targets without it get Sync, which is at least as strong.
type DataSyncer interface {
	DataSync() error
}

// Describer is implemented by Targets that can say how they were reached. The engine copies
// the map into the result document (e.g. "security": "smb-encrypted", "dialect": "3.1.1",
// "access": "userspace").
type Describer interface {
	Describe() map[string]string
}

// Option documents one URL query option of a backend; options are declared as data so that
// `vmstorbench backends` can list them and Parse can reject unknown ones.
type Option struct {
	Name    string
	Help    string
	Default string
}

// OpenParams is what the engine tells a backend when it opens a Target for one job.
type OpenParams struct {
	// Size is the number of bytes the job needs (offset+size of the workload). Backends that
	// create bench files create them this large; fixed-size targets fail if they are smaller.
	Size int64
	// SizeIsDefault says Size is the engine's default for a new bench file (the user gave no
	// size=): a fixed-size target (a LUN, a block device, an existing file) smaller than it
	// is used whole instead of refused; the engine then fits the region to it.
	SizeIsDefault bool
	// Job is the job index (0-based); backends that create one file per job use it in the name.
	Job int
	// Direct asks for unbuffered I/O (O_DIRECT) where the backend has a cache to bypass.
	Direct bool
	// Write is true when the workload writes: read-only workloads must not need write access.
	Write bool
	// Read is true when the workload reads. A backend that creates a bench file for a reading
	// workload lays it out with data first (as fio does), so reads do not hit holes.
	Read bool
	// AllowDestructive permits writing to block devices and to existing files the tool did not
	// create. Without it a backend refuses.
	AllowDestructive bool
	// Keep leaves files the backend created in place after Close.
	Keep bool

	// File is the index of this file among the job's NrFiles files (fio nrfiles), 0-based.
	File int
	// NrFiles is how many files the job has; 0 or 1 means one (the historical names).
	NrFiles int
	// FileName, when set, is the bench file's name inside a directory target (fio
	// filename_format expanded by the engine: a plain name, no slash). Backends use it only
	// when the URL names a directory; see DirFile.
	FileName string

	// SpaceNeeded is the bytes the rest of the run (other jobs and files) will newly allocate
	// on the same storage after this Open, and SpaceFiles how many bench files that is. A
	// backend that creates or extends a file adds its own new bytes and refuses, through
	// CheckSpace, when the sum does not fit in the free space with a margin.
	SpaceNeeded int64
	SpaceFiles  int

	// LayoutProgress, if set, is called while a bench file is laid out with the bytes
	// written so far and the bytes to write, from one goroutine per target (several targets
	// may lay out at once).
	LayoutProgress func(done, total int64)

	// SyncWrites is fio's sync=: "" (off), "sync" (every write durable with its metadata,
	// O_SYNC) or "dsync" (data durable, O_DSYNC). A backend maps it to its own per-write
	// durability (NFS FILE_SYNC, SCSI FUA) or refuses it with an error that says so; targets
	// with nothing volatile (mem, null) ignore it.
	SyncWrites string
}

// CacheDropper is implemented by Targets that can drop cached data of the target before a
// job, as fio's invalidate=1 (its default) does. DropCache returns what was done, recorded in
// the result, e.g. "dropped (posix_fadvise DONTNEED)" or "server cache not droppable".
type CacheDropper interface {
	DropCache() (string, error)
}

// Backend is one registered backend.
type Backend struct {
	// Scheme is the URL scheme, e.g. "file", "nfs".
	Scheme string
	// Description is one line for `vmstorbench backends`.
	Description string
	// URLForms are example URLs, shown to the user.
	URLForms []string
	// Options are the query options the backend accepts. Open receives only URLs whose
	// options are all declared here.
	Options []Option
	// DiscardsData is true for a backend that keeps nothing it is given (null://): the engine
	// refuses verify on it up front instead of reporting every block as mismatched.
	DiscardsData bool
	// Open opens a Target. It must honour ctx's deadline for every network call it makes.
	Open func(ctx context.Context, u *url.URL, p OpenParams) (Target, error)
}

// Registry holds backends by scheme. The process-wide Default registry is filled by backend
// packages' init functions; tests may build their own.
type Registry struct {
	mu       sync.RWMutex
	backends map[string]Backend
}

// Default is the registry backend packages register into.
var Default = &Registry{}

// Register adds b to the Default registry. It panics on a duplicate or malformed backend:
// that is a programming error found at start-up, never a user input error.
func Register(b Backend) { Default.Register(b) }

// Register adds b to r.
func (r *Registry) Register(b Backend) {
	if b.Scheme == "" || b.Open == nil {
		panic("backends: Register needs a scheme and an Open function")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.backends == nil {
		r.backends = map[string]Backend{}
	}
	if _, dup := r.backends[b.Scheme]; dup {
		panic("backends: Register called twice for scheme " + b.Scheme)
	}
	r.backends[b.Scheme] = b
}

// List returns the registered backends sorted by scheme.
func (r *Registry) List() []Backend {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Backend, 0, len(r.backends))
	for _, b := range r.backends {
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Scheme < out[j].Scheme })
	return out
}

// Lookup finds the backend for a parsed URL and checks its query options.
func (r *Registry) Lookup(u *url.URL) (Backend, error) {
	r.mu.RLock()
	b, ok := r.backends[u.Scheme]
	r.mu.RUnlock()
	if !ok {
		known := make([]string, 0)
		for _, k := range r.List() {
			known = append(known, k.Scheme)
		}
		return Backend{}, fmt.Errorf("unknown backend %q (registered: %s)", u.Scheme, strings.Join(known, ", "))
	}
	for name := range u.Query() {
		if !b.hasOption(name) {
			return Backend{}, fmt.Errorf("%s: unknown option %q (known: %s)", b.Scheme, name, b.optionNames())
		}
	}
	return b, nil
}

// Open parses rawURL, finds its backend and opens a Target.
func (r *Registry) Open(ctx context.Context, rawURL string, p OpenParams) (Target, error) {
	u, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	b, err := r.Lookup(u)
	if err != nil {
		return nil, err
	}
	t, err := b.Open(ctx, u, p)
	if err != nil {
		return nil, fmt.Errorf("%s: open %s: %w", b.Scheme, Redact(u), err)
	}
	return t, nil
}

// Open opens rawURL with the Default registry.
func Open(ctx context.Context, rawURL string, p OpenParams) (Target, error) {
	return Default.Open(ctx, rawURL, p)
}

// ParseURL parses a target URL and rejects what no backend could use. A URL that embeds a
// password is refused: passwords come from environment variables or files, never argv.
func ParseURL(rawURL string) (*url.URL, error) {
	if rawURL == "" {
		return nil, errors.New("empty target URL")
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Error repeats the whole URL, which may hold secrets: report only the reason.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("bad target URL: %v", err)
	}
	if u.Scheme == "" {
		return nil, fmt.Errorf("bad target URL %q: no scheme (e.g. file:///path, nfs://host/export/file)", Redact(u))
	}
	if _, has := u.User.Password(); has {
		return nil, fmt.Errorf("bad target URL %s: a password in the URL is not accepted; use the backend's environment variable or password_file=", Redact(u))
	}
	return u, nil
}

func (b Backend) hasOption(name string) bool {
	for _, o := range b.Options {
		if o.Name == name {
			return true
		}
	}
	return false
}

func (b Backend) optionNames() string {
	if len(b.Options) == 0 {
		return "none"
	}
	names := make([]string, len(b.Options))
	for i, o := range b.Options {
		names[i] = o.Name
	}
	return strings.Join(names, ", ")
}
