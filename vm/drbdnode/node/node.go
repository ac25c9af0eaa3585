// Package node is the agent of a testbed DRBD node, the first process of a small guest: it
// loads the DRBD module chain, configures its two NICs (the replication link and the link to
// the host), sets up DRBD by calling drbdsetup-84 and drbdmeta directly (no drbd.conf, no
// drbdadm), promotes the primary with the initial sync skipped, serves /dev/drbd0 to the host
// over NBD, and answers the host's state requests (drbdstate.Request) on a TCP port.
package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/backends/drbd/drbdstate"
	"github.com/vmstorbench/vmstorbench/vm/nbdexport"
)

// Ports inside the guest, forwarded by QEMU to host ports.
const (
	DRBDPort    = 7789
	NBDPort     = 10809
	ControlPort = 10810
	// Resource and Minor name the node's one DRBD device, /dev/drbd0 over /dev/vda.
	Resource = "r0"
	Minor    = 0
	Disk     = "/dev/vda"
	Device   = "/dev/drbd0"
	// HostAddr is the guest's address on QEMU's user network (its default).
	HostAddr = "10.0.2.15"
)

// Config is one node's part, from its kernel command line.
type Config struct {
	Name     string // "a", "b"
	Addr     string // replication address, link-local (169.254.0.1)
	Peer     string // the peer's replication address
	Protocol string // A, B, C
	Primary  bool
	ReplMAC  string // MAC of the replication NIC
	HostMAC  string // MAC of the NIC to the host
	Modules  string // load.order file
	// Bin is where drbdsetup-84 and drbdmeta are.
	Bin string
}

// Node is a running node agent.
type Node struct {
	cfg Config
	log func(format string, a ...any)

	mu       sync.Mutex
	setupErr error // why DRBD set-up failed (reported to the host)
	ready    bool  // the primary's export is up, or the secondary is connected
	// export serves /dev/drbd0 (opened as exported) while this node is Primary.
	export   *nbdexport.Export
	exported backends.Target
}

// Run sets up the node and serves until ctx ends.
func Run(ctx context.Context, cfg Config) error {
	n := &Node{cfg: cfg, log: func(format string, a ...any) {
		fmt.Fprintf(os.Stderr, "drbdnode %s: %s\n", cfg.Name, fmt.Sprintf(format, a...))
	}}
	if cfg.Bin == "" {
		n.cfg.Bin = "/bin"
	}
	t0 := time.Now()
	// The kernel starts init with no PATH: the drbd backend finds drbdsetup-84 on it, as on
	// any DRBD host.
	if os.Getenv("PATH") == "" {
		os.Setenv("PATH", n.cfg.Bin+":/sbin:/usr/sbin:/usr/bin")
	}
	for _, d := range []string{"/var/lib/drbd", "/var/run/drbd", "/run/drbd", "/var/lock", "/tmp"} {
		_ = os.MkdirAll(d, 0o755)
	}
	if err := upInterface("lo", "127.0.0.1", 8); err != nil {
		return err
	}
	if err := configureNICs(cfg); err != nil {
		return err
	}
	n.log("network up after %v", time.Since(t0).Round(time.Millisecond))
	// The control port first: the host learns of a failed set-up from it instead of a
	// timeout.
	ln, err := net.Listen("tcp", fmt.Sprintf(":%d", ControlPort))
	if err != nil {
		return fmt.Errorf("control port: %w", err)
	}
	go n.serveControl(ctx, ln)
	if err := n.serveEcho(ctx); err != nil {
		return err
	}
	if err := n.setup(ctx); err != nil {
		if k := kernelLogTail(6); k != "" {
			err = fmt.Errorf("%w; kernel log: %s", err, k)
		}
		n.mu.Lock()
		n.setupErr = err
		n.mu.Unlock()
		n.log("set-up failed: %v", err)
	} else {
		n.log("DRBD ready after %v", time.Since(t0).Round(time.Millisecond))
	}
	<-ctx.Done()
	return nil
}

// configureNICs gives the replication NIC its link-local address and the host NIC QEMU's
// user-network address, found by their MAC addresses (PCI probing order is not promised).
func configureNICs(cfg Config) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		repl, host := ifaceByMAC(cfg.ReplMAC), ifaceByMAC(cfg.HostMAC)
		if repl != "" && host != "" {
			if err := upInterface(repl, cfg.Addr, 16); err != nil {
				return err
			}
			return upInterface(host, HostAddr, 24)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no NIC with MAC %s and %s (have %v)", cfg.ReplMAC, cfg.HostMAC, ifaces())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ifaces() []string {
	ents, _ := os.ReadDir("/sys/class/net")
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func ifaceByMAC(mac string) string {
	for _, name := range ifaces() {
		b, err := os.ReadFile(filepath.Join("/sys/class/net", name, "address"))
		if err == nil && strings.EqualFold(strings.TrimSpace(string(b)), mac) {
			return name
		}
	}
	return ""
}

// upInterface sets an IPv4 address and brings the interface up with ioctls: no ip binary,
// no netlink, no fork (slow under TCG).
func upInterface(name, addr string, prefix int) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("%s: socket: %w", name, err)
	}
	defer unix.Close(fd)
	ip := net.ParseIP(addr).To4()
	if ip == nil {
		return fmt.Errorf("%s: bad address %q", name, addr)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if err := ifr.SetInet4Addr(ip); err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFADDR, ifr); err != nil {
		return fmt.Errorf("%s: set address %s: %w", name, addr, err)
	}
	mask := net.CIDRMask(prefix, 32)
	if err := ifr.SetInet4Addr(mask); err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFNETMASK, ifr); err != nil {
		return fmt.Errorf("%s: set netmask: %w", name, err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("%s: flags: %w", name, err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP | unix.IFF_RUNNING)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("%s: up: %w", name, err)
	}
	return nil
}

// run runs one of the DRBD tools with a deadline and returns its output; an error quotes
// its stderr.
func (n *Node) run(ctx context.Context, stdin string, tool string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(n.cfg.Bin, tool), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s %s", tool, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()), strings.TrimSpace(string(out)))
	}
	return out, nil
}

func (n *Node) localAddr() string { return fmt.Sprintf("ipv4:%s:%d", n.cfg.Addr, DRBDPort) }
func (n *Node) peerAddr() string  { return fmt.Sprintf("ipv4:%s:%d", n.cfg.Peer, DRBDPort) }

// setup is what `drbdadm create-md` and `drbdadm up` would do, spelled out, then (on the
// primary) the skipped initial sync and the promotion.
func (n *Node) setup(ctx context.Context) error {
	minor := fmt.Sprint(Minor)
	steps := []struct {
		stdin string
		tool  string
		args  []string
	}{
		{"yes\nyes\n", "drbdmeta", []string{"--force", minor, "v08", Disk, "internal", "create-md"}},
		{"", "drbdsetup-84", []string{"new-resource", Resource}},
		{"", "drbdsetup-84", []string{"new-minor", Resource, minor, "0"}},
		{"", "drbdmeta", []string{minor, "v08", Disk, "internal", "apply-al"}},
		{"", "drbdsetup-84", []string{"attach", minor, Disk, Disk, "internal"}},
		// A dead peer is noticed in seconds rather than after DRBD's default 10 s ping
		// interval (a write then hung over 12 s): pings every 5 s, 2 s to answer, 4 s for any
		// ack. Tighter (2 s, 1 s, 2 s) dropped the link of a live pair on this loaded host
		// (TCG guests stall for a second and more at load 13 on 2 cores).
		{"", "drbdsetup-84", []string{"connect", Resource, n.localAddr(), n.peerAddr(), "--protocol=" + n.cfg.Protocol,
			"--ping-int=5", "--ping-timeout=20", "--timeout=40", "--connect-int=5"}},
	}
	for _, s := range steps {
		if _, err := n.run(ctx, s.stdin, s.tool, s.args...); err != nil {
			return err
		}
	}
	if !n.cfg.Primary {
		if err := n.waitState(ctx, 60*time.Second, "connected", func(s drbdstate.State) bool { return s.Connection == "Connected" }); err != nil {
			return err
		}
		n.setReady()
		return nil
	}
	// Wait until the peer's disk is known (the handshake done): a new current UUID issued
	// while the peer's disk is still DUnknown left it Inconsistent for good.
	if err := n.waitState(ctx, 60*time.Second, "connected with the peer's disk Inconsistent", func(s drbdstate.State) bool {
		return s.Connection == "Connected" && s.Replication == "Established" && s.Disk == "Inconsistent" && s.PeerDisk == "Inconsistent"
	}); err != nil {
		return err
	}
	// Both disks are blank: declare them in sync instead of copying 64 MiB of zeros (about
	// 22 s under TCG here).
	if _, err := n.run(ctx, "", "drbdsetup-84", "new-current-uuid", minor, "--clear-bitmap"); err != nil {
		return err
	}
	if _, err := n.run(ctx, "", "drbdsetup-84", "primary", minor); err != nil {
		return err
	}
	if err := n.waitState(ctx, 30*time.Second, "UpToDate/UpToDate", func(s drbdstate.State) bool {
		return s.Role == "Primary" && s.Disk == "UpToDate" && s.PeerDisk == "UpToDate"
	}); err != nil {
		return err
	}
	if err := n.serveNBD(); err != nil {
		return err
	}
	n.setReady()
	return nil
}

func (n *Node) setReady() {
	n.mu.Lock()
	n.ready = true
	n.mu.Unlock()
}

func (n *Node) waitState(ctx context.Context, timeout time.Duration, what string, ok func(drbdstate.State) bool) error {
	deadline := time.Now().Add(timeout)
	var last drbdstate.State
	for {
		st, err := State()
		if err == nil {
			last = st
			if ok(st) {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not %s after %v: %+v", what, timeout, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// State reads the node's DRBD state from /proc/drbd.
func State() (drbdstate.State, error) {
	b, err := os.ReadFile("/proc/drbd")
	if err != nil {
		return drbdstate.State{}, err
	}
	_, sts, err := drbdstate.ParseProc(b)
	if err != nil {
		return drbdstate.State{}, err
	}
	for _, s := range sts {
		if s.Minor == Minor {
			s.Resource = Resource
			return s, nil
		}
	}
	return drbdstate.State{}, errors.New("/proc/drbd: minor 0 is not configured")
}

// kernelLogTail returns the last n kernel log messages (the console is "quiet"): what the
// kernel said when a DRBD tool failed (an OOM kill, a DRBD complaint).
func kernelLogTail(n int) string {
	f, err := os.OpenFile("/dev/kmsg", os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return ""
	}
	defer f.Close()
	var msgs []string
	buf := make([]byte, 8192)
	for i := 0; i < 100000; i++ { // bounded: the ring buffer holds a few thousand records
		k, err := f.Read(buf)
		if err != nil || k <= 0 {
			break
		}
		// "prio,seq,time,flags;message"
		rec := string(buf[:k])
		if _, msg, ok := strings.Cut(rec, ";"); ok {
			msgs = append(msgs, strings.TrimSpace(msg))
			if len(msgs) > n {
				msgs = msgs[1:]
			}
		}
	}
	return strings.Join(msgs, " | ")
}
