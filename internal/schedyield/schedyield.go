// Package schedyield keeps Go's sysmon thread off a goroutine that reads its own replies.
//
// A protocol client whose caller sends a request and then reads the reply itself on a
// blocking socket (the iSCSI initiator and the NBD client, package socktransport) never parks
// at queue depth 1: the goroutine runs on one scheduling tick for as long as it keeps issuing.
// After 10 ms of that, sysmon preempts it: it signals the thread (SIGURG, which interrupts
// the blocking read), takes its P away in the middle of the read, and, having taken something,
// polls every 20 µs for the next 1-2 ms before it backs off again. Measured with the iSCSI
// initiator: ~1.5x the CPU per 4 KiB read at queue depth 1 (perf: ~0.35 sysmon nanosleep per
// read, 9% of the CPU samples in sysmon's thread, the reads hopping between threads).
// Yielding now and then (runtime.Gosched) starts a new tick, and sysmon stays at its 10 ms
// sleep.
package schedyield

import (
	"runtime"
	"time"
)

// Every is how often a Yielder yields: well below the 10 ms after which sysmon preempts a
// goroutine that has not been rescheduled.
const Every = 5 * time.Millisecond

// Yielder yields the thread when Every has passed since it last did. The zero value is ready
// to use. It is not safe for concurrent use: it belongs to whoever reads (a read token's
// holder).
type Yielder struct {
	last time.Time
}

// Maybe yields (runtime.Gosched) if Every has passed since the last yield, and reports
// whether it did. Call it before a read that may block.
func (y *Yielder) Maybe() bool {
	now := time.Now()
	if now.Sub(y.last) < Every {
		return false
	}
	y.last = now
	runtime.Gosched()
	return true
}
