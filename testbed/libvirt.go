package testbed

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vmstorbench/vmstorbench/internal/x509creds"
)

// LibvirtUsers are the Unix accounts the two libvirt daemons of the pair run as: libvirt
// refuses to migrate a domain to the host it runs on (it compares host UUIDs), and one user
// runs one session daemon, so two "hosts" on one machine are two users. They are created
// when missing and stay (like the Samba user); everything else is removed by Stop.
var LibvirtUsers = [2]string{"vmstorbench-lv1", "vmstorbench-lv2"}

// LibvirtMigrationPorts are the first ports of each daemon's migration port range
// (migration_port_min in its qemu.conf; 50 ports each, apart from libvirt's default
// 49152-49215), where a destination listens when the migration URI names no port.
var LibvirtMigrationPorts = [2]int{49300, 49350}

// LibvirtPair runs two libvirt session daemons (libvirtd, package libvirt-daemon with
// libvirt-daemon-driver-qemu), each as its own unprivileged user with its own
// XDG_RUNTIME_DIR, configuration (a distinct host_uuid) and migration port range, so that
// a domain can be live-migrated from one to the other on this machine, in plain TCP or
// with TLS (migration credentials from one throw-away CA, client certificates verified). Endpoints libvirt-1
// and libvirt-2 are their socket URIs (qemu+unix:///session?socket=…), which only root (or
// the daemon's own user) can open.
//
// It installs nothing: it needs /usr/sbin/libvirtd (scripts/deps.sh installs it). The
// daemons' files are in a directory of their own under the system temp directory, not under
// the testbed's state directory, which is private to the user running the testbed: the
// daemons must reach their files, and the QEMU processes they start must reach the guest
// images the driver stages there (see vm/hv/libvirt).
type LibvirtPair struct {
	// TCP makes each daemon also listen on a TCP port of 127.0.0.1 without authentication
	// (endpoints libvirt-1-tcp, libvirt-2-tcp: qemu+tcp://127.0.0.1:PORT/session), which
	// peer-to-peer migration needs (the source daemon connects to the destination's).
	// Any local user can then drive the daemons: off unless asked for; set before Start.
	TCP bool
	// TLS makes each daemon also listen with TLS on a port of 127.0.0.1, clients
	// authenticated by their certificate (libvirtd's default: verified against the pair's
	// CA): endpoints libvirt-1-tls, libvirt-2-tls, qemu+tls://127.0.0.1:PORT/session?
	// pkipath=DIR, DIR holding the client's credentials under libvirt's names (cacert.pem,
	// clientcert.pem, clientkey.pem), readable by root only. Set before Start.
	TLS bool
	// Postcopy lets the daemons' QEMU use userfaultfd, which post-copy migration needs: an
	// unprivileged process gets it only with CAP_SYS_PTRACE (or the machine-wide sysctl
	// vm.unprivileged_userfaultfd=1, which the testbed does not touch). Each daemon then
	// runs with CAP_SYS_PTRACE as an ambient capability, which the QEMU it starts inherits,
	// and clear_emulator_capabilities = 0 in its qemu.conf (measured with libvirt 9.0: the
	// domain's QEMU showed CapEff 0x80000 with and without that line; it says what is
	// meant, should another libvirt clear capabilities in session mode). Off unless
	// asked for: CAP_SYS_PTRACE lets a process read and write any process's memory, so
	// whoever can drive a daemon (it runs the <emulator> a domain names) or escapes its
	// guest into QEMU is as good as root. With the sockets only root can open that is no one
	// new but such an escape, nor with TLS (the client certificate is root's); with TCP any
	// local user could, so TCP and Postcopy together are refused. Set before Start.
	Postcopy bool

	mu      sync.Mutex
	base    string
	daemons []*libvirtDaemon
}

type libvirtDaemon struct {
	user    string
	dir     string // owned by user: run/, c/ (configuration), cache/, home/
	socket  string
	uuid    string
	proc    *Process
	uid     int
	runtime string
}

// NewLibvirtPair returns the pair, not yet started.
func NewLibvirtPair() *LibvirtPair { return &LibvirtPair{} }

// Name implements Server.
func (p *LibvirtPair) Name() string { return "libvirt" }

// PIDs implements Server: the two daemons.
func (p *LibvirtPair) PIDs() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	var pids []int
	for _, d := range p.daemons {
		if d.proc != nil && !d.proc.Exited() {
			pids = append(pids, d.proc.PID())
		}
	}
	return pids
}

// HostUUIDs are the host_uuid values of the two daemons (empty before Start).
func (p *LibvirtPair) HostUUIDs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, d := range p.daemons {
		out = append(out, d.uuid)
	}
	return out
}

// LibvirtSocketURI is the URI of a session daemon listening on socket (slashes left as they
// are, as virsh users write it).
func LibvirtSocketURI(socket string) string {
	return "qemu+unix:///session?socket=" + strings.ReplaceAll(url.QueryEscape(socket), "%2F", "/")
}

// Start implements Server. dir gets the daemons' logs (libvirtd-1.log, libvirtd-2.log).
func (p *LibvirtPair) Start(ctx context.Context, dir string) (_ []Endpoint, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.base != "" {
		return nil, errors.New("libvirt: already started")
	}
	if p.TCP && p.Postcopy {
		return nil, errors.New("libvirt: the pair's TCP listeners (no authentication) and post-copy (CAP_SYS_PTRACE for the daemons and their QEMU) together would let any local user act as root: use TLS (clients authenticated by certificate) instead of TCP")
	}
	bin, err := LookPath("libvirtd", "libvirt-daemon")
	if err != nil {
		return nil, fmt.Errorf("libvirt: %w (and libvirt-daemon-driver-qemu; scripts/deps.sh installs both)", err)
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("libvirt: the testbed's libvirt pair must be started as root (it runs each daemon as a user of its own and opens both sockets); run as root or give the URIs of existing daemons")
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, fmt.Errorf("libvirt: %w", err)
	}
	// A short path: the daemons' unix sockets live under it (108 bytes at most), the agent
	// channels' sockets too, four levels under $XDG_CONFIG_HOME.
	base, err := os.MkdirTemp("", "vsblv")
	if err != nil {
		return nil, fmt.Errorf("libvirt: %w", err)
	}
	if err := os.Chmod(base, 0o755); err != nil {
		os.RemoveAll(base)
		return nil, fmt.Errorf("libvirt: %w", err)
	}
	p.base = base
	defer func() {
		if err != nil {
			p.stopLocked()
		}
	}()
	// One CA for both daemons: each is the TLS server of the migrations it receives and the
	// client of those it sends (VIR_MIGRATE_TLS).
	creds, err := x509creds.Write(filepath.Join(base, "pki", "server"), filepath.Join(base, "pki", "client"), "vmstorbench testbed libvirt", 30*24*time.Hour)
	if err != nil {
		return nil, fmt.Errorf("libvirt: %w", err)
	}
	pkiPath := ""
	if p.TLS {
		if pkiPath, err = libvirtClientPKI(filepath.Join(creds.ClientDir, "ca-cert.pem"), creds.ClientDir, filepath.Join(base, "pki", "libvirt-client")); err != nil {
			return nil, fmt.Errorf("libvirt: %w", err)
		}
	}
	var eps, tcpEPs, tlsEPs []Endpoint
	for i, name := range LibvirtUsers {
		if err := ensureUnixUser(ctx, name); err != nil {
			return nil, fmt.Errorf("libvirt: %w", err)
		}
		var l libvirtListen
		if p.TCP {
			if l.tcp, err = FreePort(); err != nil {
				return nil, fmt.Errorf("libvirt: %w", err)
			}
		}
		if p.TLS {
			if l.tls, err = FreePort(); err != nil {
				return nil, fmt.Errorf("libvirt: %w", err)
			}
		}
		d, err := startLibvirtd(ctx, bin, dir, filepath.Join(base, strconv.Itoa(i+1)), name, i, l, p.Postcopy, creds)
		if d != nil {
			p.daemons = append(p.daemons, d)
		}
		if err != nil {
			return nil, err
		}
		eps = append(eps, Endpoint{Name: fmt.Sprintf("libvirt-%d", i+1), URL: LibvirtSocketURI(d.socket), Security: "none", Kind: KindHypervisor})
		if l.tcp != 0 {
			tcpEPs = append(tcpEPs, Endpoint{Name: fmt.Sprintf("libvirt-%d-tcp", i+1), URL: fmt.Sprintf("qemu+tcp://%s/session", Addr(l.tcp)), Security: "none", Kind: KindHypervisor})
		}
		if l.tls != 0 {
			tlsEPs = append(tlsEPs, Endpoint{Name: fmt.Sprintf("libvirt-%d-tls", i+1), URL: fmt.Sprintf("qemu+tls://%s/session?pkipath=%s", Addr(l.tls), pkiPath), Security: "tls", Kind: KindHypervisor})
		}
	}
	return append(append(eps, tcpEPs...), tlsEPs...), nil
}

// libvirtListen are the TCP ports a daemon listens on besides its socket (0: none).
type libvirtListen struct{ tcp, tls int }

// libvirtClientPKI writes a libvirt client's pkipath dir: cacert.pem from caFile, the
// client certificate and key from clientDir (x509creds' names). dir stays readable by root
// only (the certificate is the client's credential).
func libvirtClientPKI(caFile, clientDir, dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	for from, to := range map[string]string{caFile: "cacert.pem", filepath.Join(clientDir, "client-cert.pem"): "clientcert.pem", filepath.Join(clientDir, "client-key.pem"): "clientkey.pem"} {
		data, err := os.ReadFile(from)
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(dir, to), data, 0o600); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// LibvirtForeignClient returns tlsURI (a TLS endpoint's, qemu+tls://…?pkipath=DIR) with a
// pkipath written under dir that trusts the daemons of DIR but holds a client certificate
// from another CA, which they refuse: the credential error a client meets with another
// deployment's certificate.
func LibvirtForeignClient(tlsURI, dir string) (string, error) {
	u, err := url.Parse(tlsURI)
	if err != nil {
		return "", fmt.Errorf("libvirt: %w", err)
	}
	q := u.Query()
	pkipath := q.Get("pkipath")
	if pkipath == "" {
		return "", fmt.Errorf("libvirt: %s has no pkipath: not a TLS endpoint of the pair", tlsURI)
	}
	other, err := x509creds.Write(filepath.Join(dir, "server"), filepath.Join(dir, "client"), "another", time.Hour)
	if err != nil {
		return "", err
	}
	foreign, err := libvirtClientPKI(filepath.Join(pkipath, "cacert.pem"), other.ClientDir, filepath.Join(dir, "pki"))
	if err != nil {
		return "", err
	}
	q.Set("pkipath", foreign)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// startLibvirtd writes one daemon's configuration under dir and starts it as user name;
// it returns once the daemon accepts connections on its socket.
func startLibvirtd(ctx context.Context, bin, logDir, dir, name string, index int, l libvirtListen, postcopy bool, creds *x509creds.Dirs) (*libvirtDaemon, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("libvirt: %w", err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("libvirt: user %s: %w", name, err)
	}
	hostUUID, err := newUUID()
	if err != nil {
		return nil, fmt.Errorf("libvirt: %w", err)
	}
	d := &libvirtDaemon{user: name, dir: dir, uuid: hostUUID, uid: uid, runtime: filepath.Join(dir, "run")}
	d.socket = filepath.Join(d.runtime, "libvirt", "libvirt-sock")
	// The session daemon finds everything through the XDG variables: configuration in
	// $XDG_CONFIG_HOME/libvirt, sockets and PID files in $XDG_RUNTIME_DIR/libvirt, QEMU logs
	// and capability caches in $XDG_CACHE_HOME/libvirt.
	daemonConf := fmt.Sprintf("host_uuid = %q\n", hostUUID)
	argv := []string{bin}
	if l.tcp != 0 || l.tls != 0 {
		daemonConf += fmt.Sprintf("listen_addr = \"127.0.0.1\"\nlisten_tcp = %d\nlisten_tls = %d\n", b2i(l.tcp != 0), b2i(l.tls != 0))
		argv = append(argv, "--listen")
	}
	if l.tcp != 0 {
		daemonConf += fmt.Sprintf("tcp_port = \"%d\"\nauth_tcp = \"none\"\n", l.tcp)
	}
	if l.tls != 0 {
		// The daemon's certificate for 127.0.0.1 and the CA that signed the clients' (the
		// same files as its migration credentials); auth_tls "none": the verified client
		// certificate is the authentication.
		pki := filepath.Join(dir, "pki")
		daemonConf += fmt.Sprintf("tls_port = \"%d\"\nauth_tls = \"none\"\nkey_file = %q\ncert_file = %q\nca_file = %q\n",
			l.tls, filepath.Join(pki, "server-key.pem"), filepath.Join(pki, "server-cert.pem"), filepath.Join(pki, "ca-cert.pem"))
	}
	files := map[string]string{
		"c/libvirt/libvirtd.conf": daemonConf,
		// stdio_handler "file": QEMU's output goes to a log file, without virtlogd (a daemon
		// of its own that would outlive this one). The migration TLS credentials are checked
		// both ways (the destination verifies the source's client certificate).
		"c/libvirt/qemu.conf": fmt.Sprintf("migration_port_min = %d\nmigration_port_max = %d\nstdio_handler = \"file\"\n"+
			"migrate_tls_x509_cert_dir = %q\nmigrate_tls_x509_verify = 1\n",
			LibvirtMigrationPorts[index], LibvirtMigrationPorts[index]+49, filepath.Join(dir, "pki")),
	}
	var caps []uintptr
	if postcopy {
		// See LibvirtPair.Postcopy. The kernel lets userfaultfd(2) handle kernel faults
		// (which QEMU 7.2 asks for) with CAP_SYS_PTRACE; ambient, it survives the change of
		// user here and the daemon's execs of QEMU.
		files["c/libvirt/qemu.conf"] += "clear_emulator_capabilities = 0\n"
		caps = []uintptr{unix.CAP_SYS_PTRACE}
	}
	for _, f := range []string{"server/ca-cert.pem", "server/server-cert.pem", "server/server-key.pem", "client/client-cert.pem", "client/client-key.pem"} {
		src := filepath.Join(creds.ServerDir, filepath.Base(f))
		if strings.HasPrefix(f, "client/") {
			src = filepath.Join(creds.ClientDir, filepath.Base(f))
		}
		data, err := os.ReadFile(src)
		if err != nil {
			return nil, fmt.Errorf("libvirt: %w", err)
		}
		files["pki/"+filepath.Base(f)] = string(data)
	}
	for _, sub := range []string{"run", "c/libvirt", "cache/libvirt/qemu/log", "home", "pki"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, fmt.Errorf("libvirt: %w", err)
		}
	}
	for rel, content := range files {
		if err := os.WriteFile(filepath.Join(dir, rel), []byte(content), 0o600); err != nil {
			return nil, fmt.Errorf("libvirt: %w", err)
		}
	}
	if err := chownTree(dir, uid, gid); err != nil {
		return nil, fmt.Errorf("libvirt: %w", err)
	}
	env := []string{
		"PATH=/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=" + filepath.Join(dir, "home"),
		"USER=" + name, "LOGNAME=" + name,
		"XDG_RUNTIME_DIR=" + d.runtime,
		"XDG_CONFIG_HOME=" + filepath.Join(dir, "c"),
		"XDG_CACHE_HOME=" + filepath.Join(dir, "cache"),
	}
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}
	proc, err := StartProcessAs(logDir, fmt.Sprintf("libvirtd-%d", index+1), env, cred, caps, argv...)
	if err != nil {
		return nil, fmt.Errorf("libvirt: %w", err)
	}
	d.proc = proc
	if err := proc.WaitUnix(ctx, d.socket); err != nil {
		return d, fmt.Errorf("libvirt: %w", err)
	}
	for _, port := range []int{l.tcp, l.tls} {
		if port == 0 {
			continue
		}
		if err := proc.WaitPort(ctx, Addr(port)); err != nil {
			return d, fmt.Errorf("libvirt: %w", err)
		}
	}
	return d, nil
}

// Stop implements Server: it kills the QEMU processes the daemons started (found by the PID
// files libvirt keeps for running domains, and only if they still belong to the daemon's
// user), stops the daemons and removes their directory.
func (p *LibvirtPair) Stop() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stopLocked()
}

func (p *LibvirtPair) stopLocked() error {
	var errs []error
	for _, d := range p.daemons {
		errs = append(errs, d.killDomains())
		if err := d.proc.Stop(5 * time.Second); err != nil {
			errs = append(errs, fmt.Errorf("libvirt: %w", err))
		}
		// A domain started while the daemon was stopping.
		errs = append(errs, d.killDomains())
	}
	p.daemons = nil
	if p.base != "" {
		if err := os.RemoveAll(p.base); err != nil {
			errs = append(errs, fmt.Errorf("libvirt: %w", err))
		}
		p.base = ""
	}
	return errors.Join(errs...)
}

// killDomains SIGKILLs the QEMU of every domain that has a PID file in the daemon's run
// directory and waits for it to go.
func (d *libvirtDaemon) killDomains() error {
	files, _ := filepath.Glob(filepath.Join(d.runtime, "libvirt", "qemu", "run", "*.pid"))
	var errs []error
	for _, f := range files {
		if filepath.Base(f) == "driver.pid" {
			continue // the QEMU driver's lock, holding the daemon's own PID
		}
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil || pid <= 1 || processUID(pid) != d.uid {
			continue
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("libvirt: kill QEMU %d: %w", pid, err))
			continue
		}
		for end := time.Now().Add(5 * time.Second); time.Now().Before(end) && processUID(pid) == d.uid; {
			time.Sleep(20 * time.Millisecond)
		}
	}
	return errors.Join(errs...)
}

// processUID is the real UID of process pid, -1 when it is gone (or a zombie of ours: its
// status has no Uid line after it was reaped).
func processUID(pid int) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f, ok := strings.CutPrefix(line, "State:"); ok && strings.Contains(f, "zombie") {
			return -1
		}
		if f, ok := strings.CutPrefix(line, "Uid:"); ok {
			fields := strings.Fields(f)
			if len(fields) > 0 {
				if uid, err := strconv.Atoi(fields[0]); err == nil {
					return uid
				}
			}
		}
	}
	return -1
}

func chownTree(dir string, uid, gid int) error {
	return filepath.Walk(dir, func(path string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, uid, gid)
	})
}

// newUUID returns a random (version 4) UUID.
func newUUID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:]), nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
