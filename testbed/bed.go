package testbed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Catalog lists the servers the testbed can run, by name, in start order. The embedded NFS
// server comes first: it needs nothing installed.
func Catalog() []func() Server {
	return []func() Server{
		func() Server { return NewGoNFS() },
		func() Server { return NewSamba() },
		func() Server { return NewGanesha() },
		func() Server { return NewTgt() },
		func() Server { return NewGotgt() },
		func() Server { return NewQemuNBD() },
	}
}

// Select returns new servers for the given names (all when names is empty).
func Select(names []string) ([]Server, error) { return SelectWith(names, nil, nil) }

// SelectWith is Select over the catalog and optional servers (the DRBD pair, which boots two
// TCG guests: too heavy to start with every testbed). An optional server starts when it is
// named in names or in with; with adds to the default set ("all but the optional ones").
func SelectWith(names, with []string, optional []func() Server) ([]Server, error) {
	var all, opt []Server
	for _, mk := range Catalog() {
		all = append(all, mk())
	}
	for _, mk := range optional {
		opt = append(opt, mk())
	}
	for _, n := range with {
		i := slices.IndexFunc(opt, func(s Server) bool { return s.Name() == n })
		if i < 0 {
			known := make([]string, len(opt))
			for k, s := range opt {
				known[k] = s.Name()
			}
			return nil, fmt.Errorf("testbed: --with %q: not an optional server (optional: %s)", n, strings.Join(known, ", "))
		}
		if len(names) == 0 {
			all = append(all, opt[i])
		}
	}
	if len(names) == 0 {
		return all, nil
	}
	all = append(all, opt...)
	var out []Server
	for _, n := range append(slices.Clone(names), with...) {
		if slices.ContainsFunc(out, func(s Server) bool { return s.Name() == n }) {
			continue
		}
		i := slices.IndexFunc(all, func(s Server) bool { return s.Name() == n })
		if i < 0 {
			known := make([]string, len(all))
			for k, s := range all {
				known[k] = s.Name()
			}
			return nil, fmt.Errorf("testbed: unknown server %q (known: %s)", n, strings.Join(known, ", "))
		}
		out = append(out, all[i])
	}
	return out, nil
}

// Bed is a set of running servers.
type Bed struct {
	Dir     string
	servers []Server
	State   State
}

// State is what `testbed up` leaves for other commands: it is written to StateFile in the
// state directory with mode 0600, because endpoints' Env may hold generated passwords.
type State struct {
	PID       int           `json:"pid"`
	Started   time.Time     `json:"started"`
	Servers   []ServerState `json:"servers"`
	Endpoints []Endpoint    `json:"endpoints"`
}

// ServerState records one server's processes.
type ServerState struct {
	Name string `json:"name"`
	Dir  string `json:"dir"`
	PIDs []int  `json:"pids,omitempty"`
}

// StateFile is the name of the state file inside the state directory.
const StateFile = "testbed.json"

// Up starts servers one after another, each in dir/<name>. If one fails, those already
// started are stopped and the error names the failing server.
func Up(ctx context.Context, dir string, servers []Server) (*Bed, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("testbed: state directory: %w", err)
	}
	b := &Bed{Dir: dir, State: State{PID: os.Getpid(), Started: time.Now()}}
	for _, s := range servers {
		sdir := filepath.Join(dir, s.Name())
		if err := os.MkdirAll(sdir, 0o755); err != nil {
			b.Down()
			return nil, fmt.Errorf("testbed: %s: %w", s.Name(), err)
		}
		sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		eps, err := s.Start(sctx, sdir)
		cancel()
		if err != nil {
			b.Down()
			return nil, fmt.Errorf("testbed: start %s: %w", s.Name(), err)
		}
		b.servers = append(b.servers, s)
		b.State.Servers = append(b.State.Servers, ServerState{Name: s.Name(), Dir: sdir, PIDs: s.PIDs()})
		b.State.Endpoints = append(b.State.Endpoints, eps...)
	}
	return b, nil
}

// Endpoint returns the endpoint named name.
func (b *Bed) Endpoint(name string) (Endpoint, bool) { return b.State.Endpoint(name) }

// Endpoint returns the endpoint named name.
func (s *State) Endpoint(name string) (Endpoint, bool) {
	for _, e := range s.Endpoints {
		if e.Name == name {
			return e, true
		}
	}
	return Endpoint{}, false
}

// Down stops the servers in reverse order of starting.
func (b *Bed) Down() error {
	var errs []error
	for i := len(b.servers) - 1; i >= 0; i-- {
		if err := b.servers[i].Stop(); err != nil {
			errs = append(errs, fmt.Errorf("testbed: stop %s: %w", b.servers[i].Name(), err))
		}
	}
	b.servers = nil
	return errors.Join(errs...)
}

// Save writes the state file.
func (b *Bed) Save() error {
	data, err := json.MarshalIndent(b.State, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(b.Dir, StateFile+".tmp")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("testbed: write state: %w", err)
	}
	return os.Rename(tmp, filepath.Join(b.Dir, StateFile))
}

// LoadState reads the state file of a running testbed.
func LoadState(dir string) (*State, error) {
	data, err := os.ReadFile(filepath.Join(dir, StateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("testbed: no testbed running in %s (start one with 'vmstorbench testbed up')", dir)
	}
	if err != nil {
		return nil, fmt.Errorf("testbed: %w", err)
	}
	var s State
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("testbed: %s: %w", filepath.Join(dir, StateFile), err)
	}
	return &s, nil
}

// DefaultDir is the state directory used when none is given.
func DefaultDir() string {
	return filepath.Join(os.TempDir(), fmt.Sprintf("vmstorbench-testbed-%d", os.Getuid()))
}
