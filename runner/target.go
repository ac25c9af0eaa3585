// Package runner runs one benchmark: a workload on the host against a target (RunHost) or
// inside a live-migrating guest (RunMigration), from plain specs rather than CLI flags, so
// the CLI, the suite runner and tests drive the same code. It plans job files into jobs and
// resolves testbed targets; it prints nothing (Hooks are callbacks) and reads no os.Args.
package runner

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/testbed"
)

// Target is a target URL with the short name reports show for it ("" for plain URLs).
type Target struct {
	URL, Name string
}

// ResolveTestbed replaces testbed:NAME targets (and adds every storage endpoint with all)
// by their URLs. It returns the credentials those endpoints need as environment variables (the
// backends read their secrets from the environment): the caller exports them with ExportEnv.
func ResolveTestbed(targets []string, all bool, dir string) ([]Target, map[string]string, error) {
	needs := all
	for _, t := range targets {
		needs = needs || strings.HasPrefix(t, "testbed:")
	}
	if !needs {
		out := make([]Target, len(targets))
		for i, t := range targets {
			out[i] = Target{URL: t}
		}
		return out, nil, nil
	}
	st, err := testbed.LoadState(dir)
	if err != nil {
		return nil, nil, err
	}
	var out []Target
	env := map[string]string{}
	use := func(e testbed.Endpoint) {
		out = append(out, Target{URL: e.URL, Name: e.Name})
		for k, v := range e.Env {
			env[k] = v
		}
	}
	if all {
		for _, e := range st.Endpoints {
			if e.Kind != testbed.KindHypervisor {
				use(e)
			}
		}
	}
	for _, t := range targets {
		name, ok := strings.CutPrefix(t, "testbed:")
		if !ok {
			out = append(out, Target{URL: t})
			continue
		}
		e, found := st.Endpoint(name)
		if !found {
			names := make([]string, len(st.Endpoints))
			for i, e := range st.Endpoints {
				names[i] = e.Name
			}
			return nil, nil, fmt.Errorf("testbed has no endpoint %q (has: %s)", name, strings.Join(names, ", "))
		}
		use(e)
	}
	return out, env, nil
}

// ExportEnv puts env into this process's environment, where the backends read their
// secrets; variables already set (by the user) are left alone. It is the one place runner
// changes the environment: backends take secrets from nowhere else.
func ExportEnv(env map[string]string) {
	for k, v := range env {
		if _, set := os.LookupEnv(k); !set {
			os.Setenv(k, v)
		}
	}
}

// LookupTarget checks that raw is a URL some backend serves.
func LookupTarget(raw string) (backends.Backend, error) {
	u, err := backends.ParseURL(raw)
	if err != nil {
		return backends.Backend{}, err
	}
	return backends.Default.Lookup(u)
}

// RedactArgs removes credentials from URLs in a command line before it is stored in a
// result (HostSpec.Command, MigrationSpec.Command).
func RedactArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if strings.Contains(a, "://") {
			if k, v, ok := strings.Cut(a, "="); ok && strings.HasPrefix(k, "--") {
				out[i] = k + "=" + backends.RedactString(v)
				continue
			}
			out[i] = backends.RedactString(a)
			continue
		}
		out[i] = a
	}
	return out
}

// EnsureWritableDir creates dir if needed and checks that files can be created in it, so a
// bad results directory fails before the run rather than after it.
func EnsureWritableDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("results directory: %w", err)
	}
	f, err := os.CreateTemp(dir, ".vmstorbench-write-test-*")
	if err != nil {
		return fmt.Errorf("results directory %s is not writable: %w", dir, errors.Unwrap(err))
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}
