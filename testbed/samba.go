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
//
// The main smbd offers Samba's default SMB 3.1.1 signing algorithms (AES-128-GMAC first,
// then AES-128-CMAC, HMAC-SHA256), so a client that offers GMAC signs with it. "server smb3
// signing algorithms" is a global setting, so each algorithm in ForcedSigning gets an smbd
// of its own (own port, state and share directory under dir/signing-NAME) that offers only
// that algorithm, with one endpoint, smb-signed-NAME: both the client under test and a
// reference client such as smbclient then sign with it, whatever they prefer.
type Samba struct {
	// ForcedSigning lists signing algorithms as smb.conf names them ("AES-128-CMAC",
	// "AES-128-GMAC", "HMAC-SHA256"); set before Start.
	ForcedSigning []string

	mu    sync.Mutex
	procs []*Process // the main smbd first
	port  int
}

// NewSamba returns a Samba server, not yet started, with an AES-128-CMAC-only smbd beside
// the main one (endpoint smb-signed-cmac), so signed SMB is measured with both algorithms.
func NewSamba() *Samba { return &Samba{ForcedSigning: []string{SigningCMAC}} }

// SMB 3.1.1 signing algorithms as smb.conf names them.
const (
	SigningGMAC       = "AES-128-GMAC"
	SigningCMAC       = "AES-128-CMAC"
	SigningHMACSHA256 = "HMAC-SHA256"
)

// signingSuffix is the endpoint and directory suffix of a forced signing algorithm.
func signingSuffix(alg string) (string, error) {
	switch alg {
	case SigningGMAC:
		return "gmac", nil
	case SigningCMAC:
		return "cmac", nil
	case SigningHMACSHA256:
		return "hmac-sha256", nil
	}
	return "", fmt.Errorf("samba: unknown signing algorithm %q (want %s, %s or %s)", alg, SigningGMAC, SigningCMAC, SigningHMACSHA256)
}

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
	var pids []int
	for _, p := range s.procs {
		if !p.Exited() {
			pids = append(pids, p.PID())
		}
	}
	return pids
}

// Stop implements Server: each smbd and the per-connection children it forked are in one
// process group, which Process.Stop signals.
func (s *Samba) Stop() error {
	s.mu.Lock()
	procs := s.procs
	s.mu.Unlock()
	return stopAll(procs)
}

func stopAll(procs []*Process) error {
	var errs []error
	for _, p := range procs {
		if err := p.Stop(5 * time.Second); err != nil {
			errs = append(errs, fmt.Errorf("samba: stop: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Start implements Server. It writes dir/smb.conf, creates the shares' directories, sets a
// fresh random password for the bench user and starts smbd; then the same in
// dir/signing-NAME for each of ForcedSigning, with the same password.
func (s *Samba) Start(ctx context.Context, dir string) (_ []Endpoint, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.procs {
		if !p.Exited() {
			return nil, errors.New("samba: already started")
		}
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
	suffixes := make([]string, len(s.ForcedSigning))
	for i, alg := range s.ForcedSigning {
		if suffixes[i], err = signingSuffix(alg); err != nil {
			return nil, err
		}
	}
	if err := ensureUnixUser(ctx, SambaUser); err != nil {
		return nil, fmt.Errorf("samba: %w", err)
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("samba: %w", err)
	}
	owner, err := user.Current()
	if err != nil {
		return nil, fmt.Errorf("samba: current user: %w", err)
	}
	password, err := randomPassword()
	if err != nil {
		return nil, fmt.Errorf("samba: password: %w", err)
	}

	var procs []*Process
	defer func() {
		if err != nil {
			_ = stopAll(procs)
		}
	}()
	start := func(dir, signing string) (int, error) {
		p, port, err := startSmbd(ctx, smbd, smbpasswd, dir, owner.Username, signing, password)
		if err != nil {
			return 0, err
		}
		procs = append(procs, p)
		return port, nil
	}
	port, err := start(dir, "")
	if err != nil {
		return nil, err
	}
	eps := sambaEndpoints(port, password)
	for i, alg := range s.ForcedSigning {
		p, err := start(filepath.Join(dir, "signing-"+suffixes[i]), alg)
		if err != nil {
			return nil, fmt.Errorf("%w (smbd with signing %s only)", err, alg)
		}
		eps = append(eps, signingEndpoint(p, suffixes[i], password))
	}
	s.procs, s.port = procs, port
	return eps, nil
}

// startSmbd starts one smbd with its files under dir: signing, when not empty, is its only
// SMB 3.1.1 signing algorithm.
func startSmbd(ctx context.Context, smbd, smbpasswd, dir, owner, signing, password string) (*Process, int, error) {
	for _, d := range []string{"private", "lock", "state", "cache", "pid", "ncalrpc", "share", "share-enc"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, 0, fmt.Errorf("samba: %w", err)
		}
	}
	port, err := FreePort()
	if err != nil {
		return nil, 0, fmt.Errorf("samba: free port: %w", err)
	}
	conf := filepath.Join(dir, "smb.conf")
	if err := os.WriteFile(conf, []byte(sambaConfig(dir, port, owner, signing)), 0o600); err != nil {
		return nil, 0, fmt.Errorf("samba: %w", err)
	}
	if err := setSambaPassword(ctx, smbpasswd, conf, SambaUser, password); err != nil {
		return nil, 0, err
	}
	p, err := StartProcess(dir, "smbd", nil, smbd, "--foreground", "--no-process-group", "--debug-stdout", "--configfile="+conf)
	if err != nil {
		return nil, 0, fmt.Errorf("samba: %w", err)
	}
	if err := p.WaitPort(ctx, Addr(port)); err != nil {
		_ = p.Stop(time.Second)
		return nil, 0, fmt.Errorf("samba: %w", err)
	}
	return p, port, nil
}

// signingEndpoint is the signed endpoint of an smbd that offers one signing algorithm.
func signingEndpoint(port int, suffix, password string) Endpoint {
	return Endpoint{
		Name:     "smb-signed-" + suffix,
		URL:      fmt.Sprintf("smb://%s@%s/%s/%s?sign=required", SambaUser, Addr(port), SambaShare, SambaFile),
		Env:      map[string]string{SambaPasswordEnv: password},
		Security: "signed",
	}
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
// signing, when not empty, is the only SMB 3.1.1 signing algorithm smbd offers.
// File access runs as the owner of dir ("force user"): the bench user authenticates, but the
// directories above dir (a test's temp dir, say) are usually mode 0700 and the bench user
// could not reach the shares.
func sambaConfig(dir string, port int, owner, signing string) string {
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
%s
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
		p("smbd-internal.log"), signingLine(signing),
		SambaShare, p("share"), SambaUser, owner,
		SambaEncryptedShare, p("share-enc"), SambaUser, owner)
	return b.String()
}

// signingLine is the smb.conf line that restricts SMB 3.1.1 signing to alg, if any. A client
// that offers none of the listed algorithms gets AES-128-CMAC (MS-SMB2 3.3.5.4).
func signingLine(alg string) string {
	if alg == "" {
		return ""
	}
	return "\tserver smb3 signing algorithms = " + alg + "\n"
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
	return fmt.Errorf("create Unix user %s: %v: %s", name, err, strings.TrimSpace(string(out)))
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
