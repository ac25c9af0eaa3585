package runner

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/vmstorbench/vmstorbench/workloads"
)

// Job is one planned workload: to run against every target, or against its own Target (a
// job file's filename= when no target was given).
type Job struct {
	Workload  workloads.Workload
	SizeGiven bool
	Target    string
	// FromFile marks a job file's job: the file's jobs run as a set (bench/jobset), with
	// the group semantics of its stonewall, new_group and group_reporting.
	FromFile                            bool
	Stonewall, NewGroup, GroupReporting bool
	Global                              []string // options the file's [global] set
}

// JobPlan says what to plan: a job file, or one workload from a profile; Options
// ("name=value", fio's names) apply on top in both cases.
type JobPlan struct {
	JobFile     string
	Profile     string
	Options     []string
	HaveTargets bool
}

// PlanJobs builds the jobs of p. The notes (options ignored or adjusted, one line each) are
// returned with the jobs, and with an error too: those of the jobs planned before it.
func PlanJobs(p JobPlan) ([]Job, []string, error) {
	sizeGiven := HasOption(p.Options, "size")
	if p.JobFile != "" {
		return planJobFile(p, sizeGiven)
	}
	if !p.HaveTargets {
		return nil, nil, errors.New("no target: give --target URL (see 'vmstorbench backends'), e.g. --target file:///var/tmp")
	}
	base := workloads.Workload{}
	var err error
	if p.Profile != "" {
		if base, err = workloads.Profile(p.Profile); err != nil {
			return nil, nil, err
		}
		sizeGiven = true // profiles size their region
	}
	w, notes, err := workloads.ApplyOptions(base, p.Options)
	if err != nil {
		return nil, nil, err
	}
	if w.Name == "" {
		w.Name = p.Profile
		if w.Name == "" {
			w.Name = w.RW
		}
	}
	return []Job{{Workload: w, SizeGiven: sizeGiven}}, notes, nil
}

func planJobFile(p JobPlan, sizeGiven bool) ([]Job, []string, error) {
	path := p.JobFile
	if p.Profile != "" {
		return nil, nil, errors.New("give either a job file or --profile, not both")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("job file: %w", err)
	}
	defer f.Close()
	parsed, err := workloads.ParseJobFile(path, f)
	if err != nil {
		return nil, nil, err
	}
	if len(parsed) == 0 {
		return nil, nil, fmt.Errorf("%s: no job sections", path)
	}
	var out []Job
	var allNotes []string
	for _, pj := range parsed {
		w, notes, err := workloads.ApplyOptions(pj.Workload, p.Options)
		if err != nil {
			return nil, allNotes, fmt.Errorf("%s: job %q: %w", path, pj.Section, err)
		}
		_, given := pj.Options["size"]
		j := Job{Workload: w, SizeGiven: given || sizeGiven, FromFile: true,
			Stonewall: pj.Stonewall, NewGroup: pj.NewGroup, GroupReporting: pj.GroupReporting, Global: pj.Global}
		if p.HaveTargets {
			if n := pj.TargetNote(); n != "" {
				notes = append(notes, n)
			}
		} else {
			// filename= (or directory=) is the target: a local path, never a host:port or
			// an engine's name created as a local file; or, for fio's libiscsi, nbd and
			// nfs engines, the URL the engine connects to, for the backend of its protocol.
			var note string
			if j.Target, note, err = pj.FileTarget(); err != nil {
				return nil, allNotes, fmt.Errorf("%s:%d: job %q: %w", path, pj.Line, pj.Section, err)
			}
			if note != "" {
				notes = append(notes, note)
			}
			if j.Target == "" {
				return nil, allNotes, fmt.Errorf("%s: job %q has no filename= or directory= and no --target was given", path, pj.Section)
			}
		}
		for _, n := range append(pj.Notes, notes...) {
			allNotes = append(allNotes, pj.Section+": "+n)
		}
		out = append(out, j)
	}
	return out, allNotes, nil
}

// MigrationWorkload is the workload a migration run's guest runs: the profile with options
// on top; the guest works on its whole disk unless size= is given.
func MigrationWorkload(profile string, options []string) (workloads.Workload, []string, error) {
	base, err := workloads.Profile(profile)
	if err != nil {
		return base, nil, err
	}
	if !HasOption(options, "size") {
		base.Size = 0
	}
	w, notes, err := workloads.ApplyOptions(base, options)
	if err != nil {
		return w, nil, err
	}
	if w.Name == "" {
		w.Name = profile
	}
	return w, notes, nil
}

// HasOption reports whether options ("name=value", optionally with "--") set name.
func HasOption(options []string, name string) bool {
	for _, s := range options {
		k, _, _ := strings.Cut(strings.TrimPrefix(s, "--"), "=")
		if k == name {
			return true
		}
	}
	return false
}
