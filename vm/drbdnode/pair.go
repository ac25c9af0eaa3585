package drbdnode

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vmstorbench/vmstorbench/backends/drbd/drbdstate"
	"github.com/vmstorbench/vmstorbench/testbed"
	"github.com/vmstorbench/vmstorbench/vm/guest"
	"github.com/vmstorbench/vmstorbench/vm/linkemu"
	"github.com/vmstorbench/vmstorbench/vm/qemu"
)

// Config describes a pair.
type Config struct {
	// Dir holds the nodes' disks, sockets and logs (a short path: QMP socket paths are
	// limited to 107 bytes).
	Dir   string
	Image *guest.Image
	// Link shapes the replication link through the UDP relay; nil joins the nodes' netdevs
	// directly (the control case: nothing between the QEMU processes).
	Link *linkemu.Link
	// Protocol is the protocol the pair starts with (default C).
	Protocol  string
	DiskMiB   int // each node's backing disk (default 64)
	MemoryMiB int // each node's RAM (default 256: 128 is too little to load drbd)
	// QEMU is the binary (default: found on PATH).
	QEMU string
}

// Node is one running node.
type Node struct {
	Name    string
	VM      *qemu.VM
	Control string // host address of the node agent
	NBD     string // host address of its NBD export (served by the primary only)
	Disk    string
}

// Pair is a running two-node DRBD pair: A is Primary, B Secondary.
type Pair struct {
	Nodes [2]*Node
	Relay *linkemu.UDPRelay
	// RelayControl is the address where other processes reshape the relay (relayctl.go);
	// empty without a relay.
	RelayControl string
	relayCtl     net.Listener
	// Ready is how long the pair took from the first QEMU start to Connected, UpToDate and
	// the primary's export up.
	Ready time.Duration
}

// Node MACs tell the agent which NIC is which.
var (
	replMACs = [2]string{"52:54:00:db:00:01", "52:54:00:db:00:02"}
	hostMACs = [2]string{"52:54:00:aa:00:01", "52:54:00:aa:00:02"}
	addrs    = [2]string{"169.254.0.1", "169.254.0.2"}
)

// Start boots the two nodes and waits until A is Primary with both disks UpToDate and its
// export up, or ctx ends. Nothing is left running when it fails.
func Start(ctx context.Context, cfg Config) (p *Pair, err error) {
	if cfg.Image == nil {
		return nil, errors.New("drbd pair: no node image")
	}
	if cfg.Protocol == "" {
		cfg.Protocol = "C"
	}
	if cfg.DiskMiB <= 0 {
		cfg.DiskMiB = 64
	}
	if cfg.MemoryMiB <= 0 {
		cfg.MemoryMiB = 256
	}
	t0 := time.Now()
	p = &Pair{}
	defer func() {
		if err != nil {
			p.Stop()
		}
	}()
	var udp [2]int
	for i := range udp {
		if udp[i], err = freeUDPPort(); err != nil {
			return p, err
		}
	}
	// Where each node sends its frames: straight to the other node, or into the relay.
	sendTo := [2]string{testbed.Addr(udp[1]), testbed.Addr(udp[0])}
	if cfg.Link != nil {
		r, err := linkemu.StartUDP(*cfg.Link, testbed.Addr(udp[0]), testbed.Addr(udp[1]))
		if err != nil {
			return p, err
		}
		p.Relay = r
		sendTo = [2]string{r.ForA(), r.ForB()}
		if p.relayCtl, err = serveRelayControl(r); err != nil {
			return p, err
		}
		p.RelayControl = p.relayCtl.Addr().String()
	}
	for i, name := range []string{"a", "b"} {
		n := &Node{Name: name, Disk: filepath.Join(cfg.Dir, "node-"+name+".img")}
		p.Nodes[i] = n
		if err := makeDisk(n.Disk, int64(cfg.DiskMiB)<<20); err != nil {
			return p, err
		}
		ref := filepath.Join(cfg.Dir, "ref-"+name+".img")
		if err := makeDisk(ref, 16<<20); err != nil {
			return p, err
		}
		ctl, err := testbed.FreePort()
		if err != nil {
			return p, err
		}
		nbd, err := testbed.FreePort()
		if err != nil {
			return p, err
		}
		n.Control, n.NBD = testbed.Addr(ctl), testbed.Addr(nbd)
		args := fmt.Sprintf(" --name %s --addr %s --peer %s --protocol %s --repl-mac %s --host-mac %s",
			name, addrs[i], addrs[1-i], cfg.Protocol, replMACs[i], hostMACs[i])
		if i == 0 {
			args += " --primary"
		}
		qc := qemu.Config{
			Name: "drbd-" + name, Dir: cfg.Dir, Binary: cfg.QEMU, Accel: "tcg", Firmware: guest.Firmware(),
			MemoryMiB: cfg.MemoryMiB, CPUs: 1,
			Kernel: cfg.Image.Kernel, Initrd: cfg.Image.Initrd, Append: cfg.Image.Cmdline + args,
			Drive: &qemu.Drive{File: n.Disk, Format: "raw", Direct: true},
			Extra: []string{
				// The replication link: UDP datagrams on loopback, one frame each (a TCP
				// netdev stalls multi-frame messages ~49 ms on Nagle and delayed ACKs).
				"-netdev", fmt.Sprintf("socket,id=repl,udp=%s,localaddr=%s", sendTo[i], testbed.Addr(udp[i])),
				"-device", "virtio-net-pci,netdev=repl,mac=" + replMACs[i],
				// The host's way in: QEMU's user network, restricted (the guest reaches
				// nothing), with the control and NBD ports forwarded from loopback.
				"-netdev", fmt.Sprintf("user,id=host,restrict=on,hostfwd=tcp:127.0.0.1:%d-:%d,hostfwd=tcp:127.0.0.1:%d-:%d",
					ctl, nodeControlPort, nbd, nodeNBDPort),
				"-device", "virtio-net-pci,netdev=host,mac=" + hostMACs[i],
				// The raw-disk reference (/dev/vdb): the same kind of disk as DRBD's.
				"-drive", "if=none,id=ref,format=raw,cache=none,file=" + strings.ReplaceAll(ref, ",", ",,"),
				"-device", "virtio-blk-pci,drive=ref",
			},
		}
		vm, err := qemu.Start(ctx, qc, nil)
		if err != nil {
			return p, fmt.Errorf("drbd node %s: %w", name, err)
		}
		n.VM = vm
	}
	if err := p.waitReady(ctx); err != nil {
		return p, err
	}
	p.Ready = time.Since(t0)
	return p, nil
}

// Ports inside the node (vm/drbdnode/node), repeated here so the host side does not link
// the node agent's package.
const (
	nodeControlPort = 10810
	nodeNBDPort     = 10809
)

func (p *Pair) waitReady(ctx context.Context) error {
	var last string
	for {
		for _, n := range p.Nodes {
			if n.VM.Exited() {
				return fmt.Errorf("drbd node %s: QEMU exited: %s; console: %s", n.Name, n.VM.Log(), tail(n.VM.Console()))
			}
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		r, err := drbdstate.Call(cctx, p.Nodes[0].Control, drbdstate.Request{Op: "state"})
		cancel()
		if r != nil && r.SetupError != "" {
			return fmt.Errorf("drbd node a: set-up failed: %s; console: %s", r.SetupError, tail(p.Nodes[0].VM.Console()))
		}
		switch {
		case err == nil && r.Ready && r.State != nil:
			return nil
		case err != nil && r != nil:
			// The agent answered with an error: its set-up failed, which no wait mends.
			if strings.Contains(err.Error(), "set-up failed") {
				return fmt.Errorf("drbd node a: %w; console: %s", err, tail(p.Nodes[0].VM.Console()))
			}
			last = err.Error()
		case err != nil:
			last = err.Error()
		case r.State != nil:
			last = fmt.Sprintf("%s %s/%s %s/%s", r.State.Connection, r.State.Role, r.State.PeerRole, r.State.Disk, r.State.PeerDisk)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("drbd pair not ready: %w (last: %s); node a console: %s; node b console: %s",
				ctx.Err(), last, tail(p.Nodes[0].VM.Console()), tail(p.Nodes[1].VM.Console()))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func tail(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > 6 {
		lines = lines[len(lines)-6:]
	}
	return strings.Join(lines, " | ")
}

// Stop stops both nodes (by PID, through qemu.VM.Stop) and the relay.
func (p *Pair) Stop() error {
	var errs []error
	for _, n := range p.Nodes {
		if n != nil && n.VM != nil {
			if err := n.VM.Stop(); err != nil {
				errs = append(errs, fmt.Errorf("drbd node %s: %w", n.Name, err))
			}
		}
	}
	if p.relayCtl != nil {
		p.relayCtl.Close()
	}
	if p.Relay != nil {
		p.Relay.Close()
	}
	return errors.Join(errs...)
}

// PIDs are the nodes' QEMU processes.
func (p *Pair) PIDs() []int {
	var out []int
	for _, n := range p.Nodes {
		if n != nil && n.VM != nil {
			out = append(out, n.VM.PID())
		}
	}
	return out
}

func makeDisk(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("drbd node disk: %w", err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return fmt.Errorf("drbd node disk: %w", err)
	}
	return nil
}

func freeUDPPort() (int, error) {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return 0, fmt.Errorf("free UDP port: %w", err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}
