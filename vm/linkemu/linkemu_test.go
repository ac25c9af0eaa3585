package linkemu

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Link
	}{
		{"lan", Link{Name: "lan", Bandwidth: 125_000_000}},
		{"wan", Link{Name: "wan", Latency: 20 * time.Millisecond, Jitter: 5 * time.Millisecond, Bandwidth: 12_500_000}},
		{"wan,bandwidth=10mbit", Link{Name: "wan", Latency: 20 * time.Millisecond, Jitter: 5 * time.Millisecond, Bandwidth: 1_250_000}},
		{"latency=50ms,jitter=10ms,bandwidth=1gbit", Link{Name: "custom", Latency: 50 * time.Millisecond, Jitter: 10 * time.Millisecond, Bandwidth: 125_000_000}},
		{"latency=5ms,bw=2m", Link{Name: "custom", Latency: 5 * time.Millisecond, Bandwidth: 2 << 20}},
		{"lan,cut=3s", Link{Name: "lan", Bandwidth: 125_000_000, Cut: 3 * time.Second}},
		{"cut=500ms", Link{Name: "custom", Cut: 500 * time.Millisecond}},
	} {
		got, err := Parse(c.in)
		if err != nil || got != c.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"moon", "latency", "latency=fast", "bandwidth=-1", "color=red", "latency=1ms,jitter=5ms", "lan,wan", "cut=0", "cut=-1s", "cut=soon"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

// TestProxyShapesTraffic sends data through a link with latency and a bandwidth cap and
// checks both are felt: a round trip takes at least twice the one-way latency, and 200 KB
// at 1 MB/s takes about 200 ms.
func TestProxyShapesTraffic(t *testing.T) {
	c := dialThrough(t, Link{Name: "test", Latency: 30 * time.Millisecond, Bandwidth: 1_000_000},
		func(c net.Conn) { io.Copy(c, c) }) // echo
	start := time.Now()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	if rtt := time.Since(start); rtt < 55*time.Millisecond {
		t.Errorf("round trip %s with 30 ms each way", rtt)
	}
	data, echo := make([]byte, 200_000), make([]byte, 200_000)
	start = time.Now()
	go c.Write(data)
	if _, err := io.ReadFull(c, echo); err != nil {
		t.Fatal(err)
	}
	// Shaped in both directions (the echo goes back through the link): at least ~200 ms.
	if d := time.Since(start); d < 180*time.Millisecond {
		t.Errorf("200 KB at 1 MB/s took %s", d)
	}
}

// TestProxyHoldsTheSenderToTheRate writes 24 MB into a 8 MB/s link with latency: the sender
// must be held to the link's rate (before, toxiproxy's latency queue took 32 MB at once and a
// migration "completed" seconds before its data arrived). Loopback socket buffers can take
// a few MB, so the bound is loose: at least 1.5 s of the ~3 s the link needs.
func TestProxyHoldsTheSenderToTheRate(t *testing.T) {
	c := dialThrough(t, Link{Name: "test", Latency: 10 * time.Millisecond, Bandwidth: 8_000_000},
		func(c net.Conn) { io.Copy(io.Discard, c) })
	start := time.Now()
	if _, err := c.Write(make([]byte, 24_000_000)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 1500*time.Millisecond {
		t.Errorf("24 MB went into a 8 MB/s link in %s: the link buffers instead of holding the sender back", d)
	}
}

// dialThrough starts a server that runs serve on each connection, puts l in front of it and
// returns a connection through the link (closed, with everything else, when the test ends).
func dialThrough(t *testing.T, l Link, serve func(net.Conn)) net.Conn {
	t.Helper()
	c, _ := dialProxy(t, l, serve)
	return c
}

// TestProxyCountsBytes checks the byte counters of each direction, shaped and unshaped.
func TestProxyCountsBytes(t *testing.T) {
	for _, l := range []Link{{Name: "plain"}, {Name: "shaped", Latency: time.Millisecond, Bandwidth: 50_000_000}} {
		c, p := dialProxy(t, l, func(c net.Conn) {
			buf := make([]byte, 1000)
			if _, err := io.ReadFull(c, buf); err == nil {
				c.Write(buf[:10])
			}
		})
		if _, err := c.Write(make([]byte, 1000)); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, make([]byte, 10)); err != nil {
			t.Fatal(err)
		}
		if up, down := p.Bytes(); up != 1000 || down != 10 {
			t.Errorf("%s: counted %d up, %d down; want 1000, 10", l.Name, up, down)
		}
	}
}

func dialProxy(t *testing.T, l Link, serve func(net.Conn)) (net.Conn, *Proxy) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { serve(c); c.Close() }()
		}
	}()
	p, err := Start(l, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	c, err := net.DialTimeout("tcp", p.Addr(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return c, p
}

// TestProxyCut: a link with cut= carries traffic until the cut, then closes the connection
// through it and refuses new ones, and says so on Cut(); Stop without a cut closes only
// Stopped().
func TestProxyCut(t *testing.T) {
	c, p := dialProxy(t, Link{Name: "t", Cut: 300 * time.Millisecond}, func(c net.Conn) { io.Copy(c, c) })
	buf := make([]byte, 4)
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("before the cut: %v", err)
	}
	select {
	case <-p.Cut():
	case <-time.After(10 * time.Second):
		t.Fatal("Cut() not closed 10 s after a 300 ms cut")
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(buf); err == nil {
		t.Error("the connection through the link still reads after the cut")
	} else if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Error("the connection through the link was left open by the cut")
	}
	if c2, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		c2.Close()
		t.Error("a new connection was accepted after the cut")
	}

	_, q := dialProxy(t, Link{Name: "t"}, func(c net.Conn) {})
	q.Stop()
	select {
	case <-q.Stopped():
	default:
		t.Error("Stopped() not closed by Stop")
	}
	select {
	case <-q.Cut():
		t.Error("Cut() closed on a link without cut=")
	default:
	}
	if _, err := StartUDP(Link{Name: "t", Cut: time.Second}, "127.0.0.1:1", "127.0.0.1:2"); err == nil {
		t.Error("StartUDP accepted cut=")
	}
}
