// Package mem registers the mem:// backend: a Target held in this process's memory, for tests
// and for measuring the engine with real copies. Each Open gets its own memory.
package mem

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sync"

	"github.com/vmstorbench/vmstorbench/backends"
)

func init() {
	backends.Register(backends.Backend{
		Scheme:      "mem",
		Description: "in-memory device, one per job (tests, engine overhead with copies)",
		URLForms:    []string{"mem://", "mem://?size=256m"},
		Options:     []backends.Option{{Name: "size", Help: "device size (fio units)", Default: "the workload's offset+size"}},
		Open:        open,
	})
}

// stripe is the span one lock covers: concurrent I/Os to different stripes do not contend,
// and overlapping ones are serialised so the data stays consistent.
const stripe = 1 << 20

// maxSize guards against a typo allocating all of the machine's memory.
const maxSize = 16 << 30

// Target is an in-memory device.
type Target struct {
	data  []byte
	locks []sync.RWMutex
}

// New returns an in-memory Target of size bytes.
func New(size int64) (*Target, error) {
	if size <= 0 || size > maxSize {
		return nil, fmt.Errorf("mem: size %d out of range (1 byte to 16GiB)", size)
	}
	return &Target{data: make([]byte, size), locks: make([]sync.RWMutex, (size+stripe-1)/stripe)}, nil
}

func open(_ context.Context, u *url.URL, p backends.OpenParams) (backends.Target, error) {
	size, err := backends.NewQuery(u).Size("size", p.Size)
	if err != nil {
		return nil, err
	}
	return New(size)
}

func (t *Target) span(off int64, n int) (int, int, error) {
	if off < 0 || off+int64(n) > int64(len(t.data)) {
		return 0, 0, fmt.Errorf("mem: I/O of %d bytes at %d beyond device size %d: %w", n, off, len(t.data), io.ErrUnexpectedEOF)
	}
	return int(off / stripe), int((off + int64(n) - 1) / stripe), nil
}

func (t *Target) ReadAt(b []byte, off int64) (int, error) {
	first, last, err := t.span(off, len(b))
	if err != nil {
		return 0, err
	}
	for i := first; i <= last; i++ {
		t.locks[i].RLock()
	}
	n := copy(b, t.data[off:])
	for i := first; i <= last; i++ {
		t.locks[i].RUnlock()
	}
	return n, nil
}

func (t *Target) WriteAt(b []byte, off int64) (int, error) {
	first, last, err := t.span(off, len(b))
	if err != nil {
		return 0, err
	}
	for i := first; i <= last; i++ {
		t.locks[i].Lock()
	}
	n := copy(t.data[off:], b)
	for i := first; i <= last; i++ {
		t.locks[i].Unlock()
	}
	return n, nil
}

func (t *Target) Sync() error                 { return nil }
func (t *Target) Size() int64                 { return int64(len(t.data)) }
func (t *Target) Close() error                { return nil }
func (t *Target) Describe() map[string]string { return map[string]string{"access": "memory"} }

// NewQueue returns a Queue on t: Submit copies at once (memory has nothing to wait for) and
// Reap hands back what Submit did, so the engine's queue mode runs without a network.
func (t *Target) NewQueue(depth int) (backends.Queue, error) {
	if depth < 1 {
		return nil, fmt.Errorf("mem: queue depth %d: must be at least 1", depth)
	}
	return &queue{t: t, depth: depth, done: make([]backends.Completion, 0, depth)}, nil
}

// queue is a Target's Queue: the completions of the I/Os submitted since the last Reap.
type queue struct {
	t      *Target
	depth  int
	done   []backends.Completion
	closed bool
}

func (q *queue) Submit(io backends.IO) error {
	switch {
	case q.closed:
		return errors.New("mem: queue closed")
	case len(q.done) >= q.depth:
		return fmt.Errorf("mem: queue full (%d in flight)", q.depth)
	}
	q.done = append(q.done, backends.Do(q.t, io))
	return nil
}

// Reap never waits: every submitted I/O is already done.
func (q *queue) Reap(dst []backends.Completion, _ int) []backends.Completion {
	dst = append(dst, q.done...)
	q.done = q.done[:0]
	return dst
}

func (q *queue) Close() error {
	q.closed, q.done = true, nil
	return nil
}
