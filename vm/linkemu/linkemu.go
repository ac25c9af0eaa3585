// Package linkemu puts an emulated network link (latency, jitter, bandwidth) between two
// local endpoints. This host's kernel has no netem qdisc, so the link is emulated in
// userspace by a TCP proxy on 127.0.0.1 with Shopify toxiproxy's toxics: the migration
// stream from the source QEMU goes through it to the destination.
package linkemu

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/Shopify/toxiproxy/v2/toxics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/vmstorbench/vmstorbench/workloads/units"
)

// Link is the emulated link's shape. Latency and Jitter apply in each direction (the round
// trip is twice Latency); Bandwidth caps each direction in bytes per second (0: no cap).
type Link struct {
	Name      string
	Latency   time.Duration
	Jitter    time.Duration
	Bandwidth int64
	// Loss is the share of packets dropped, in percent, in each direction. Only the UDP
	// relay (StartUDP) drops packets; a TCP stream has none to drop.
	Loss float64
	// Cut makes the link fail this long after it comes up (0: never): the TCP link closes
	// every connection through it and refuses new ones, as a link whose router resets its
	// connections would; a silent black hole is not emulated (TCP would take minutes to
	// notice one). It answers "what does a migration do when the WAN goes down?".
	Cut time.Duration
}

// Presets are named links: a lab LAN (gigabit, sub-millisecond) and a WAN between sites
// (tens of milliseconds, 100 Mbit/s).
var Presets = []Link{
	{Name: "lan", Latency: 0, Jitter: 0, Bandwidth: 125_000_000},
	{Name: "wan", Latency: 20 * time.Millisecond, Jitter: 5 * time.Millisecond, Bandwidth: 12_500_000},
}

// Parse reads a preset name ("lan", "wan") or a spec "latency=20ms,jitter=5ms,bandwidth=100mbit"
// (bandwidth in bytes/s with fio units, or with a "bit"/"mbit"/"gbit" suffix in bits/s),
// optionally starting from a preset: "wan,bandwidth=10mbit".
func Parse(s string) (Link, error) {
	var l Link
	for i, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			if i != 0 {
				return l, fmt.Errorf("link %q: %q is not key=value", s, part)
			}
			p, found := preset(part)
			if !found {
				return l, fmt.Errorf("link %q: unknown preset %q (known: lan, wan)", s, part)
			}
			l = p
			continue
		}
		switch k {
		case "latency", "jitter":
			d, err := units.ParseDuration(v, time.Millisecond)
			if err != nil || d < 0 {
				return l, fmt.Errorf("link %q: %s=%q: want a duration like 20ms", s, k, v)
			}
			if k == "latency" {
				l.Latency = d
			} else {
				l.Jitter = d
			}
		case "cut":
			d, err := units.ParseDuration(v, time.Second)
			if err != nil || d <= 0 {
				return l, fmt.Errorf("link %q: cut=%q: want a duration like 5s", s, v)
			}
			l.Cut = d
		case "bandwidth", "bw":
			b, err := parseBandwidth(v)
			if err != nil {
				return l, fmt.Errorf("link %q: %v", s, err)
			}
			l.Bandwidth = b
		case "loss":
			var f float64
			if _, err := fmt.Sscanf(strings.TrimSuffix(v, "%"), "%g", &f); err != nil || !(f >= 0 && f <= 100) {
				return l, fmt.Errorf("link %q: loss=%q: want a percentage like 0.1%%", s, v)
			}
			l.Loss = f
		default:
			return l, fmt.Errorf("link %q: unknown setting %q (latency, jitter, bandwidth, loss, cut)", s, k)
		}
	}
	if l.Jitter > l.Latency {
		return l, fmt.Errorf("link %q: jitter %s exceeds latency %s", s, l.Jitter, l.Latency)
	}
	if l.Name == "" {
		l.Name = "custom"
	}
	return l, nil
}

func preset(name string) (Link, bool) {
	for _, p := range Presets {
		if p.Name == name {
			return p, true
		}
	}
	return Link{}, false
}

func parseBandwidth(v string) (int64, error) {
	lv := strings.ToLower(v)
	for _, u := range []struct {
		suffix string
		bits   float64
	}{{"gbit", 1e9}, {"mbit", 1e6}, {"kbit", 1e3}, {"bit", 1}} {
		if num, ok := strings.CutSuffix(lv, u.suffix); ok {
			var f float64
			if _, err := fmt.Sscanf(num, "%g", &f); err != nil || f <= 0 {
				return 0, fmt.Errorf("bandwidth=%q: want e.g. 100mbit or 12m", v)
			}
			return int64(f * u.bits / 8), nil
		}
	}
	n, err := units.ParseSize(v)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("bandwidth=%q: want e.g. 100mbit or 12m (bytes/s)", v)
	}
	return n, nil
}

func (l Link) String() string {
	bw := "unlimited"
	if l.Bandwidth > 0 {
		bw = fmt.Sprintf("%.0f Mbit/s", float64(l.Bandwidth)*8/1e6)
	}
	loss := ""
	if l.Loss > 0 {
		loss = fmt.Sprintf(", %g%% loss", l.Loss)
	}
	cut := ""
	if l.Cut > 0 {
		cut = fmt.Sprintf(", cut after %s", l.Cut)
	}
	return fmt.Sprintf("%s (latency %s ± %s each way, %s%s%s)", l.Name, l.Latency, l.Jitter, bw, loss, cut)
}

// Proxy is a running emulated link from a local listening address to an upstream one.
type Proxy struct {
	p *toxiproxy.Proxy
	// counters are the upstream (client to upstream) and downstream byte counters.
	counters [2]*counterToxic
	// cut is closed when the link failed (Link.Cut); cutTimer fails it.
	cut      chan struct{}
	cutTimer *time.Timer
	// stopped is closed by Stop.
	stopped  chan struct{}
	stopOnce sync.Once
}

// Stopped is closed once Stop has been called.
func (p *Proxy) Stopped() <-chan struct{} { return p.stopped }

// Cut is closed when the link has failed as its Link.Cut asked (never without one).
func (p *Proxy) Cut() <-chan struct{} { return p.cut }

// Bytes returns the bytes the link has carried so far: upstream (from the clients that
// connected to Addr towards upstream) and downstream (back), over all connections.
func (p *Proxy) Bytes() (up, down int64) {
	return p.counters[0].n.Load(), p.counters[1].n.Load()
}

// Start listens on 127.0.0.1 (a free port) and forwards every connection to upstream
// through the link's toxics.
func Start(l Link, upstream string) (*Proxy, error) {
	logger := zerolog.Nop()
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), logger)
	p := toxiproxy.NewProxy(srv, "vmstorbench-"+l.Name, "127.0.0.1:0", upstream)
	p.Logger = &logger
	if err := p.Start(); err != nil {
		return nil, fmt.Errorf("link emulator: %w", err)
	}
	for _, stream := range []string{"upstream", "downstream"} {
		// The bandwidth cap comes first: toxiproxy's latency toxic queues up to 1024 chunks
		// (32 MB) ahead of whatever follows it, so with the cap after it the sender saw a fast
		// link until that queue filled (QEMU reported a 64 MB stop-and-copy done in 2.4 s that
		// reached the destination after 5.4 s). Capped first, the sender is held to the
		// link's rate and only the bandwidth-delay product is in flight; the departure stamp
		// between them makes the latency count from when a chunk leaves the cap.
		var chain []string
		if l.Bandwidth > 0 {
			// toxiproxy's rate is in KB/s (1000 bytes).
			rate := max(l.Bandwidth/1000, 1)
			chain = append(chain, fmt.Sprintf(`{"name":"bandwidth_%s","type":"bandwidth","stream":%q,"attributes":{"rate":%d}}`,
				stream, stream, rate))
		}
		if l.Latency > 0 || l.Jitter > 0 {
			if l.Bandwidth > 0 {
				chain = append(chain, fmt.Sprintf(`{"name":"departure_%s","type":%q,"stream":%q}`, stream, departureToxicType, stream))
			}
			chain = append(chain, fmt.Sprintf(`{"name":"latency_%s","type":"latency","stream":%q,"attributes":{"latency":%d,"jitter":%d}}`,
				stream, stream, l.Latency.Milliseconds(), l.Jitter.Milliseconds()))
		}
		// Last in the chain: what it counts has passed the whole link, as a capture at the
		// far end would count it (bytes queued in the link when it is stopped are not).
		chain = append(chain, fmt.Sprintf(`{"name":"count_%s","type":%q,"stream":%q}`, stream, counterToxicType, stream))
		for _, t := range chain {
			if _, err := p.Toxics.AddToxicJson(strings.NewReader(t)); err != nil {
				p.Stop()
				return nil, fmt.Errorf("link emulator: add toxic %s: %w", t, err)
			}
		}
	}
	px := &Proxy{p: p}
	for i, stream := range []string{"upstream", "downstream"} {
		w := p.Toxics.GetToxic("count_" + stream)
		c, ok := w.Toxic.(*counterToxic)
		if !ok {
			p.Stop()
			return nil, fmt.Errorf("link emulator: counter toxic %s is a %T", stream, w.Toxic)
		}
		px.counters[i] = c
	}
	px.cut, px.stopped = make(chan struct{}), make(chan struct{})
	if l.Cut > 0 {
		px.cutTimer = time.AfterFunc(l.Cut, func() {
			p.Stop()
			close(px.cut)
		})
	}
	return px, nil
}

// counterToxicType names counterToxic in toxiproxy's registry.
const counterToxicType = "vmstorbench_counter"

// counterToxic counts the bytes that pass it. toxiproxy makes one instance per toxic added
// and keeps it for the proxy's life, shared by all its connections, so the count is the
// proxy's total in one direction.
type counterToxic struct {
	n atomic.Int64
}

func (t *counterToxic) Pipe(stub *toxics.ToxicStub) {
	for {
		select {
		case <-stub.Interrupt:
			return
		case c := <-stub.Input:
			if c == nil {
				stub.Close()
				return
			}
			t.n.Add(int64(len(c.Data)))
			stub.Output <- c
		}
	}
}

// departureToxicType names departureToxic in toxiproxy's registry of toxic types.
const departureToxicType = "vmstorbench_departure"

// departureToxic stamps each chunk with the time it passes, so that a latency toxic after it
// delays the chunk by the full latency from that moment: toxiproxy's latency counts from when
// the proxy read the chunk, which would take time queued behind the bandwidth cap as
// propagation delay.
type departureToxic struct{}

func (*departureToxic) Pipe(stub *toxics.ToxicStub) {
	for {
		select {
		case <-stub.Interrupt:
			return
		case c := <-stub.Input:
			if c == nil {
				stub.Close()
				return
			}
			c.Timestamp = time.Now()
			stub.Output <- c
		}
	}
}

// toxiproxy keeps its toxic types in a package-level registry, like database/sql drivers:
// registered once, read-only after.
func init() {
	toxics.Register(departureToxicType, new(departureToxic))
	toxics.Register(counterToxicType, new(counterToxic))
}

// Addr is the address to connect to instead of upstream.
func (p *Proxy) Addr() string { return p.p.Listen }

// Stop closes the listener and every proxied connection.
func (p *Proxy) Stop() {
	if p.cutTimer != nil {
		p.cutTimer.Stop()
	}
	p.p.Stop()
	p.stopOnce.Do(func() { close(p.stopped) })
}
