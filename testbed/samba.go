package testbed

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// SambaUser is the Unix and SMB account the Samba testbed serves its shares to.
const SambaUser = "vmstorbench"

// SambaPasswordEnv is the environment variable the smb backend reads its password from; the
// Samba testbed hands out its generated password under this name only.
const SambaPasswordEnv = "VMSTORBENCH_SMB_PASSWORD"

// Share names of the Samba testbed: a plain share and one that requires SMB3 encryption.
const (
	SambaShare          = "bench"
	SambaEncryptedShare = "bench-enc"
)

// SambaFile is the file name the Samba endpoints' URLs point at.
const SambaFile = "vmstorbench.img"

// Samba runs smbd in the foreground with a private smb.conf, passdb and state under its
// directory, listening on 127.0.0.1 only. It needs root: smbd switches to the connecting
// user's credentials, and the bench user needs a Unix account.
type Samba struct {
	mu   sync.Mutex
	proc *Process
	port int
}

// NewSamba returns a Samba server, not yet started.
func NewSamba() *Samba { return &Samba{} }

// Name implements Server.
func (s *Samba) Name() string { return "samba" }

// Port is the TCP port smbd listens on (0 before Start).
func (s *Samba) Port() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.port
}

// PIDs implements Server.
func (s *Samba) PIDs() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil || s.proc.Exited() {
		return nil
	}
	return []int{s.proc.PID()}
}

// Stop implements Server: smbd and the per-connection children it forked are in one process
// group, which Process.Stop signals.
func (s *Samba) Stop() error {
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	if p == nil {
		return nil
	}
	if err := p.Stop(5 * time.Second); err != nil {
		return fmt.Errorf("samba: stop: %w", err)
	}
	return nil
}

// Start implements Server. It writes dir/smb.conf, creates the shares' directories, sets a
// fresh random password for the bench user and starts smbd.
func (s *Samba) Start(ctx context.Context, dir string) ([]Endpoint, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil && !s.proc.Exited() {
		return nil, errors.New("samba: already started")
	}
	smbd, err := LookPath("smbd", "samba")
	if err != nil {
		return nil, err
	}
	smbpasswd, err := LookPath("smbpasswd", "samba")
	if err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("samba: the testbed's smbd must run as root (it switches to the bench user's credentials and needs a Unix account for it); run as root or use an existing SMB server")
	}
	if err := ensureUnixUser(ctx, SambaUser); err != nil {
		return nil, err
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("samba: %w", err)
	}
	for _, d := range []string{"private", "lock", "state", "cache", "pid", "ncalrpc", "share", "share-enc"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, fmt.Errorf("samba: %w", err)
		}
	}
	port, err := FreePort()
	if err != nil {
		return nil, fmt.Errorf("samba: free port: %w", err)
	}
	owner, err := user.Current()
	if err != nil {
		return nil, fmt.Errorf("samba: current user: %w", err)
	}
	conf := filepath.Join(dir, "smb.conf")
	if err := os.WriteFile(conf, []byte(sambaConfig(dir, port, owner.Username)), 0o600); err != nil {
		return nil, fmt.Errorf("samba: %w", err)
	}
	password, err := randomPassword()
	if err != nil {
		return nil, fmt.Errorf("samba: password: %w", err)
	}
	if err := setSambaPassword(ctx, smbpasswd, conf, SambaUser, password); err != nil {
		return nil, err
	}

	p, err := StartProcess(dir, "smbd", nil, smbd, "--foreground", "--no-process-group", "--debug-stdout", "--configfile="+conf)
	if err != nil {
		return nil, fmt.Errorf("samba: %w", err)
	}
	if err := p.WaitPort(ctx, Addr(port)); err != nil {
		_ = p.Stop(time.Second)
		return nil, fmt.Errorf("samba: %w", err)
	}
	s.proc, s.port = p, port
	return sambaEndpoints(port, password), nil
}

// sambaEndpoints lists the three security levels the testbed offers. The plain share serves
// both "none" and "signed": signing is the client's choice (server signing = auto).
func sambaEndpoints(port int, password string) []Endpoint {
	env := map[string]string{SambaPasswordEnv: password}
	url := func(share, query string) string {
		u := fmt.Sprintf("smb://%s@%s/%s/%s", SambaUser, Addr(port), share, SambaFile)
		if query != "" {
			u += "?" + query
		}
		return u
	}
	return []Endpoint{
		{Name: "smb", URL: url(SambaShare, ""), Env: env, Security: "none"},
		{Name: "smb-signed", URL: url(SambaShare, "sign=required"), Env: env, Security: "signed"},
		{Name: "smb-encrypted", URL: url(SambaEncryptedShare, ""), Env: env, Security: "encrypted"},
	}
}

// sambaConfig is a self-contained smb.conf: every path smbd writes is under dir, it listens
// on one loopback port without NetBIOS, and printing, usershares and guest access are off.
// File access runs as the owner of dir ("force user"): the bench user authenticates, but the
// directories above dir (a test's temp dir, say) are usually mode 0700 and the bench user
// could not reach the shares.
func sambaConfig(dir string, port int, owner string) string {
	p := func(name string) string { return filepath.Join(dir, name) }
	var b strings.Builder
	fmt.Fprintf(&b, `[global]
	server role = standalone server
	workgroup = WORKGROUP
	netbios name = VMSTORBENCH
	smb ports = %d
	interfaces = 127.0.0.1
	bind interfaces only = yes
	disable netbios = yes
	server min protocol = SMB2_02
	server signing = auto
	map to guest = never
	passdb backend = tdbsam:%s
	private dir = %s
	lock directory = %s
	state directory = %s
	cache directory = %s
	pid directory = %s
	ncalrpc dir = %s
	usershare path =
	load printers = no
	printing = bsd
	printcap name = /dev/null
	disable spoolss = yes
	log file = %s
	max log size = 0
	log level = 1

[%s]
	path = %s
	read only = no
	valid users = %s
	force user = %s

[%s]
	path = %s
	read only = no
	valid users = %s
	force user = %s
	smb encrypt = required
`, port, p("private/passdb.tdb"), p("private"), p("lock"), p("state"), p("cache"), p("pid"), p("ncalrpc"),
		p("smbd-internal.log"),
		SambaShare, p("share"), SambaUser, owner,
		SambaEncryptedShare, p("share-enc"), SambaUser, owner)
	return b.String()
}

// ensureUnixUser creates a system account without a home directory if name does not exist.
// Two testbeds may race to create it: a failed useradd is fine if the account exists after.
func ensureUnixUser(ctx context.Context, name string) error {
	if _, err := user.Lookup(name); err == nil {
		return nil
	}
	useradd, err := LookPath("useradd", "passwd")
	if err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name).CombinedOutput()
	if _, lerr := user.Lookup(name); lerr == nil {
		return nil
	}
	return fmt.Errorf("samba: create Unix user %s: %v: %s", name, err, strings.TrimSpace(string(out)))
}

// setSambaPassword adds name to the passdb of conf with password, given on stdin (-s) so it
// never appears in argv.
func setSambaPassword(ctx context.Context, smbpasswd, conf, name, password string) error {
	cmd := exec.CommandContext(ctx, smbpasswd, "-c", conf, "-s", "-a", name)
	cmd.Stdin = strings.NewReader(password + "\n" + password + "\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("samba: smbpasswd -a %s: %v: %s", name, err, strings.TrimSpace(strings.ReplaceAll(string(out), password, "***")))
	}
	return nil
}

// randomPassword returns 24 random bytes in URL-safe base64 (no characters a shell or
// smb.conf would treat specially).
func randomPassword() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
