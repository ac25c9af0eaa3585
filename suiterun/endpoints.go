package suiterun

import (
	"errors"
	"fmt"

	"github.com/vmstorbench/vmstorbench/runner"
	"github.com/vmstorbench/vmstorbench/suite"
)

// Endpoints resolves the suite's targets: testbed endpoints to their URLs (env holds their
// credentials, for runner.ExportEnv), secrets to files in secretDir the backends read. An
// optional target that is not available is left out with a note; any other is an error.
// With dryRun nothing is written and secrets are not looked at.
func Endpoints(s *suite.Suite, testbedDir, secretDir string, lookupEnv func(string) (string, bool), dryRun bool) (eps []suite.Endpoint, notes []string, env map[string]string, err error) {
	env = map[string]string{}
	declared := map[string]bool{}
	for _, t := range s.Targets {
		declared[t.Name] = true
	}
	if s.Testbed {
		refs, tenv, err := runner.ResolveTestbed(nil, true, testbedDir)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("testbed: true: %w", err)
		}
		for k, v := range tenv {
			env[k] = v
		}
		for _, r := range refs {
			if !declared[r.Name] { // a target the file lists itself runs once, as listed
				eps = append(eps, suite.Endpoint{Name: r.Name, URL: r.URL, AllowDestructive: s.AllowDestructive})
			}
		}
	}
	for _, t := range s.Targets {
		e := suite.Endpoint{Name: t.Name, URL: t.URL, Target: t, AllowDestructive: t.AllowDestructive}
		var err error
		if _, ok := t.TestbedName(); ok {
			var refs []runner.Target
			var tenv map[string]string
			if refs, tenv, err = runner.ResolveTestbed([]string{t.URL}, false, testbedDir); err == nil {
				e.URL = refs[0].URL
				for k, v := range tenv {
					env[k] = v
				}
			}
		} else if !dryRun {
			e.URL, err = t.ResolveURL(secretDir, lookupEnv)
		}
		if err != nil {
			if t.Optional {
				notes = append(notes, fmt.Sprintf("target %q is left out (optional): %v", t.Name, err))
				continue
			}
			return nil, nil, nil, fmt.Errorf("%s:%d: target %q: %w", s.File, t.Line, t.Name, err)
		}
		if _, err := runner.LookupTarget(e.URL); err != nil {
			return nil, nil, nil, fmt.Errorf("%s:%d: target %q: %w", s.File, t.Line, t.Name, err)
		}
		eps = append(eps, e)
	}
	if len(eps) == 0 {
		return nil, notes, nil, errors.New("no target left to run")
	}
	return eps, notes, env, nil
}
