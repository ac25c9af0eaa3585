package nfs

import (
	"errors"
	"fmt"
	"io"

	nfsc "github.com/willscott/go-nfs-client/nfs"

	"github.com/vmstorbench/vmstorbench/backends"
)

// NewQueue implements backends.Queuer: the I/Os of a Queue are sent and reaped by the one
// goroutine that uses it, which reads the replies itself (see asyncClient), so no goroutine
// is woken per completed I/O. The calls of the I/Os submitted between two Reaps go out
// together when Reap starts (fio's commit).
func (t *target) NewQueue(depth int) (backends.Queue, error) {
	if depth < 1 {
		return nil, fmt.Errorf("nfs: queue depth %d: must be at least 1", depth)
	}
	t.c.mu.Lock()
	err := t.c.broken
	t.c.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("nfs: %s: %w", t.where, err)
	}
	return &queue{t: t, a: t.c.newAsync(), ios: backends.NewSlots[queuedIO](depth)}, nil
}

// queue is a backends.Queue on a target. An I/O larger than the server's limit (rtmax,
// wtmax) is several calls, its pieces, sent together; a piece the server serves short is
// sent again for the rest, as ReadAt and WriteAt do.
type queue struct {
	t      *target
	a      *asyncClient
	ios    backends.Slots[queuedIO]
	pieces []*piece // by index, the calls' tags; pfree lists those not in flight
	pfree  []int
	done   []backends.Completion // completed, not yet reaped
	raw    []asyncResult
	closed bool
}

// queuedIO is one I/O in flight.
type queuedIO struct {
	io      backends.IO
	pending int   // its pieces in flight
	stopAt  int   // where it stopped (the first failed piece, a read's end of file), -1 if not
	err     error // why (io.EOF at the end of the file)
}

// stop records that the I/O ends at off with err, unless it already ends before.
func (s *queuedIO) stop(off int, err error) {
	if s.stopAt < 0 || off < s.stopAt {
		s.stopAt, s.err = off, err
	}
}

// piece is one READ or WRITE call of an I/O; its decoders are made once and reused.
type piece struct {
	k             int // the I/O's index
	start, length int // the bytes of the I/O's buffer it covers
	// Results, written by the decoder on whichever goroutine reads the reply and read by
	// the queue's goroutine after the result is reaped (both under rpcConn.mu's order).
	n         int
	eof       bool
	committed uint32
	verf      [8]byte
	buf       []byte
	decRead   func(d *decoder) error
	decWrite  func(d *decoder) error
}

var errQueueClosed = errors.New("nfs: the queue is closed")

// Submit implements backends.Queue. An I/O that ReadAt or WriteAt would refuse at once (a
// negative offset) completes at once with that error.
func (q *queue) Submit(r backends.IO) error {
	if q.closed {
		return errQueueClosed
	}
	if q.ios.InFlight() == q.ios.Len() {
		return fmt.Errorf("nfs: queue full (%d I/Os in flight)", q.ios.Len())
	}
	if r.Off < 0 || len(r.Buf) == 0 {
		c := backends.Completion{Tag: r.Tag}
		if r.Off < 0 {
			c.Err = fmt.Errorf("nfs: %s %s: negative offset %d", opName(r.Write), q.t.where, r.Off)
		}
		q.done = append(q.done, c)
		return nil
	}
	k, s, _ := q.ios.Take()
	*s = queuedIO{io: r, stopAt: -1}
	max := q.t.rmax
	if r.Write {
		max = q.t.wmax
	}
	for start := 0; start < len(r.Buf); start += max {
		if err := q.sendPiece(k, start, min(max, len(r.Buf)-start)); err != nil {
			if start == 0 {
				q.ios.Put(k)
				return fmt.Errorf("nfs: %s %s at %d: %w", opName(r.Write), q.t.where, r.Off, err)
			}
			// The pieces already sent complete the I/O; it fails from here on.
			s.stop(start, q.ioErr(s, err))
			break
		}
	}
	return nil
}

func opName(write bool) string {
	if write {
		return "write"
	}
	return "read"
}

// ioErr is the error ReadAt or WriteAt returns for a failed call of s.
func (q *queue) ioErr(s *queuedIO, err error) error {
	return fmt.Errorf("nfs: %s %s at %d: %w", opName(s.io.Write), q.t.where, s.io.Off, err)
}

// sendPiece sends the call for length bytes of I/O k from start.
func (q *queue) sendPiece(k, start, length int) error {
	s := q.ios.At(k)
	var p *piece
	var tag int
	if n := len(q.pfree); n > 0 {
		tag = q.pfree[n-1]
		q.pfree = q.pfree[:n-1]
		p = q.pieces[tag]
	} else {
		p = &piece{}
		p.decRead = func(d *decoder) (err error) { p.n, p.eof, err = readResults(d, p.buf); return err }
		p.decWrite = func(d *decoder) (err error) {
			p.n, p.committed, p.verf, err = writeResults(d, len(p.buf))
			return err
		}
		tag = len(q.pieces)
		q.pieces = append(q.pieces, p)
	}
	p.k, p.start, p.length, p.buf = k, start, length, s.io.Buf[start:start+length]
	p.n, p.eof, p.committed = 0, false, 0
	t, off := q.t, uint64(s.io.Off)+uint64(start)
	var err error
	if s.io.Write {
		err = q.a.send(nfsc.NFSProc3Write, "WRITE", func(b *xdrBuf) { writeArgs(b, t.fh, off, length, t.stable) },
			p.buf, p.decWrite, tag)
	} else {
		err = q.a.send(nfsc.NFSProc3Read, "READ", func(b *xdrBuf) { readArgs(b, t.fh, off, length) },
			nil, p.decRead, tag)
	}
	if err != nil {
		p.buf = nil
		q.pfree = append(q.pfree, tag)
		return err
	}
	s.pending++
	return nil
}

// Reap implements backends.Queue.
func (q *queue) Reap(dst []backends.Completion, min int) []backends.Completion {
	if len(q.done) >= min || q.ios.InFlight() == 0 {
		// Nothing to wait for (a poll): still send what was submitted, have the replies
		// read, and take the results that are in.
		q.a.poll()
		q.collect(0)
	}
	for len(q.done) < min && q.ios.InFlight() > 0 {
		// Each result completes at most one I/O: at least this many are needed.
		q.collect(max(1, min-len(q.done)))
	}
	dst = append(dst, q.done...)
	clear(q.done)
	q.done = q.done[:0]
	return dst
}

// collect waits for at least min results of the queue's calls and applies them.
func (q *queue) collect(min int) {
	q.raw = q.a.reap(q.raw[:0], min)
	for _, r := range q.raw {
		q.result(r)
	}
	clear(q.raw)
}

// result applies one call's result to its I/O, which completes with its last piece, as
// ReadAt or WriteAt would have: a short read at the end of the file gives io.EOF, any other
// short piece is sent again for the rest.
func (q *queue) result(r asyncResult) {
	p := q.pieces[r.tag]
	s := q.ios.At(p.k)
	s.pending--
	name := "READ"
	if s.io.Write {
		name = "WRITE"
	}
	var err error
	switch {
	case r.err != nil:
		err = fmt.Errorf("%s: %w", name, r.err)
	case s.io.Write:
		err = checkWrite(p.buf, p.n, p.committed, p.verf, q.t.stable, q.t.noteVerf)
	case p.n < p.length && p.eof:
		s.stop(p.start+p.n, io.EOF)
	case p.n == 0:
		err = errNoProgress
	}
	if err != nil {
		s.stop(p.start+p.n, q.ioErr(s, err))
	} else if p.n < p.length && (s.stopAt < 0 || s.stopAt > p.start+p.n) {
		if serr := q.sendPiece(p.k, p.start+p.n, p.length-p.n); serr != nil {
			s.stop(p.start+p.n, q.ioErr(s, serr))
		}
	}
	p.buf = nil
	q.pfree = append(q.pfree, r.tag)
	if s.pending > 0 {
		return
	}
	c := backends.Completion{Tag: s.io.Tag, N: len(s.io.Buf)}
	if s.stopAt >= 0 {
		c.N, c.Err = s.stopAt, s.err
	}
	q.done = append(q.done, c)
	s.io.Buf = nil
	q.ios.Put(p.k)
}

// Close implements backends.Queue: it waits for the I/Os in flight (bounded by the calls'
// deadlines) and drops their completions.
func (q *queue) Close() error {
	if q.closed {
		return nil
	}
	q.closed = true
	for q.ios.InFlight() > 0 {
		q.Reap(nil, q.ios.InFlight())
	}
	q.done = nil
	q.a.close()
	return nil
}

var _ backends.Queuer = (*target)(nil)
