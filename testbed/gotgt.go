package testbed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gostor/gotgt/pkg/config"
	_ "github.com/gostor/gotgt/pkg/port/iscsit" // registers the iSCSI target driver
	"github.com/gostor/gotgt/pkg/scsi"
	_ "github.com/gostor/gotgt/pkg/scsi/backingstore" // registers the file backing store
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// GotgtTarget is the target name of the gotgt testbed.
const GotgtTarget = "iqn.2025-01.org.vmstorbench:gotgt"

// childEnv asks a re-executed vmstorbench (or test) binary to run a testbed child instead of
// its main function; gotgtConfigEnv carries the child's configuration.
const (
	childEnv       = "VMSTORBENCH_TESTBED_CHILD"
	gotgtConfigEnv = "VMSTORBENCH_GOTGT_CONFIG"
	// isolationFile, in the server's directory, says how the child contained gotgt.
	isolationFile = "isolation"
)

// Isolation modes of the gotgt child.
const (
	// IsolationNetns: gotgt listens inside a private network namespace that has only a
	// loopback device; the child relays connections from 127.0.0.1:port on the host to it.
	IsolationNetns = "netns"
	// IsolationAllInterfaces: network namespaces are not available (no CAP_SYS_ADMIN), so
	// gotgt listens on all interfaces of the host on the random high port.
	IsolationAllInterfaces = "all-interfaces"
)

// Gotgt runs github.com/gostor/gotgt, a pure-Go iSCSI target, with one 256 MiB file-backed
// disk at LUN 1 and no authentication (gotgt supports AuthMethod=None only).
//
// gotgt cannot be embedded in the calling process: it listens on all interfaces (":port",
// the portal setting only names the address it reports), keeps its LUNs in process-global
// state and calls os.Exit when it cannot listen. So it runs in a child process, this same
// binary re-executed: the program must call RunChildIfRequested first thing in main (tests:
// in TestMain). The child confines gotgt's listener to a private network namespace (see
// IsolationNetns); without the privilege for that it falls back to all interfaces, which is
// acceptable for a testbed only because the port is random and high, the LUN is a scratch
// file and the server lives as long as the test or `testbed up`.
type Gotgt struct {
	mu        sync.Mutex
	proc      *Process
	port      int
	isolation string
}

// NewGotgt returns a gotgt server, not yet started.
func NewGotgt() *Gotgt { return &Gotgt{} }

// Name implements Server.
func (g *Gotgt) Name() string { return "gotgt" }

// Port is the iSCSI port on 127.0.0.1 (0 before Start).
func (g *Gotgt) Port() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.port
}

// Isolation reports how the running child contains gotgt (IsolationNetns or
// IsolationAllInterfaces).
func (g *Gotgt) Isolation() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.isolation
}

// PIDs implements Server.
func (g *Gotgt) PIDs() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.proc == nil || g.proc.Exited() {
		return nil
	}
	return []int{g.proc.PID()}
}

// gotgtChildConfig is what the parent tells the child.
type gotgtChildConfig struct {
	Port    int    `json:"port"`
	Target  string `json:"target"`
	LUNFile string `json:"lun_file"`
	LUN     int    `json:"lun"`
	Dir     string `json:"dir"`
}

// Start implements Server.
func (g *Gotgt) Start(ctx context.Context, dir string) ([]Endpoint, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.proc != nil && !g.proc.Exited() {
		return nil, errors.New("gotgt: already started")
	}
	if os.Getenv(childEnv) != "" {
		return nil, errors.New("gotgt: this process is a testbed child that did not run as one: call testbed.RunChildIfRequested first in main (or TestMain)")
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("gotgt: own executable: %w", err)
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, fmt.Errorf("gotgt: %w", err)
	}
	lunFile := filepath.Join(dir, "lun-gotgt.img")
	if err := sparseFile(lunFile, ISCSILUNSize); err != nil {
		return nil, fmt.Errorf("gotgt: %w", err)
	}
	_ = os.Remove(filepath.Join(dir, isolationFile))
	port, err := FreePort()
	if err != nil {
		return nil, fmt.Errorf("gotgt: free port: %w", err)
	}
	cfg, err := json.Marshal(gotgtChildConfig{Port: port, Target: GotgtTarget, LUNFile: lunFile, LUN: ISCSILUN, Dir: dir})
	if err != nil {
		return nil, fmt.Errorf("gotgt: %w", err)
	}
	// -test.run=^$ makes a test binary that lacks the RunChildIfRequested hook exit at once
	// instead of running its tests again; a program that has the hook never parses it.
	p, err := StartProcess(dir, "gotgt", []string{childEnv + "=gotgt", gotgtConfigEnv + "=" + string(cfg)}, exe, "-test.run=^$")
	if err != nil {
		return nil, fmt.Errorf("gotgt: %w", err)
	}
	if err := p.WaitPort(ctx, Addr(port)); err != nil {
		_ = p.Stop(time.Second)
		return nil, fmt.Errorf("gotgt: %w (does %s call testbed.RunChildIfRequested first?)", err, filepath.Base(exe))
	}
	iso, _ := os.ReadFile(filepath.Join(dir, isolationFile))
	g.proc, g.port, g.isolation = p, port, strings.TrimSpace(string(iso))
	return []Endpoint{{
		Name:     "iscsi-gotgt",
		URL:      fmt.Sprintf("iscsi://%s/%s/%d", Addr(port), GotgtTarget, ISCSILUN),
		Security: "none",
	}}, nil
}

// Stop implements Server: the child is stopped by PID (SIGTERM ends it at once).
func (g *Gotgt) Stop() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.proc == nil {
		return nil
	}
	if err := g.proc.Stop(2 * time.Second); err != nil {
		return fmt.Errorf("gotgt: stop: %w", err)
	}
	return nil
}

// RunChildIfRequested runs a testbed child (the gotgt target) instead of returning when the
// environment asks for one, and exits when it ends. Programs that run the gotgt testbed call
// it first thing in main; test packages call it in TestMain.
func RunChildIfRequested() {
	switch role := os.Getenv(childEnv); role {
	case "":
		return
	case "gotgt":
		if err := runGotgtChild(); err != nil {
			fmt.Fprintln(os.Stderr, "gotgt child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	default:
		fmt.Fprintf(os.Stderr, "unknown testbed child role %q\n", role)
		os.Exit(2)
	}
}

func runGotgtChild() error {
	var c gotgtChildConfig
	if err := json.Unmarshal([]byte(os.Getenv(gotgtConfigEnv)), &c); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	logrus.SetLevel(logrus.WarnLevel)
	logrus.SetOutput(os.Stderr)
	portal := Addr(c.Port)
	conf := &config.Config{
		Storages:     []config.BackendStorage{{DeviceID: 1000, Path: "file:" + c.LUNFile, Online: true, BlockShift: 9}},
		ISCSIPortals: []config.ISCSIPortalInfo{{ID: 0, Portal: portal}},
		ISCSITargets: map[string]config.ISCSITarget{c.Target: {
			TPGTs: map[string][]uint64{"1": {0}},
			LUNs:  map[string]uint64{strconv.Itoa(c.LUN): 1000},
		}},
	}
	if err := scsi.InitSCSILUMap(conf); err != nil {
		return fmt.Errorf("LUN map: %w", err)
	}
	driver, err := scsi.NewTargetDriver("iscsi", scsi.NewSCSITargetService())
	if err != nil {
		return fmt.Errorf("target driver: %w", err)
	}
	if err := driver.NewTarget(c.Target, conf); err != nil {
		return fmt.Errorf("target: %w", err)
	}
	note := func(mode string) {
		_ = os.WriteFile(filepath.Join(c.Dir, isolationFile), []byte(mode+"\n"), 0o644)
	}

	// gotgt's Run listens on ":port" from the goroutine that calls it. That goroutine is
	// locked to a thread that first moves into a new network namespace, so the listener is
	// there, reachable only through the relay below. The thread is never unlocked: it exits
	// with the goroutine and its namespace never leaks to other goroutines.
	nsReady := make(chan nsResult, 1)
	go func() {
		runtime.LockOSThread()
		fd, err := enterPrivateNetns()
		nsReady <- nsResult{fd, err}
		if err != nil {
			return
		}
		_ = driver.Run(c.Port) // os.Exits if it cannot listen
	}()
	ns := <-nsReady
	if ns.err != nil {
		fmt.Fprintf(os.Stderr, "gotgt child: no private network namespace (%v): gotgt listens on all interfaces, port %d\n", ns.err, c.Port)
		note(IsolationAllInterfaces)
		return driver.Run(c.Port)
	}
	dial := netnsDialer(ns.fd, c.Port)
	// Listen on the host only once gotgt accepts connections, so that the parent's WaitPort
	// means ready.
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := dial()
		if err == nil {
			conn.Close()
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("gotgt did not listen in its namespace: %w", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	note(IsolationNetns) // before listening: the parent reads it once the port answers
	l, err := net.Listen("tcp", portal)
	if err != nil {
		return fmt.Errorf("listen %s: %w", portal, err)
	}
	for {
		outer, err := l.Accept()
		if err != nil {
			return fmt.Errorf("accept: %w", err)
		}
		go relay(outer, dial)
	}
}

type nsResult struct {
	fd  int
	err error
}

// enterPrivateNetns moves the calling (locked) thread into a new network namespace, brings
// its loopback device up and returns a descriptor of the namespace.
func enterPrivateNetns() (int, error) {
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		return -1, fmt.Errorf("unshare(CLONE_NEWNET): %w", err)
	}
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(s)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return -1, err
	}
	if err := unix.IoctlIfreq(s, unix.SIOCGIFFLAGS, ifr); err != nil {
		return -1, fmt.Errorf("lo flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(s, unix.SIOCSIFFLAGS, ifr); err != nil {
		return -1, fmt.Errorf("lo up: %w", err)
	}
	fd, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("namespace handle: %w", err)
	}
	return fd, nil
}

// netnsDialer returns a function that connects to 127.0.0.1:port inside the namespace nsfd.
// The sockets are created by one goroutine locked to a thread that joined the namespace; a
// socket stays in the namespace it was created in whichever thread uses it later.
func netnsDialer(nsfd, port int) func() (net.Conn, error) {
	type reply struct {
		c   net.Conn
		err error
	}
	reqs := make(chan chan reply)
	go func() {
		runtime.LockOSThread() // never unlocked, as above
		err := unix.Setns(nsfd, unix.CLONE_NEWNET)
		for r := range reqs {
			if err != nil {
				r <- reply{nil, fmt.Errorf("setns: %w", err)}
				continue
			}
			c, err := dialLoopback(port)
			r <- reply{c, err}
		}
	}()
	return func() (net.Conn, error) {
		r := make(chan reply, 1)
		reqs <- r
		x := <-r
		return x.c, x.err
	}
}

// dialLoopback connects to 127.0.0.1:port with raw system calls, so that the socket is
// certainly created on the calling thread.
func dialLoopback(port int) (net.Conn, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if err := unix.Connect(fd, &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		unix.Close(fd)
		return nil, err
	}
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	f := os.NewFile(uintptr(fd), "gotgt-relay")
	defer f.Close()
	return net.FileConn(f)
}

// relay copies between a host connection and a new connection to gotgt until either side
// closes, then closes both.
func relay(outer net.Conn, dial func() (net.Conn, error)) {
	defer outer.Close()
	inner, err := dial()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gotgt relay:", err)
		return
	}
	defer inner.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(inner, outer); done <- struct{}{} }()
	go func() { _, _ = io.Copy(outer, inner); done <- struct{}{} }()
	<-done
}
