package iscsi

import (
	"errors"
	"fmt"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/backends/iscsi/initiator"
)

// NewQueue implements backends.Queuer: the I/Os of one goroutine in flight on the Target's
// session through an initiator.Queue, whose Reap reads the responses itself.
func (t *Target) NewQueue(depth int) (backends.Queue, error) {
	if depth < 1 {
		return nil, fmt.Errorf("iscsi: queue depth %d (at least 1)", depth)
	}
	q, err := t.s.NewQueue()
	if err != nil {
		return nil, err
	}
	return &queue{t: t, q: q, ios: backends.NewSlots[queuedIO](depth)}, nil
}

// queue is a backends.Queue on a Target. An I/O longer than the LUN's largest transfer is
// split into several commands (as ReadAt splits it) and completes when the last one does.
type queue struct {
	t      *Target
	q      *initiator.Queue
	ios    backends.Slots[queuedIO] // the I/Os submitted and not yet reaped
	local  []backends.Completion    // completed without a command: reaped by the next Reap
	cs     []initiator.Completion   // Reap's scratch
	split  int                      // I/Os of more than one command in flight
	closed bool
}

type queuedIO struct {
	tag   int
	parts int   // commands in flight
	n     int   // bytes the I/O returns if every command succeeds
	end   error // nil, or io.EOF for a read clipped at the end of the LUN
	// The failed command nearest the start: the I/O returns the bytes before it.
	failAt  int
	failErr error
	// Offsets of the commands (pieces), relative to the I/O: failAt is one of them.
	offs []int
}

func (q *queue) Submit(io backends.IO) error {
	if q.closed {
		return initiator.ErrQueueClosed
	}
	if q.ios.InFlight()+len(q.local) >= q.ios.Len() {
		return fmt.Errorf("iscsi: queue full (depth %d)", q.ios.Len())
	}
	t := q.t
	op := "read"
	if io.Write {
		op = "write"
	}
	if io.Write && !t.writable {
		q.complete(io.Tag, 0, errors.New("iscsi: the LUN was opened for reading only"))
		return nil
	}
	if err := t.aligned(op, io.Off, len(io.Buf)); err != nil {
		q.complete(io.Tag, 0, err)
		return nil
	}
	slot, qi, _ := q.ios.Take()
	*qi = queuedIO{tag: io.Tag, offs: qi.offs[:0]}
	// BlockDevice clips a read at the end of the LUN (io.EOF), refuses a write past it, and
	// splits what is longer than one command may carry; each piece becomes one command.
	var submitErr error
	piece := func(b []byte, off int64) error {
		lba, blocks := uint64(off/t.blockSize), uint32(int64(len(b))/t.blockSize)
		var err error
		// The command's tag names the I/O's slot and the piece.
		tag := len(qi.offs)*q.ios.Len() + slot
		if io.Write {
			err = q.q.Write16(t.lun, lba, blocks, b, t.fua, tag)
		} else {
			err = q.q.Read16(t.lun, lba, blocks, b, tag)
		}
		if err != nil {
			submitErr = err
			return err
		}
		qi.parts++
		qi.offs = append(qi.offs, int(off-io.Off))
		return nil
	}
	var n int
	var err error
	if io.Write {
		n, err = t.device().WriteAt(io.Buf, io.Off, piece)
	} else {
		n, err = t.device().ReadAt(io.Buf, io.Off, piece)
	}
	switch {
	case qi.parts == 0 && submitErr != nil:
		// Nothing went out: the I/O is not queued.
		q.release(slot)
		return submitErr
	case qi.parts == 0:
		// Done without a command: empty, past the end, refused.
		q.release(slot)
		q.complete(io.Tag, n, err)
		return nil
	case submitErr != nil:
		// Some pieces are in flight: the I/O completes with the error once they are in.
		qi.n, qi.failAt, qi.failErr = n, n, submitErr
	default:
		qi.n, qi.end = n, err
	}
	if qi.parts > 1 {
		q.split++
	}
	return nil
}

func (q *queue) complete(tag, n int, err error) {
	q.local = append(q.local, backends.Completion{Tag: tag, N: n, Err: err})
}

func (q *queue) release(slot int) { q.ios.Put(slot) }

func (q *queue) Reap(dst []backends.Completion, atLeast int) []backends.Completion {
	got := 0
	polled := false
	for {
		if len(q.local) > 0 {
			dst = append(dst, q.local...)
			got += len(q.local)
			clear(q.local)
			q.local = q.local[:0]
		}
		if q.ios.InFlight() == 0 || polled && got >= atLeast {
			return dst
		}
		// Each command completes one I/O unless some are split.
		want := max(atLeast-got, 0)
		if q.split > 0 {
			want = min(want, 1)
		}
		q.cs = q.q.Reap(q.cs[:0], want)
		polled = true
		for _, c := range q.cs {
			slot, piece := c.Tag%q.ios.Len(), c.Tag/q.ios.Len()
			qi := q.ios.At(slot)
			qi.parts--
			if c.Err != nil {
				if off := qi.offs[piece]; qi.failErr == nil || off < qi.failAt {
					qi.failAt, qi.failErr = off, c.Err
				}
			}
			if qi.parts > 0 {
				continue
			}
			if len(qi.offs) > 1 {
				q.split--
			}
			if qi.failErr != nil {
				q.complete(qi.tag, qi.failAt, qi.failErr)
			} else {
				q.complete(qi.tag, qi.n, qi.end)
			}
			q.release(slot)
		}
	}
}

// Close waits for the I/Os in flight (their completions are dropped) and releases the
// initiator's queue.
func (q *queue) Close() error {
	if q.closed {
		return nil
	}
	q.closed = true
	clear(q.local)
	q.local = q.local[:0]
	return q.q.Close()
}
