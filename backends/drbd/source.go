package drbd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/vmstorbench/vmstorbench/backends/drbd/drbdstate"
)

// source reads a resource's replication state and switches its protocol. The local kernel
// is one source; a testbed node's agent is another.
type source interface {
	State(ctx context.Context) (drbdstate.State, error)
	SetProtocol(ctx context.Context, p string) error
	Name() string
}

// procPath is where DRBD reports itself.
const procPath = "/proc/drbd"

// localSource reads the state of a DRBD resource on this host: /proc/drbd for 8.4,
// drbdsetup status --json for 9.x; the protocol (which 9.x's status leaves out) from
// drbdsetup show.
type localSource struct {
	proc     string // /proc/drbd (tests point it elsewhere)
	resource string
	minor    int
	v9       bool
	setup    string // drbdsetup-84 or drbdsetup
	protocol string // from show, cached between protocol switches (9.x)
	conf     drbdstate.Config
}

func newLocalSource(ctx context.Context, proc, resource string, minor int) (*localSource, error) {
	b, err := os.ReadFile(proc)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s does not exist: the DRBD kernel module is not loaded (modprobe drbd; Debian's linux-image packages ship DRBD 8.4, DRBD 9 comes with drbd-dkms)", proc)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", proc, err)
	}
	ver, _, err := drbdstate.ParseProc(b)
	if err != nil {
		return nil, err
	}
	s := &localSource{proc: proc, resource: resource, minor: minor, v9: !strings.HasPrefix(ver, "8.")}
	// drbd-utils 9 hands an 8.4 kernel to drbdsetup-84; an 8.4-only install has drbdsetup.
	names := []string{"drbdsetup"}
	if !s.v9 {
		names = []string{"drbdsetup-84", "/lib/drbd/drbdsetup-84", "drbdsetup"}
	}
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			s.setup = p
			break
		}
	}
	if s.setup == "" && (s.v9 || s.minor < 0) {
		return nil, fmt.Errorf("drbdsetup not found: install the Debian package drbd-utils")
	}
	if s.setup != "" && s.resource != "" {
		if err := s.readConfig(ctx); err != nil {
			return nil, err
		}
	}
	if s.minor < 0 {
		return nil, fmt.Errorf("resource %q: no minor (is it configured? drbdsetup show %s)", s.resource, s.resource)
	}
	return s, nil
}

func (s *localSource) Name() string {
	if s.v9 {
		return "drbdsetup status --json"
	}
	return s.proc
}

// readConfig runs drbdsetup show for the resource's minor, addresses and protocol.
func (s *localSource) readConfig(ctx context.Context) error {
	out, err := s.run(ctx, "show", s.resource)
	if err != nil {
		return err
	}
	cfgs, err := drbdstate.ParseShow(out)
	if err != nil {
		return err
	}
	for _, c := range cfgs {
		if c.Resource == s.resource {
			s.conf = c
			s.protocol = c.Protocol
			if s.minor < 0 {
				s.minor = c.Minor
			}
			return nil
		}
	}
	return fmt.Errorf("drbdsetup show %s: no such resource", s.resource)
}

func (s *localSource) run(ctx context.Context, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, s.setup, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w: %s", s.setup, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

func (s *localSource) State(ctx context.Context) (drbdstate.State, error) {
	if s.v9 {
		out, err := s.run(ctx, "status", s.resource, "--json", "--statistics")
		if err != nil {
			return drbdstate.State{}, err
		}
		sts, err := drbdstate.ParseStatusJSON(out)
		if err != nil {
			return drbdstate.State{}, err
		}
		for _, st := range sts {
			if st.Minor == s.minor || (s.minor < 0 && st.Resource == s.resource) {
				st.Protocol = s.protocol
				return st, nil
			}
		}
		return drbdstate.State{}, fmt.Errorf("drbdsetup status: no minor %d", s.minor)
	}
	b, err := os.ReadFile(s.proc)
	if err != nil {
		return drbdstate.State{}, fmt.Errorf("read %s: %w", s.proc, err)
	}
	_, sts, err := drbdstate.ParseProc(b)
	if err != nil {
		return drbdstate.State{}, err
	}
	for _, st := range sts {
		if st.Minor == s.minor {
			st.Resource = s.resource
			return st, nil
		}
	}
	return drbdstate.State{}, fmt.Errorf("%s: minor %d is not configured", s.proc, s.minor)
}

// SetProtocol switches the replication protocol online (drbdsetup net-options).
func (s *localSource) SetProtocol(ctx context.Context, p string) error {
	if s.setup == "" || s.resource == "" {
		return errors.New("switching the protocol needs resource= and drbdsetup (drbd-utils)")
	}
	var err error
	if s.v9 {
		// DRBD 9 addresses a connection by its peer's node id: switch every connection.
		if len(s.conf.PeerNodeIDs) == 0 {
			return fmt.Errorf("drbdsetup show %s: no connection to switch", s.resource)
		}
		for _, id := range s.conf.PeerNodeIDs {
			if _, err = s.run(ctx, "net-options", s.resource, id, "--protocol="+p); err != nil {
				break
			}
		}
	} else {
		_, err = s.run(ctx, "net-options", "ipv4:"+s.conf.LocalAddr, "ipv4:"+s.conf.RemoteAddr, "--protocol="+p)
	}
	if err != nil {
		return err
	}
	s.protocol = p
	return nil
}

// agentSource reads the state from a testbed node's agent (drbdstate.Call).
type agentSource struct{ addr string }

func (a agentSource) Name() string { return "node agent " + a.addr }

func (a agentSource) State(ctx context.Context) (drbdstate.State, error) {
	r, err := drbdstate.Call(ctx, a.addr, drbdstate.Request{Op: "state"})
	if err != nil {
		return drbdstate.State{}, err
	}
	if r.State == nil {
		return drbdstate.State{}, fmt.Errorf("drbd node agent %s: no state in the response", a.addr)
	}
	return *r.State, nil
}

func (a agentSource) SetProtocol(ctx context.Context, p string) error {
	_, err := drbdstate.Call(ctx, a.addr, drbdstate.Request{Op: "protocol", Protocol: p})
	return err
}
