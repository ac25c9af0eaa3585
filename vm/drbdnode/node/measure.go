package node

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/bench"
	"github.com/vmstorbench/vmstorbench/workloads"
)

// RefDisk is the node's second disk, without DRBD: the raw-disk reference for DRBD's
// figures, on the same kind of QEMU disk.
const RefDisk = "/dev/vdb"

// EchoPort is where each node echoes probe requests on its replication address.
const EchoPort = 7790

// benchDevice runs 4 KiB random O_DIRECT writes at QD1 for runtimeMS on /dev/drbd0 or the
// reference disk, in the node: DRBD's latency without the host's way in (NBD over QEMU's
// user network) on top.
func benchDevice(ctx context.Context, device string, runtimeMS int) (map[string]float64, error) {
	path := map[string]string{"drbd": Device, "raw": RefDisk}[device]
	if path == "" {
		return nil, fmt.Errorf("bench: device %q: want drbd or raw", device)
	}
	if runtimeMS <= 0 || runtimeMS > 60_000 {
		return nil, fmt.Errorf("bench: runtime %d ms: want 1 to 60000", runtimeMS)
	}
	w := workloads.Workload{RW: "randwrite", Size: 16 << 20, Direct: true, IODepth: 1, TimeBased: true,
		Runtime: time.Duration(runtimeMS) * time.Millisecond, BS: [2]workloads.BlockSize{workloads.Fixed(4096), workloads.Fixed(4096)}}
	res, err := bench.Run(ctx, bench.Config{Target: "file://" + path, Workload: w,
		Open: backends.OpenParams{AllowDestructive: true}})
	if err != nil {
		return nil, fmt.Errorf("bench %s: %w", path, err)
	}
	d := res.Write
	return map[string]float64{"iops": d.IOPS, "n": float64(d.IOs), "mean_ns": d.Lat.Mean,
		"p50_ns": float64(d.Lat.Percentiles["50.000000"]), "p99_ns": float64(d.Lat.Percentiles["99.000000"])}, nil
}

// runURL runs 4 KiB random writes at QD1 for runtimeMS on url (a drbd:// URL: the backend
// then reads this node's /proc/drbd and runs its drbdsetup-84 as on any DRBD host) and
// returns the result document.
func runURL(ctx context.Context, url string, runtimeMS int) ([]byte, error) {
	if !strings.HasPrefix(url, "drbd://") {
		return nil, fmt.Errorf("run: %q is not a drbd:// URL", url)
	}
	if runtimeMS <= 0 || runtimeMS > 60_000 {
		return nil, fmt.Errorf("run: runtime %d ms: want 1 to 60000", runtimeMS)
	}
	w := workloads.Workload{RW: "randwrite", Size: 16 << 20, Direct: true, IODepth: 1, TimeBased: true,
		Runtime: time.Duration(runtimeMS) * time.Millisecond, BS: [2]workloads.BlockSize{workloads.Fixed(4096), workloads.Fixed(4096)}}
	res, err := bench.Run(ctx, bench.Config{Target: url, Workload: w, Interval: 200 * time.Millisecond,
		Open: backends.OpenParams{AllowDestructive: true}})
	if err != nil {
		return nil, err
	}
	return json.Marshal(res)
}

// serveEcho echoes whatever arrives on the replication address's echo port.
func (n *Node) serveEcho(ctx context.Context) error {
	ln, err := net.Listen("tcp", fmt.Sprintf("%s:%d", n.cfg.Addr, EchoPort))
	if err != nil {
		return fmt.Errorf("echo port: %w", err)
	}
	go func() { <-ctx.Done(); ln.Close() }()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(time.Minute))
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return nil
}

// probe sends count request/replies of length bytes to the peer's echo port, one at a time,
// as DRBD's protocol C does for each write (data, then the peer's ack).
func (n *Node) probe(ctx context.Context, count, length int) (map[string]float64, error) {
	if count <= 0 || count > 10000 || length <= 0 || length > 1<<20 {
		return nil, fmt.Errorf("probe: count %d, length %d: want 1–10000 of 1 B–1 MiB", count, length)
	}
	d := net.Dialer{Timeout: 5 * time.Second}
	c, err := d.DialContext(ctx, "tcp", fmt.Sprintf("%s:%d", n.cfg.Peer, EchoPort))
	if err != nil {
		return nil, fmt.Errorf("probe: %w", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	out, in := make([]byte, length), make([]byte, length)
	lat := make([]time.Duration, 0, count)
	for i := 0; i < count; i++ {
		t := time.Now()
		if _, err := c.Write(out); err != nil {
			return nil, fmt.Errorf("probe: %w", err)
		}
		if _, err := io.ReadFull(c, in); err != nil {
			return nil, fmt.Errorf("probe: %w", err)
		}
		lat = append(lat, time.Since(t))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	var sum time.Duration
	for _, l := range lat {
		sum += l
	}
	return map[string]float64{"n": float64(count), "p50_ns": float64(lat[len(lat)/2]),
		"mean_ns": float64(sum) / float64(count), "p99_ns": float64(lat[len(lat)*99/100])}, nil
}
