package nfs

import (
	"time"

	"github.com/vmstorbench/vmstorbench/internal/readtoken"
)

// asyncClient is a client of an rpcConn used by one goroutine that sends calls without
// waiting for them and later reaps their results, as fio's asynchronous engines do (the
// backends.Queue of queue.go). The reaping goroutine reads the socket itself, taking the read
// token as a waiting caller does: replies to its own calls go to its result list and wake
// nobody; replies to other callers' calls are handed to them as usual. A reaper that finds
// the token held waits for it, or for its results, in the token's wait queue (through its
// marker), so that whoever holds the token passes it to the reaper when done (package
// readtoken).
//
// Its calls fail as waiting callers' do: a passed deadline and a broken or closed connection
// complete every one of them, once, with the connection's error.
type asyncClient struct {
	c *rpcConn
	// The records of the calls sent since the last wait, which sends them together (fio's
	// commit). The owner goroutine's only.
	unsent      [][]byte
	unsentCalls []*rpcCall

	// Under rpcConn.mu:
	done []asyncResult
	// The client in the read token: calls in flight (Active), results so far (Completes).
	readtoken.Async
}

// asyncResult is the result of one call of an async client: the call's tag and its error
// (the procedure's results are where its decoder put them).
type asyncResult struct {
	tag int
	err error
}

func (c *rpcConn) newAsync() *asyncClient {
	return &asyncClient{c: c, Async: readtoken.NewAsync()}
}

// completed records cl's result; rpcConn.complete calls it with rpcConn.mu held, after the
// read token counted the completion.
func (a *asyncClient) completed(cl *rpcCall, err error) {
	a.done = append(a.done, asyncResult{tag: cl.tag, err: err})
	cl.decode = nil
	if !cl.queued.Load() {
		a.c.calls.Put(cl)
	}
}

// maxUnsent bounds the buffers one commit sends (IOV_MAX, 1024, is one sendmsg); a call is
// at most three.
const maxUnsent = 1024 - 3

// send queues one call tagged tag (as rpcConn.call: args, payload, decode, the connection's
// timeout as deadline): it goes out with the others sent before the next wait, together.
// decode runs on whoever reads the reply, before the result is reaped. An error means the
// call was not queued and will have no result (the connection has failed, or the call is
// too large); a queued call always has one, an error included.
func (a *asyncClient) send(proc uint32, name string, args func(b *xdrBuf), payload []byte, decode func(d *decoder) error, tag int) error {
	c := a.c
	c.life.RLock()
	defer c.life.RUnlock()
	cl := c.calls.Get().(*rpcCall)
	if err := c.start(cl, nfsProg, nfsVers, proc, name, time.Time{}, args, payload, decode, a, tag); err != nil {
		c.calls.Put(cl)
		return err
	}
	a.unsent = append(a.unsent, cl.hdr)
	if len(payload) > 0 {
		a.unsent = append(a.unsent, payload, zeroPad[:pad4(len(payload))])
	}
	a.unsentCalls = append(a.unsentCalls, cl)
	if len(a.unsent) >= maxUnsent {
		a.commit()
	}
	return nil
}

// poll sends the calls not sent yet and, when nobody reads the socket, wakes the background
// reader for the client's calls in flight, without waiting for anything: a client that only
// polls (reap with min 0) gets its results too.
func (a *asyncClient) poll() {
	c := a.c
	c.life.RLock()
	a.commit()
	c.life.RUnlock()
	c.tok.Poll(&a.Async)
}

// commit sends the calls not sent yet. The caller holds rpcConn.life.
func (a *asyncClient) commit() {
	if len(a.unsentCalls) == 0 {
		return
	}
	c := a.c
	c.mu.Lock()
	broken := c.broken != nil
	c.mu.Unlock()
	if broken {
		// fail completed the calls while they were queued, so none was reused; their
		// records are dropped.
		for _, cl := range a.unsentCalls {
			cl.queued.Store(false)
		}
	} else {
		c.send(a.unsentCalls, a.unsent)
	}
	clear(a.unsent)
	clear(a.unsentCalls)
	a.unsent, a.unsentCalls = a.unsent[:0], a.unsentCalls[:0]
}

// reap waits until at least min results are in (fewer if fewer calls are in flight), then
// appends them all to dst.
func (a *asyncClient) reap(dst []asyncResult, min int) []asyncResult {
	c := a.c
	c.life.RLock()
	defer c.life.RUnlock()
	a.wait(func() bool { return len(a.done) >= min })
	c.mu.Lock()
	dst = append(dst, a.done...)
	clear(a.done)
	a.done = a.done[:0]
	c.mu.Unlock()
	return dst
}

// wait returns when ready (called with rpcConn.mu held) reports true or no call of the
// client is in flight, reading replies itself while it holds the read token. The caller
// holds rpcConn.life.
func (a *asyncClient) wait(ready func() bool) {
	a.commit()
	a.c.tok.WaitAsync(&a.Async, ready)
}

// close waits for the client's calls in flight (bounded by their deadlines) and drops their
// results.
func (a *asyncClient) close() {
	c := a.c
	c.life.RLock()
	a.wait(func() bool { return false })
	c.life.RUnlock()
	c.mu.Lock()
	a.done = nil
	c.mu.Unlock()
}
