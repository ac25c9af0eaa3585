package suite

import (
	"fmt"
	"os"
	"strconv"
)

// Endpoint is a target as runs use it: a testbed name resolved to its URL, a secret wired
// in through the backend's file option.
type Endpoint struct {
	// Name is the target's name in reports (the "target" label of its results).
	Name string
	// URL is what the backend opens. It may name a secret file, never hold a secret.
	URL string
	// Target is the suite's declaration; nil for an endpoint that `testbed: true` added.
	Target           *Target
	AllowDestructive bool
}

// Run is one cell of the matrix: one job on one endpoint in one scenario, one repeat.
type Run struct {
	// N is the run's number (1-based) and Of the number of runs.
	N, Of    int
	Endpoint Endpoint
	Job      *Job
	Scenario *Scenario
	// Repeat is 0-based; Repeats is the suite's count.
	Repeat, Repeats int
}

// String is the run as progress lines show it: "[3/12] smb rand-read-4k repeat 2/3", with
// the scenario when it is not the host.
func (r Run) String() string {
	s := "[" + strconv.Itoa(r.N) + "/" + strconv.Itoa(r.Of) + "] " + r.Endpoint.Name + " " + r.Job.Name
	if !r.Scenario.Host() {
		s += " [" + r.Scenario.Name() + "]"
	}
	if r.Repeats > 1 {
		s += fmt.Sprintf(" repeat %d/%d", r.Repeat+1, r.Repeats)
	}
	return s
}

// Plan expands the matrix over the given endpoints. Repeats are the outer loop and targets
// the inner one, so the targets of a comparison run close together in time and a drift
// (a NAS warming up, a neighbour's backup) spreads over all of them instead of one.
func (s *Suite) Plan(endpoints []Endpoint) []Run {
	var out []Run
	for rep := 0; rep < s.Repeats; rep++ {
		for _, sc := range s.Scenarios {
			for _, w := range s.Workloads {
				for _, j := range w.Jobs {
					for _, e := range endpoints {
						out = append(out, Run{Endpoint: e, Job: j, Scenario: sc, Repeat: rep, Repeats: s.Repeats})
					}
				}
			}
		}
	}
	for i := range out {
		out[i].N, out[i].Of = i+1, len(out)
	}
	return out
}

// DeclaredEndpoints are the targets as the file names them, for a plan made without
// resolving anything: testbed targets keep their testbed:NAME URL, and `testbed: true` is
// one placeholder endpoint "testbed:*".
func (s *Suite) DeclaredEndpoints() []Endpoint {
	var out []Endpoint
	if s.Testbed {
		out = append(out, Endpoint{Name: "testbed:*", URL: "every endpoint of the running testbed", AllowDestructive: s.AllowDestructive})
	}
	for _, t := range s.Targets {
		out = append(out, Endpoint{Name: t.Name, URL: t.URL, Target: t, AllowDestructive: t.AllowDestructive})
	}
	return out
}

// Problem is something that keeps a valid suite from running now: a target's secret is
// not available, the baseline is missing. 'suite check' shows problems as warnings (the
// file may be checked where the secrets are not); 'suite run' stops on them before running
// anything, except that it leaves out an optional target instead.
type Problem struct {
	File string
	Line int
	// Target is the target concerned; nil for the baseline.
	Target *Target
	Msg    string
}

// Problems finds what keeps the suite from running now, without touching any storage.
// Testbed endpoints are not checked here: the command resolves them.
func (s *Suite) Problems(lookupEnv func(string) (string, bool)) []Problem {
	var out []Problem
	for _, t := range s.Targets {
		if why := t.Unavailable(lookupEnv); why != "" {
			out = append(out, Problem{File: s.File, Line: t.Line, Target: t, Msg: fmt.Sprintf("target %q: %s", t.Name, why)})
		}
	}
	if s.Baseline != "" {
		if fi, err := os.Stat(s.Baseline); err != nil || !fi.IsDir() {
			msg := fmt.Sprintf("baseline %s: not a directory of result documents", s.Baseline)
			if err != nil {
				msg = fmt.Sprintf("baseline: %v", err)
			}
			out = append(out, Problem{File: s.File, Line: s.BaselineLine, Msg: msg})
		}
	}
	return out
}

// String is the problem as "file:line: message".
func (p Problem) String() string { return (&Error{File: p.File, Line: p.Line, Msg: p.Msg}).Error() }
