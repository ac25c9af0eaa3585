package linkemu

import (
	"encoding/binary"
	"net"
	"sort"
	"testing"
	"time"
)

// udpPair starts a relay between two local UDP sockets and returns them (A, B) with the
// relay.
func udpPair(t *testing.T, l Link) (*net.UDPConn, *net.UDPConn, *UDPRelay, *net.UDPAddr, *net.UDPAddr) {
	t.Helper()
	a, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	b, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	_ = b.SetReadBuffer(8 << 20)
	r, err := StartUDP(l, a.LocalAddr().String(), b.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); a.Close(); b.Close() })
	fa, _ := net.ResolveUDPAddr("udp", r.ForA())
	fb, _ := net.ResolveUDPAddr("udp", r.ForB())
	return a, b, r, fa, fb
}

// oneWay sends n stamped datagrams from src to dst through the relay, spaced by gap, and
// returns the one-way delays seen.
func oneWay(t *testing.T, src, dst *net.UDPConn, to *net.UDPAddr, n int, gap time.Duration) []time.Duration {
	t0 := time.Now()
	go func() {
		for i := 0; i < n; i++ {
			var b [64]byte
			binary.LittleEndian.PutUint64(b[:], uint64(time.Since(t0)))
			src.WriteToUDP(b[:], to)
			time.Sleep(gap)
		}
	}()
	var out []time.Duration
	buf := make([]byte, 2048)
	for len(out) < n {
		_ = dst.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		k, _, err := dst.ReadFromUDP(buf)
		if err != nil {
			break
		}
		if k >= 8 {
			out = append(out, time.Since(t0)-time.Duration(binary.LittleEndian.Uint64(buf)))
		}
	}
	return out
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func TestUDPRelayDelay(t *testing.T) {
	for _, c := range []struct {
		lat      time.Duration
		min, max time.Duration
	}{
		{0, 0, 2 * time.Millisecond},
		{10 * time.Millisecond, 9500 * time.Microsecond, 14 * time.Millisecond},
	} {
		a, b, _, fa, fb := udpPair(t, Link{Name: "t", Latency: c.lat})
		ab := oneWay(t, a, b, fa, 50, 2*time.Millisecond)
		ba := oneWay(t, b, a, fb, 50, 2*time.Millisecond)
		if len(ab) != 50 || len(ba) != 50 {
			t.Fatalf("latency %v: got %d and %d of 50 datagrams", c.lat, len(ab), len(ba))
		}
		t.Logf("latency %v: median one-way %v A→B, %v B→A", c.lat, median(ab), median(ba))
		for _, m := range []time.Duration{median(ab), median(ba)} {
			if m < c.min || m > c.max {
				t.Errorf("latency %v: median one-way %v, want %v–%v", c.lat, m, c.min, c.max)
			}
		}
	}
}

func TestUDPRelayRate(t *testing.T) {
	// 1 MB/s: 200 datagrams of 1000 bytes sent at once (within the queue's 1 MiB) take
	// 0.2 s to cross.
	a, b, r, fa, _ := udpPair(t, Link{Name: "t", Bandwidth: 1_000_000})
	payload := make([]byte, 1000)
	t0 := time.Now()
	for i := 0; i < 200; i++ {
		a.WriteToUDP(payload, fa)
	}
	buf := make([]byte, 2048)
	got := 0
	var last time.Time
	for got < 200 {
		_ = b.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, _, err := b.ReadFromUDP(buf); err != nil {
			break
		}
		got++
		last = time.Now()
	}
	if got != 200 {
		t.Fatalf("%d of 200 datagrams arrived (stats %+v)", got, r.Stats())
	}
	if d := last.Sub(t0); d < 180*time.Millisecond || d > 300*time.Millisecond {
		t.Errorf("200 kB at 1 MB/s took %v, want ~200 ms", d)
	}
	// Beyond the queue, a burst is dropped, not queued without bound.
	for i := 0; i < 1500; i++ {
		a.WriteToUDP(payload, fa)
	}
	time.Sleep(50 * time.Millisecond)
	if r.Stats().Dropped[0] == 0 {
		t.Errorf("1.5 MB burst into a 1 MiB queue: nothing dropped")
	}
}

func TestUDPRelayLoss(t *testing.T) {
	a, b, r, fa, _ := udpPair(t, Link{Name: "t", Loss: 20})
	got := oneWay(t, a, b, fa, 1000, 50*time.Microsecond)
	st := r.Stats()
	if st.Lost[0] < 140 || st.Lost[0] > 260 || int64(len(got))+st.Lost[0] != 1000 {
		t.Errorf("20%% loss: %d arrived, %d lost of 1000", len(got), st.Lost[0])
	}
}

func TestParseLoss(t *testing.T) {
	l, err := Parse("wan,loss=0.5%")
	if err != nil || l.Loss != 0.5 || l.Latency != 20*time.Millisecond {
		t.Fatalf("%+v %v", l, err)
	}
	if _, err := Parse("loss=120"); err == nil {
		t.Error("loss=120: no error")
	}
}

// TestUDPRelaySetLink reshapes a running relay: no delay, then 30 ms, then none again.
func TestUDPRelaySetLink(t *testing.T) {
	a, b, r, fa, _ := udpPair(t, Link{Name: "none"})
	for _, lat := range []time.Duration{0, 30 * time.Millisecond, 0} {
		r.SetLink(Link{Name: "t", Latency: lat})
		d := oneWay(t, a, b, fa, 20, 2*time.Millisecond)
		if len(d) != 20 {
			t.Fatalf("latency %v: got %d of 20 datagrams", lat, len(d))
		}
		if m := median(d); m < lat || m > lat+10*time.Millisecond {
			t.Errorf("latency set to %v: median one way %v", lat, m)
		}
		if r.Link().Latency != lat {
			t.Errorf("Link() = %+v after SetLink(%v)", r.Link(), lat)
		}
	}
}
