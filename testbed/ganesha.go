package testbed

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// NFSFile is the file name the NFS endpoints' URLs point at.
const NFSFile = "vmstorbench.img"

// portmapAddr is where rpcbind listens; Ganesha registers its NFSv3 and MOUNT services there
// at start and exits if it cannot.
var portmapAddr = Addr(111)

// Ganesha runs NFS-Ganesha 4 (VFS FSAL) in the foreground with a private config, log, pid
// file and NFSv4 recovery directory under its directory, serving NFSv3 and NFSv4 over TCP on
// two free ports of 127.0.0.1 and exporting dir/export read-write without root squashing.
// Endpoint URLs carry both ports, so clients never need the portmapper.
//
// Ganesha needs rpcbind running: Start starts `rpcbind -f` when nothing listens on port 111
// (`rpcbind -h 127.0.0.1` crashes in Debian 12's rpcbind), and Stop stops it only if Start
// started it. The VFS FSAL opens files by handle, which needs root.
type Ganesha struct {
	mu        sync.Mutex
	proc      *Process
	rpcbind   *Process // nil unless Start started it
	nfsPort   int
	mountPort int
	export    string
	// lock is held from Start to Stop: instances on one machine share rpcbind on port 111.
	lock *machineLock
}

// NewGanesha returns a Ganesha server, not yet started.
func NewGanesha() *Ganesha { return &Ganesha{} }

// Name implements Server.
func (g *Ganesha) Name() string { return "ganesha" }

// Ports are the NFS and MOUNT ports (0 before Start).
func (g *Ganesha) Ports() (nfs, mount int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.nfsPort, g.mountPort
}

// ExportDir is the local directory Ganesha exports; its NFSv3 export path is the same.
func (g *Ganesha) ExportDir() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.export
}

// PIDs implements Server.
func (g *Ganesha) PIDs() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	var pids []int
	for _, p := range []*Process{g.proc, g.rpcbind} {
		if p != nil && !p.Exited() {
			pids = append(pids, p.PID())
		}
	}
	return pids
}

// Stop implements Server: Ganesha first (SIGTERM: it unregisters and shuts down cleanly), then
// rpcbind if Start started it.
func (g *Ganesha) Stop() error {
	g.mu.Lock()
	proc, rpcbind, lock := g.proc, g.rpcbind, g.lock
	g.lock = nil
	g.mu.Unlock()
	defer lock.release()
	var errs []error
	if proc != nil {
		if err := proc.Stop(10 * time.Second); err != nil {
			errs = append(errs, fmt.Errorf("ganesha: stop: %w", err))
		}
	}
	if rpcbind != nil {
		if err := rpcbind.Stop(5 * time.Second); err != nil {
			errs = append(errs, fmt.Errorf("ganesha: stop rpcbind: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Start implements Server.
func (g *Ganesha) Start(ctx context.Context, dir string) ([]Endpoint, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.proc != nil && !g.proc.Exited() {
		return nil, errors.New("ganesha: already started")
	}
	bin, err := LookPath("ganesha.nfsd", "nfs-ganesha")
	if err != nil {
		return nil, err
	}
	if err := findVFSFSAL(); err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("ganesha: the testbed's ganesha.nfsd must run as root (its VFS FSAL opens files by handle); run as root or use an existing NFS server")
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("ganesha: %w", err)
	}
	lock, err := acquireMachineLock(ctx, "nfs-ganesha")
	if err != nil {
		return nil, fmt.Errorf("ganesha: %w", err)
	}
	eps, err := g.startLocked(ctx, bin, dir)
	if err != nil {
		lock.release()
		return nil, err
	}
	g.lock = lock
	return eps, nil
}

// startLocked starts rpcbind (if needed) and Ganesha while holding the machine lock.
func (g *Ganesha) startLocked(ctx context.Context, bin, dir string) ([]Endpoint, error) {
	export := filepath.Join(dir, "export")
	for _, d := range []string{export, filepath.Join(dir, "recovery")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("ganesha: %w", err)
		}
	}
	// The exported directory must be reachable by the client's uid; the test's temp dir may
	// be 0700, which does not matter for root but would for uid= other than 0.
	if err := os.Chmod(export, 0o777); err != nil {
		return nil, fmt.Errorf("ganesha: %w", err)
	}

	// A free port can be taken between FreePort and Ganesha's bind, and rpcbind started by a
	// concurrent test may go away while Ganesha registers: try again a few times.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		if err := g.ensureRPCBind(ctx, dir); err != nil {
			return nil, err
		}
		nfsPort, mountPort, err := twoFreePorts()
		if err != nil {
			return nil, fmt.Errorf("ganesha: free port: %w", err)
		}
		conf := filepath.Join(dir, "ganesha.conf")
		if err := os.WriteFile(conf, []byte(ganeshaConfig(dir, export, nfsPort, mountPort)), 0o600); err != nil {
			return nil, fmt.Errorf("ganesha: %w", err)
		}
		logPath := filepath.Join(dir, "ganesha.log")
		// Ganesha's own log (-L) and its stdout/stderr go to the same file, so errors that
		// quote the log show both.
		p, err := StartProcess(dir, "ganesha", nil, bin, "-F", "-f", conf, "-L", logPath,
			"-p", filepath.Join(dir, "ganesha.pid"), "-N", "NIV_EVENT")
		if err != nil {
			return nil, fmt.Errorf("ganesha: %w", err)
		}
		err = waitGanesha(ctx, p, nfsPort, mountPort)
		if err == nil {
			g.proc, g.nfsPort, g.mountPort, g.export = p, nfsPort, mountPort, export
			return ganeshaEndpoints(export, nfsPort, mountPort), nil
		}
		exitedEarly := p.Exited()
		_ = p.Stop(time.Second)
		lastErr = err
		if ctx.Err() != nil || !exitedEarly {
			break
		}
	}
	g.stopRPCBindLocked()
	return nil, fmt.Errorf("ganesha: %w", lastErr)
}

// waitGanesha waits until both ports accept and the log says the server is initialised (it
// binds its ports before it has finished starting).
func waitGanesha(ctx context.Context, p *Process, nfsPort, mountPort int) error {
	for _, port := range []int{nfsPort, mountPort} {
		if err := p.WaitPort(ctx, Addr(port)); err != nil {
			return err
		}
	}
	for {
		if b, err := os.ReadFile(p.LogPath); err == nil && strings.Contains(string(b), "NFS SERVER INITIALIZED") {
			return nil
		}
		if p.Exited() {
			return fmt.Errorf("exited while starting; log: %s", TailLog(p.LogPath, 600))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not initialised: %w; log: %s", ctx.Err(), TailLog(p.LogPath, 600))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// ensureRPCBind starts rpcbind unless something already listens on port 111.
func (g *Ganesha) ensureRPCBind(ctx context.Context, dir string) error {
	if g.rpcbind != nil && !g.rpcbind.Exited() {
		return nil
	}
	g.rpcbind = nil
	if listening(portmapAddr) {
		return nil
	}
	bin, err := LookPath("rpcbind", "rpcbind")
	if err != nil {
		return err
	}
	p, err := StartProcess(dir, "rpcbind", nil, bin, "-f")
	if err != nil {
		return fmt.Errorf("ganesha: %w", err)
	}
	if err := p.WaitPort(ctx, portmapAddr); err != nil {
		// Another test may have started rpcbind at the same moment: use that one.
		if listening(portmapAddr) {
			_ = p.Stop(time.Second)
			return nil
		}
		_ = p.Stop(time.Second)
		return fmt.Errorf("ganesha: rpcbind: %w", err)
	}
	g.rpcbind = p
	return nil
}

func (g *Ganesha) stopRPCBindLocked() {
	if g.rpcbind != nil {
		_ = g.rpcbind.Stop(5 * time.Second)
		g.rpcbind = nil
	}
}

func listening(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// twoFreePorts returns two distinct free ports.
func twoFreePorts() (int, int, error) {
	a, err := FreePort()
	if err != nil {
		return 0, 0, err
	}
	for range 10 {
		b, err := FreePort()
		if err != nil {
			return 0, 0, err
		}
		if b != a {
			return a, b, nil
		}
	}
	return 0, 0, errors.New("no second free port")
}

// findVFSFSAL checks that the VFS FSAL plugin, packaged separately, is installed.
func findVFSFSAL() error {
	for _, pattern := range []string{"/usr/lib/*/ganesha/libfsalvfs.so", "/usr/lib64/ganesha/libfsalvfs.so", "/usr/lib/ganesha/libfsalvfs.so"} {
		if m, _ := filepath.Glob(pattern); len(m) > 0 {
			return nil
		}
	}
	return fmt.Errorf("%w: Ganesha's VFS FSAL (libfsalvfs.so) not found: install the Debian package nfs-ganesha-vfs (apt-get install nfs-ganesha-vfs)", ErrMissingBinary)
}

// ganeshaConfig is a self-contained ganesha.conf: loopback only, fixed ports, no NLM, RQUOTA
// or UDP (which would need more ports and rpcbind registrations), no NFSv4 grace period,
// NFSv4 recovery state under dir, a D-Bus name unique to this instance.
func ganeshaConfig(dir, export string, nfsPort, mountPort int) string {
	q := strconv.Quote
	return fmt.Sprintf(`NFS_CORE_PARAM {
	Bind_addr = 127.0.0.1;
	NFS_Port = %d;
	MNT_Port = %d;
	Protocols = 3, 4;
	Enable_NLM = false;
	Enable_RQUOTA = false;
	Enable_UDP = false;
	Dbus_Name_Prefix = %s;
}
NFS_KRB5 {
	Active_krb5 = false;
}
NFSv4 {
	RecoveryRoot = %s;
	Graceless = true;
}
EXPORT {
	Export_Id = 1;
	Path = %s;
	Pseudo = /export;
	Access_Type = RW;
	Squash = No_Root_Squash;
	SecType = sys;
	Protocols = 3, 4;
	Transports = TCP;
	FSAL {
		Name = VFS;
	}
}
`, nfsPort, mountPort, q("vmstorbench"+strconv.Itoa(nfsPort)), q(filepath.Join(dir, "recovery")), q(export))
}

// ganeshaEndpoints is the one NFSv3 endpoint: NFSv3 clients mount the export's Path.
func ganeshaEndpoints(export string, nfsPort, mountPort int) []Endpoint {
	u := url.URL{
		Scheme:   "nfs",
		Host:     Addr(nfsPort),
		Path:     filepath.Join(export, NFSFile),
		RawQuery: "mountport=" + strconv.Itoa(mountPort),
	}
	return []Endpoint{{Name: "nfs-ganesha", URL: u.String(), Security: "auth_sys"}}
}
