package linkemu

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// UDPRelay is an emulated link between two endpoints that exchange UDP datagrams (QEMU's
// UDP socket netdev: one Ethernet frame per datagram). Toxiproxy only proxies TCP, and a TCP
// netdev between two guests stalls every multi-frame message on Nagle and delayed ACKs on
// the host (~49 ms here), so the testbed's DRBD replication link is UDP end to end, relayed
// here with the Link's latency, jitter, bandwidth and loss in each direction.
//
// Each direction is a queue: a datagram is serialised at the link's bandwidth after those
// ahead of it, then delivered Latency (± Jitter) later, in order. A full queue drops
// (like a router's buffer): it holds max(1 MiB, 200 ms at the link's rate).
type UDPRelay struct {
	// link is the shape in force: SetLink changes it while datagrams flow (one testbed
	// pair serves runs over LAN and WAN in turn).
	link  atomic.Pointer[Link]
	dirs  [2]*udpDir
	wg    sync.WaitGroup
	close sync.Once
}

// udpDir is one direction: datagrams arriving on in are sent on to dst.
type udpDir struct {
	relay *UDPRelay
	in    *net.UDPConn
	dst   *net.UDPAddr
	rng   *rand.Rand
	q     chan packet

	// Only the reader touches these.
	lastTxEnd time.Time
	lastDue   time.Time
	queued    atomic.Int64 // bytes waiting

	forwarded, dropped, lost atomic.Int64
	maxSize, maxQueued       atomic.Int64
}

type packet struct {
	b   []byte
	due time.Time
}

// UDPStats counts datagrams per direction (0: A→B, 1: B→A): forwarded, dropped by a full
// queue, lost on purpose (Loss).
type UDPStats struct {
	Forwarded, Dropped, Lost [2]int64
	// MaxDatagram and MaxQueued are the largest datagram and the most bytes queued seen.
	MaxDatagram, MaxQueued [2]int64
}

// maxDatagram is the largest datagram relayed: a QEMU socket netdev frame is at most 69 KiB
// (64 KiB with offloads and the virtio-net header).
const maxDatagram = 70 << 10

// StartUDP starts a relay between endpoint A, which receives on a, and B, which receives on
// b (host:port on 127.0.0.1). A must send to ForA() and B to ForB().
func StartUDP(l Link, a, b string) (*UDPRelay, error) {
	if l.Cut > 0 {
		return nil, errors.New("udp relay: cut= is for the TCP links (migration, storage, disk), not the UDP relay: use loss=100% to take it down")
	}
	aAddr, err := net.ResolveUDPAddr("udp", a)
	if err != nil {
		return nil, fmt.Errorf("udp relay: A %q: %w", a, err)
	}
	bAddr, err := net.ResolveUDPAddr("udp", b)
	if err != nil {
		return nil, fmt.Errorf("udp relay: B %q: %w", b, err)
	}
	r := &UDPRelay{}
	r.link.Store(&l)
	for i, dst := range []*net.UDPAddr{bAddr, aAddr} {
		in, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			r.Close()
			return nil, fmt.Errorf("udp relay: listen: %w", err)
		}
		// Bursts of frames (a 1 MiB DRBD write is ~750 of them) must not overflow the
		// socket before the reader drains it.
		_ = in.SetReadBuffer(4 << 20)
		d := &udpDir{relay: r, in: in, dst: dst, q: make(chan packet, 16384),
			rng: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(i)))}
		r.dirs[i] = d
		r.wg.Add(2)
		go d.read()
		go d.send()
	}
	return r, nil
}

// ForA is where A sends (its netdev's udp=); ForB is where B sends.
func (r *UDPRelay) ForA() string { return r.dirs[0].in.LocalAddr().String() }
func (r *UDPRelay) ForB() string { return r.dirs[1].in.LocalAddr().String() }

// Link is the emulated link in force.
func (r *UDPRelay) Link() Link { return *r.link.Load() }

// SetLink changes the link's shape from the next datagram on (those already queued keep
// the times they were given).
func (r *UDPRelay) SetLink(l Link) { r.link.Store(&l) }

// Stats returns the counters so far.
func (r *UDPRelay) Stats() UDPStats {
	var s UDPStats
	for i, d := range r.dirs {
		if d == nil {
			continue
		}
		s.Forwarded[i], s.Dropped[i], s.Lost[i] = d.forwarded.Load(), d.dropped.Load(), d.lost.Load()
		s.MaxDatagram[i], s.MaxQueued[i] = d.maxSize.Load(), d.maxQueued.Load()
	}
	return s
}

// Close stops the relay and waits for its goroutines.
func (r *UDPRelay) Close() error {
	r.close.Do(func() {
		for _, d := range r.dirs {
			if d != nil {
				d.in.Close()
			}
		}
	})
	r.wg.Wait()
	return nil
}

func (d *udpDir) read() {
	defer d.relay.wg.Done()
	raisePriority()
	defer close(d.q)
	buf := make([]byte, maxDatagram)
	for {
		n, _, err := d.in.ReadFromUDP(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // a transient error (ICMP port unreachable from a node not yet up)
		}
		l := *d.relay.link.Load()
		// Nothing queued may be overtaken when the link was just made faster.
		immediate := l.Latency == 0 && l.Jitter == 0 && l.Bandwidth == 0 && d.queued.Load() == 0
		limit := max(int64(1<<20), l.Bandwidth/5)
		if int64(n) > d.maxSize.Load() {
			d.maxSize.Store(int64(n))
		}
		if l.Loss > 0 && d.rng.Float64()*100 < l.Loss {
			d.lost.Add(1)
			continue
		}
		if immediate {
			// No queue, no goroutine hand-off: the control case adds nothing but the copy.
			if _, err := d.in.WriteToUDP(buf[:n], d.dst); err == nil {
				d.forwarded.Add(1)
			}
			continue
		}
		if d.queued.Load()+int64(n) > limit {
			d.dropped.Add(1)
			continue
		}
		now := time.Now()
		txEnd := now
		if l.Bandwidth > 0 {
			start := now
			if d.lastTxEnd.After(start) {
				start = d.lastTxEnd
			}
			txEnd = start.Add(time.Duration(float64(n) / float64(l.Bandwidth) * float64(time.Second)))
			d.lastTxEnd = txEnd
		}
		due := txEnd.Add(l.Latency)
		if l.Jitter > 0 {
			due = due.Add(time.Duration((d.rng.Float64()*2 - 1) * float64(l.Jitter)))
		}
		// Datagrams stay in order: jitter never overtakes.
		if due.Before(d.lastDue) {
			due = d.lastDue
		}
		d.lastDue = due
		p := packet{b: append([]byte(nil), buf[:n]...), due: due}
		if q := d.queued.Add(int64(n)); q > d.maxQueued.Load() {
			d.maxQueued.Store(q)
		}
		select {
		case d.q <- p:
		default:
			d.queued.Add(-int64(n))
			d.dropped.Add(1)
		}
	}
}

func (d *udpDir) send() {
	defer d.relay.wg.Done()
	raisePriority()
	for p := range d.q {
		sleepUntil(p.due)
		d.queued.Add(-int64(len(p.b)))
		if _, err := d.in.WriteToUDP(p.b, d.dst); err == nil {
			d.forwarded.Add(1)
		}
	}
}

// raisePriority gives the calling goroutine a thread of its own with a higher scheduling
// weight (nice -10, when allowed). On a loaded host (load 12 on 2 cores here) a relay
// thread that slept until a datagram was due woke ~7 ms late under equal weights, which is
// the link's latency itself at lan scale. The threads sleep almost all the time, so the
// weight costs the host nothing. Without the privilege this does nothing but pin the thread.
func raisePriority() {
	runtime.LockOSThread()
	_ = unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), -10)
}

// sleepUntil sleeps until t with nanosleep(2) on the calling goroutine's own thread (see
// raisePriority): a kernel high-resolution timer, where a Go timer wakes through the
// runtime's poller, which added ~1-2 ms to each 10 ms delay here.
func sleepUntil(t time.Time) {
	for {
		wait := time.Until(t)
		if wait <= 0 {
			return
		}
		ts := unix.NsecToTimespec(int64(wait))
		if err := unix.Nanosleep(&ts, nil); err == nil {
			return
		}
		// EINTR: sleep what is left.
	}
}
