package testbed

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// iSCSI names and sizes shared by the tgt and gotgt testbeds. The backend's secret variable is
// repeated here rather than imported: backends/iscsi's tests import the testbed.
const (
	// ISCSISecretEnv is the variable the iscsi backend reads the CHAP secret from.
	ISCSISecretEnv = "VMSTORBENCH_ISCSI_SECRET"
	// ISCSICHAPUser is the CHAP account of the testbed's CHAP target.
	ISCSICHAPUser = "vmstorbench"
	// ISCSILUNSize is the size of every testbed LUN (a sparse file).
	ISCSILUNSize = 256 << 20
	// ISCSILUN is the LUN number of the disk in every testbed target (tgt keeps LUN 0 for its
	// controller).
	ISCSILUN = 1

	TgtTarget     = "iqn.2025-01.org.vmstorbench:tgt"
	TgtCHAPTarget = "iqn.2025-01.org.vmstorbench:tgt-chap"
)

// tgtRunDir is where tgtd puts its control socket, socket.<n>, for control port n.
const tgtRunDir = "/var/run/tgtd"

// Tgt runs Debian's tgtd (package tgt) in the foreground with a portal on 127.0.0.1 and two
// targets, each with one 256 MiB file-backed disk at LUN 1: one without authentication and
// one that requires one-way CHAP with a fresh random secret. Both accept CRC32C header and
// data digests (and None). tgtd needs root: its control socket lives in /var/run/tgtd.
type Tgt struct {
	mu      sync.Mutex
	proc    *Process
	port    int
	control int
	tgtadm  string
}

// NewTgt returns a tgt server, not yet started.
func NewTgt() *Tgt { return &Tgt{} }

// Name implements Server.
func (t *Tgt) Name() string { return "tgt" }

// Port is the iSCSI portal's TCP port (0 before Start).
func (t *Tgt) Port() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.port
}

// PIDs implements Server.
func (t *Tgt) PIDs() []int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.proc == nil || t.proc.Exited() {
		return nil
	}
	return []int{t.proc.PID()}
}

// Start implements Server.
func (t *Tgt) Start(ctx context.Context, dir string) ([]Endpoint, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.proc != nil && !t.proc.Exited() {
		return nil, errors.New("tgt: already started")
	}
	tgtd, err := LookPath("tgtd", "tgt")
	if err != nil {
		return nil, err
	}
	if t.tgtadm, err = LookPath("tgtadm", "tgt"); err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("tgt: tgtd must run as root (its control socket lives in " + tgtRunDir + "); run as root or use the gotgt server")
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, fmt.Errorf("tgt: %w", err)
	}
	if err := os.MkdirAll(tgtRunDir, 0o755); err != nil {
		return nil, fmt.Errorf("tgt: %w", err)
	}
	plain, chap := filepath.Join(dir, "lun-tgt.img"), filepath.Join(dir, "lun-tgt-chap.img")
	for _, f := range []string{plain, chap} {
		if err := sparseFile(f, ISCSILUNSize); err != nil {
			return nil, fmt.Errorf("tgt: %w", err)
		}
	}
	secret, err := randomPassword()
	if err != nil {
		return nil, fmt.Errorf("tgt: secret: %w", err)
	}
	// The control port only names the socket file; pick one no other tgtd uses. A clash with
	// a tgtd started at the same moment makes ours exit, and we try another.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := FreePort()
		if err != nil {
			return nil, fmt.Errorf("tgt: free port: %w", err)
		}
		control := freeControlPort()
		p, err := StartProcess(dir, "tgtd", nil, tgtd, "-f", "-C", strconv.Itoa(control), "--iscsi", "portal="+Addr(port))
		if err != nil {
			return nil, fmt.Errorf("tgt: %w", err)
		}
		t.proc, t.port, t.control = p, port, control
		if lastErr = p.WaitPort(ctx, Addr(port)); lastErr == nil {
			lastErr = t.configure(ctx, plain, chap, secret)
		}
		if lastErr == nil {
			return tgtEndpoints(port, secret), nil
		}
		t.stopLocked()
		if ctx.Err() != nil {
			break
		}
	}
	t.proc = nil
	return nil, fmt.Errorf("tgt: %w", lastErr)
}

// freeControlPort picks a control port (tgtd takes 0-32767) whose socket does not exist.
func freeControlPort() int {
	for {
		n := 1000 + rand.IntN(31000)
		if _, err := os.Stat(filepath.Join(tgtRunDir, "socket."+strconv.Itoa(n))); errors.Is(err, os.ErrNotExist) {
			return n
		}
	}
}

// tgtEndpoints are the two targets' URLs. The digest options are the client's choice: the
// targets accept None and CRC32C.
func tgtEndpoints(port int, secret string) []Endpoint {
	url := func(target string) string {
		return fmt.Sprintf("iscsi://%s/%s/%d", Addr(port), target, ISCSILUN)
	}
	return []Endpoint{
		{Name: "iscsi-tgt", URL: url(TgtTarget), Security: "none"},
		{Name: "iscsi-tgt-chap", URL: url(TgtCHAPTarget) + "?chap_user=" + ISCSICHAPUser,
			Env: map[string]string{ISCSISecretEnv: secret}, Security: "chap"},
	}
}

// configure creates the targets once tgtd answers on its control socket.
func (t *Tgt) configure(ctx context.Context, plain, chap, secret string) error {
	for {
		if err := t.adm(ctx, "", "--mode", "target", "--op", "show"); err == nil {
			break
		} else if t.proc.Exited() {
			return fmt.Errorf("tgtd exited: %v; log: %s", err, TailLog(t.proc.LogPath, 400))
		} else if ctx.Err() != nil {
			return fmt.Errorf("tgtd control socket: %w", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for tid, spec := range []struct{ name, file string }{{TgtTarget, plain}, {TgtCHAPTarget, chap}} {
		id := strconv.Itoa(tid + 1)
		steps := [][]string{
			{"--mode", "target", "--op", "new", "--tid", id, "--targetname", spec.name},
			{"--mode", "logicalunit", "--op", "new", "--tid", id, "--lun", strconv.Itoa(ISCSILUN), "--backing-store", spec.file},
			{"--mode", "target", "--op", "bind", "--tid", id, "--initiator-address", "ALL"},
			// tgt offers no digests unless told; accept both so that the client chooses.
			{"--mode", "target", "--op", "update", "--tid", id, "--name", "HeaderDigest", "--value", "None,CRC32C"},
			{"--mode", "target", "--op", "update", "--tid", id, "--name", "DataDigest", "--value", "None,CRC32C"},
		}
		for _, s := range steps {
			if err := t.adm(ctx, "", s...); err != nil {
				return err
			}
		}
	}
	// tgtadm takes the password only in argv (it has no stdin or file option): it is visible
	// in the process list for the moment tgtadm runs, and masked in errors.
	if err := t.adm(ctx, secret, "--mode", "account", "--op", "new", "--user", ISCSICHAPUser, "--password", secret); err != nil {
		return err
	}
	return t.adm(ctx, "", "--mode", "account", "--op", "bind", "--tid", "2", "--user", ISCSICHAPUser)
}

// adm runs tgtadm against our tgtd; secret, if set, is masked in the error.
func (t *Tgt) adm(ctx context.Context, secret string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	full := append([]string{"-C", strconv.Itoa(t.control), "--lld", "iscsi"}, args...)
	out, err := exec.CommandContext(ctx, t.tgtadm, full...).CombinedOutput()
	if err == nil {
		return nil
	}
	msg := fmt.Sprintf("tgtadm %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	if secret != "" {
		msg = strings.ReplaceAll(msg, secret, "***")
	}
	return errors.New(msg)
}

// Stop implements Server. tgtd ignores SIGTERM, so it is asked to exit over its control
// socket after its targets are deleted; SIGKILL (by PID) is the fallback for a tgtd that does
// not answer.
func (t *Tgt) Stop() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.stopLocked()
}

func (t *Tgt) stopLocked() error {
	p := t.proc
	if p == nil {
		return nil
	}
	if !p.Exited() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		for _, tid := range []string{"1", "2"} {
			_ = t.adm(ctx, "", "--mode", "target", "--op", "delete", "--force", "--tid", tid)
		}
		_ = t.adm(ctx, "", "--mode", "system", "--op", "delete")
		cancel()
	}
	err := p.Stop(2 * time.Second)
	sock := filepath.Join(tgtRunDir, "socket."+strconv.Itoa(t.control))
	_ = os.Remove(sock)
	_ = os.Remove(sock + ".lock")
	if err != nil {
		return fmt.Errorf("tgt: stop: %w", err)
	}
	return nil
}

// sparseFile creates (or truncates) a sparse file of size bytes.
func sparseFile(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
