package backends

// Queuer is implemented by Targets whose client can keep several I/Os in flight from one
// goroutine, as fio's asynchronous ioengines do (queue, commit, getevents). The engine drives a
// job of iodepth > 1 through one Queue instead of iodepth goroutines each calling ReadAt or
// WriteAt: the goroutine that submits the I/Os also reaps their completions, so no goroutine
// is woken per completed I/O. (With goroutines, Go's scheduler wakes its second thread for
// every response handed to a waiting caller: 1.4× libiscsi's CPU per 4 KiB read at QD32,
// against 0.74× when nothing is handed over.)
type Queuer interface {
	// NewQueue returns a Queue for at most depth I/Os in flight at once.
	NewQueue(depth int) (Queue, error)
}

// IO is one request on a Queue.
type IO struct {
	Write bool
	Off   int64
	// Buf is read into or written from. The caller does not touch it until the IO completes.
	Buf []byte
	// Tag is the caller's; the IO's Completion carries it back.
	Tag int
}

// Completion is one finished IO.
type Completion struct {
	Tag int
	// N and Err are what ReadAt or WriteAt would have returned for the same request (a short
	// read past the end with io.EOF, a deadline error from a server that stopped answering).
	N   int
	Err error
}

// Queue keeps I/Os in flight on one Target. One goroutine uses a Queue (as fio's thread uses
// its io_u's); the Target's own methods (Sync, Close, ReadAt from elsewhere) stay usable
// concurrently.
type Queue interface {
	// Submit queues io without waiting for it: it may send it at once or hold it until the
	// next Reap (fio's commit). An error means the io was not queued and will not complete
	// (the queue is full, the target has failed); IOs queued before it still complete.
	Submit(io IO) error
	// Reap waits until at least min IOs have completed since the last Reap (fewer if fewer
	// are in flight), then appends every completion it has to dst and returns it. Every
	// queued IO completes exactly once; when the target fails, with an error, within the
	// backend's deadlines, so Reap never waits forever.
	Reap(dst []Completion, min int) []Completion
	// Close completes (or fails) what is still in flight and releases the queue, not the
	// Target.
	Close() error
}

// Do performs r on t with ReadAt or WriteAt and returns its Completion: the whole of a Queue
// whose I/O is done by the time Submit returns (memory, test targets).
func Do(t Target, r IO) Completion {
	c := Completion{Tag: r.Tag}
	if r.Write {
		c.N, c.Err = t.WriteAt(r.Buf, r.Off)
	} else {
		c.N, c.Err = t.ReadAt(r.Buf, r.Off)
	}
	return c
}
