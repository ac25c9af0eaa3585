package nbd

import (
	"github.com/vmstorbench/vmstorbench/internal/nbdproto"
	"github.com/vmstorbench/vmstorbench/internal/readtoken"
)

// async is a client of a conn used by one goroutine that sends requests without waiting
// for them and later reaps their results, as fio's asynchronous engines do. The reaping
// goroutine reads the socket itself (it takes the read token like a synchronous caller):
// replies to its own requests go to its result list and wake nobody; replies to other
// callers' requests (synchronous do from other goroutines) are handed over as usual. A
// reaper that finds the token held waits for it, or for its results, in the token's wait
// queue (through its marker), so that whoever holds the token passes it to the reaper when
// it is done (package readtoken).
//
// Its requests fail as synchronous ones do: the watchdog's deadline and a broken or closed
// connection complete every one of them, once, with the connection's error.
type async struct {
	c *conn
	// unsent holds the headers and payloads of the requests sent since the last wait, which
	// sends them with one sendmsg (fio's commit). The owner goroutine's only.
	unsent [][]byte

	// Under conn.mu:
	slots []*call // free slots kept for the next sends (see completed)
	done  []asyncResult
	// The client in the read token: requests in flight (Active), results so far (Completes).
	readtoken.Async
}

// asyncResult is the result of one request of an async client.
type asyncResult struct {
	tag uint64
	err error
}

func (c *conn) newAsync() *async {
	return &async{c: c, Async: readtoken.NewAsync()}
}

// completed records cl's result; conn.complete calls it with conn.mu held, after the read
// token counted the completion. The client keeps the slot for its next send (a channel
// operation less each way: ~5% of the CPU per 4 KiB read at queue depth 32) while it has
// requests in flight and keeps fewer than half the connection's slots; otherwise, and all of
// them once it is idle, the slots go back to the connection, so that synchronous callers and
// other clients never wait for an idle client.
func (a *async) completed(cl *call, err error) {
	a.done = append(a.done, asyncResult{tag: cl.tag, err: err})
	cl.a = nil
	switch {
	case a.Active() == 0:
		for _, s := range a.slots {
			a.c.free <- s // never blocks: the channel holds every slot
		}
		clear(a.slots)
		a.slots = a.slots[:0]
		a.c.free <- cl
	case a.Active()+len(a.slots) < maxInFlight/2:
		a.slots = append(a.slots, cl)
	default:
		a.c.free <- cl
	}
}

// send queues one request tagged tag: it goes out with the others sent before the next wait
// (reap, or a wait for a free slot), in one sendmsg. A read's payload goes to buf, a write's
// is payload; neither is touched until its result is reaped. An error means the request was
// not queued and will have no result (the connection has failed); a queued request always
// has one, an error included.
func (a *async) send(typ, flags uint16, off uint64, length uint32, buf, payload []byte, tag uint64) error {
	c := a.c
	c.life.RLock()
	defer c.life.RUnlock()
	cl, err := a.slot()
	if err != nil {
		return err
	}
	c.mu.Lock()
	handle, err := c.activateLocked(cl, typ, buf, a)
	if err == nil {
		cl.tag = tag
	}
	c.mu.Unlock()
	if err != nil {
		c.free <- cl
		return err
	}

	nbdproto.Request{Flags: flags, Type: typ, Handle: handle, Offset: off, Length: length}.Put(cl.hdr[:])
	a.unsent = append(a.unsent, cl.hdr[:])
	if payload != nil {
		a.unsent = append(a.unsent, payload)
	}
	if len(a.unsent) >= maxUnsent {
		a.commit()
	}
	return nil
}

// maxUnsent bounds the buffers one commit sends: IOV_MAX (1024) is one sendmsg.
const maxUnsent = 1024

// poll sends the requests not sent yet and, when nobody reads the socket, wakes the
// background reader for the client's requests in flight, without waiting for anything: a
// client that only polls (reap with min 0) gets its results too.
func (a *async) poll() {
	c := a.c
	c.life.RLock()
	a.commit()
	c.life.RUnlock()
	c.tok.Poll(&a.Async)
}

// commit sends the requests not sent yet, in one sendmsg when the socket takes them.
func (a *async) commit() {
	if len(a.unsent) == 0 {
		return
	}
	c := a.c
	var err error
	if c.err() == nil { // else fail completed them (and their slots may carry other requests)
		c.wmu.Lock()
		// As in do: a send about to block wakes the background reader (nobody may be reaping).
		err = c.tr.WriteBuffers(a.unsent, c.blocked)
		c.wmu.Unlock()
	}
	clear(a.unsent)
	a.unsent = a.unsent[:0]
	if err != nil {
		// fail completes the requests with the connection's error: each has its result.
		c.fail(c.connErr("send", err))
	}
}

// slot returns a free slot: one the client kept, else one of the connection's; when none is
// free and the client has requests in flight, it reaps until one of them completes.
func (a *async) slot() (*call, error) {
	c := a.c
	for {
		c.mu.Lock()
		if n := len(a.slots); n > 0 {
			cl := a.slots[n-1]
			a.slots[n-1] = nil
			a.slots = a.slots[:n-1]
			c.mu.Unlock()
			return cl, nil
		}
		active, completes := a.Active(), a.Completes()
		c.mu.Unlock()
		select {
		case cl := <-c.free:
			return cl, nil
		default:
		}
		if active == 0 {
			break
		}
		a.wait(func() bool { return a.Completes() != completes })
	}
	select {
	case cl := <-c.free:
		return cl, nil
	case <-c.failed:
		return nil, c.err()
	}
}

// reap waits until at least min results are in (fewer if fewer requests are in flight),
// then appends them all to dst.
func (a *async) reap(dst []asyncResult, min int) []asyncResult {
	c := a.c
	c.life.RLock()
	defer c.life.RUnlock()
	a.wait(func() bool { return len(a.done) >= min })
	c.mu.Lock()
	dst = append(dst, a.done...)
	a.done = a.done[:0]
	c.mu.Unlock()
	return dst
}

// wait returns when ready (called with conn.mu held) reports true or no request of the
// client is in flight, reading replies itself while it holds the read token. The caller
// holds conn.life.
func (a *async) wait(ready func() bool) {
	a.commit()
	a.c.tok.WaitAsync(&a.Async, ready)
}

// close waits for the client's requests in flight (bounded by the watchdog's deadline) and
// drops their results.
func (a *async) close() {
	c := a.c
	c.life.RLock()
	a.wait(func() bool { return false })
	c.life.RUnlock()
	c.mu.Lock()
	a.done = nil
	c.mu.Unlock()
}
