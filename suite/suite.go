// Package suite reads a benchmark suite file (YAML) and plans it: which targets, which
// workloads, which scenarios (on the host, or inside a live-migrating VM), how many repeats,
// and what to compare the results with. It validates everything the file says before
// anything runs, with errors that name the file, line and key, and expands the matrix into
// runs. Running them is the command's job: this package does no I/O against storage.
//
// A suite file:
//
//	name: nfs-vs-smb
//	repeats: 3
//	targets:
//	  - testbed:nfs-ganesha
//	  - name: nas-smb
//	    url: smb://bench@nas.lab/vms/bench.img?sign=required
//	    secret_env: NAS_SMB_PASSWORD
//	workloads:
//	  - rand-read-4k
//	  - {profile: oltp, runtime: 30s}
//	  - job_file: jobs/mixed.fio
//	scenarios:
//	  - host
//	  - {mode: precopy, security: tls, link: wan}
//	baseline: baselines/nfs-vs-smb
//	thresholds: iops<-10%, p99>+20%
package suite

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/bench"
	"github.com/vmstorbench/vmstorbench/results"
)

// Suite is a parsed and validated suite file.
type Suite struct {
	// File is the path the suite was read from, as given (for messages); Dir is the
	// directory relative paths in it (job files, secret files, the baseline) resolve against.
	File string
	Dir  string
	// Name names the suite in results (label "suite") and in the default output directory;
	// it defaults to the file name without its extension.
	Name        string
	Description string
	// Repeats is how many times the whole matrix runs (default 1); reports show medians.
	Repeats int
	// Interval is the time-series interval of host runs (default 1 s).
	Interval time.Duration
	// Submission is the engine's submission mode of host runs (bench.Config.Submission:
	// auto, queue or goroutines; "" is auto).
	Submission string
	// Labels are stored in every result.
	Labels map[string]string
	// Testbed adds every endpoint of the running testbed as a target.
	Testbed bool
	// AllowDestructive is the default of the targets' allow_destructive (testbed endpoints
	// included): writing to LUNs, devices and files the tool did not create.
	AllowDestructive bool
	Targets          []*Target
	Workloads        []*Workload
	// Scenarios are how each workload runs: on the host (the default) and/or inside a VM
	// that is live-migrated.
	Scenarios []*Scenario
	// Baseline is a directory of result documents to compare the results with ("" none), and
	// Thresholds the changes that count as a regression (ThresholdsText as written).
	Baseline       string
	BaselineLine   int
	Thresholds     []results.Threshold
	ThresholdsText string
}

// Load reads and validates the suite file at path. Backend URLs are checked against reg
// (nil: backends.Default): the backend must exist and know every URL option.
func Load(path string, reg *backends.Registry) (*Suite, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("suite: %w", err)
	}
	return Parse(path, data, reg)
}

// Parse validates a suite held in data; file names it in errors and locates the files it
// refers to. Every problem is reported at once, as Errors.
func Parse(file string, data []byte, reg *backends.Registry) (*Suite, error) {
	if reg == nil {
		reg = backends.Default
	}
	d := &decoder{file: file}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, Errors{{File: file, Msg: "empty suite file"}}
		}
		return nil, Errors{syntaxError(file, err)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, Errors{{File: file, Line: extra.Line, Msg: "a second YAML document: one suite per file"}}
	} else if !errors.Is(err, io.EOF) {
		return nil, Errors{syntaxError(file, err)}
	}
	s := &Suite{File: file, Dir: filepath.Dir(file), Repeats: 1, Interval: time.Second}
	root := doc.Content[0]
	d.suite(s, root)
	if err := d.err(); err != nil {
		return nil, err
	}
	s.check(d, reg)
	if err := d.err(); err != nil {
		return nil, err
	}
	return s, nil
}

var suiteKeys = []string{"name", "description", "repeats", "interval", "submission", "labels", "testbed",
	"allow_destructive", "targets", "workloads", "scenarios", "baseline", "thresholds"}

// safeSuiteName is what a suite name may hold: it becomes part of a directory name.
var safeSuiteName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

func (d *decoder) suite(s *Suite, root *yaml.Node) {
	var targets, work, scenarios []*yaml.Node
	targetsLine, workLine := 0, 0
	if resolve(root).Kind != yaml.MappingNode {
		d.fields(root, "suite") // reports it; nothing else can be read
		return
	}
	for _, f := range d.fields(root, "suite") {
		switch f.key {
		case "name":
			s.Name = d.str(f)
			if s.Name != "" && !safeSuiteName.MatchString(s.Name) {
				d.errorf(f.line, "name %q: use letters, digits, '.', '_' and '-' (it names the output directory)", s.Name)
			}
		case "description":
			s.Description = d.str(f)
		case "repeats":
			s.Repeats = d.integer(f, 1, 1000)
		case "interval":
			if s.Interval = d.duration(f); s.Interval != 0 && s.Interval < time.Millisecond {
				d.errorf(f.line, "interval %s: must be at least 1ms", s.Interval)
			}
		case "submission":
			s.Submission = d.str(f)
			if err := bench.CheckSubmission(s.Submission); err != nil {
				d.errorf(f.line, "%v", err)
			}
		case "labels":
			s.Labels = d.stringMap(f)
		case "testbed":
			s.Testbed = d.boolean(f)
		case "allow_destructive":
			s.AllowDestructive = d.boolean(f)
		case "targets":
			targets, targetsLine = d.list(f), f.line
		case "workloads":
			work, workLine = d.list(f), f.line
		case "scenarios":
			scenarios = d.list(f)
		case "baseline":
			if b := d.str(f); b != "" {
				s.Baseline, s.BaselineLine = s.path(b), f.line
			}
		case "thresholds":
			var terms []string
			for _, n := range d.list(f) {
				if v, ok := d.scalar(field{key: f.key, line: n.Line, val: n}); ok {
					terms = append(terms, v)
				}
			}
			s.ThresholdsText = strings.Join(terms, ",")
			var err error
			if s.Thresholds, err = results.ParseThresholds(s.ThresholdsText); err != nil {
				d.errorf(f.line, "thresholds: %v", err)
			}
		default:
			d.unknown(f, "suite", suiteKeys)
		}
	}
	if s.Name == "" {
		base := filepath.Base(s.File)
		s.Name = safeName(strings.TrimSuffix(base, filepath.Ext(base)))
	}
	if len(targets) == 0 && !s.Testbed {
		d.errorf(targetsLine, "no targets: list them under targets: (or set testbed: true)")
	}
	for _, n := range targets {
		if t := d.target(n); t != nil {
			s.Targets = append(s.Targets, t)
		}
	}
	if len(work) == 0 {
		d.errorf(workLine, "no workloads: list them under workloads: (a profile name, fio options or job_file:)")
	}
	for _, n := range work {
		if w := d.workload(s, n); w != nil {
			s.Workloads = append(s.Workloads, w)
		}
	}
	for _, n := range scenarios {
		if sc := d.scenario(n); sc != nil {
			s.Scenarios = append(s.Scenarios, sc)
		}
	}
	if len(s.Scenarios) == 0 {
		s.Scenarios = []*Scenario{{Mode: ModeHost, Line: root.Line}}
	}
}

// path resolves p against the suite file's directory (absolute paths stay as they are).
func (s *Suite) path(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(s.Dir, p)
}

// check validates what needs the whole suite: unique names and cases, targets against the
// backend registry.
func (s *Suite) check(d *decoder, reg *backends.Registry) {
	names := map[string]int{}
	for _, t := range s.Targets {
		if first, dup := names[t.Name]; dup {
			d.errorf(t.Line, "target %q is listed twice (first on line %d); give each a different name:", t.Name, first)
		}
		names[t.Name] = t.Line
		if !t.allowGiven {
			t.AllowDestructive = s.AllowDestructive
		}
		if _, isTestbed := t.TestbedName(); !isTestbed {
			t.checkBackend(d, reg)
		}
	}
	s.checkWorkloadNames(d)
	s.checkScenarioCases(d)
	s.checkLibvirtTargets(d)
	s.checkSize(d)
}

// maxRuns bounds the matrix: at a second per run (runs take longer) it is more than a day.
// Without a bound a short file could ask Plan for billions of runs: 1000 repeats of a few
// hundred targets, jobs and scenarios each.
const maxRuns = 100_000

// checkSize refuses a matrix larger than maxRuns (testbed: true counts as one target).
func (s *Suite) checkSize(d *decoder) {
	jobs := 0
	for _, w := range s.Workloads {
		jobs += len(w.Jobs)
	}
	targets := len(s.Targets)
	if s.Testbed {
		targets++
	}
	n := 1
	for _, k := range []int{s.Repeats, len(s.Scenarios), jobs, targets} {
		if k > 0 && n > maxRuns/k {
			n = maxRuns + 1
			break
		}
		n *= k
	}
	if n > maxRuns {
		d.errorf(0, "the suite would run more than %d times (repeats %d x scenarios %d x jobs %d x targets %d): split it", maxRuns,
			s.Repeats, len(s.Scenarios), jobs, targets)
	}
}

// safeName keeps letters, digits, '.', '_' and '-', so a name can be part of a file name.
func safeName(s string) string {
	out := strings.Map(func(c rune) rune {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
			return c
		}
		return '_'
	}, s)
	if out == "" || !safeSuiteName.MatchString(out) {
		out = "suite" + out
	}
	return out
}
