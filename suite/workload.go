package suite

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/vmstorbench/vmstorbench/internal/suggest"
	"github.com/vmstorbench/vmstorbench/workloads"
)

// Workload is one entry of the suite's workloads: a profile, fio options, a fio job file, or
// a profile or job file with fio options on top. It resolves to one Job, or one per job
// section of a job file.
type Workload struct {
	Line    int
	Name    string // as given ("" when not)
	Profile string
	// JobFile is the job file's path, resolved against the suite's directory.
	JobFile string
	// Options are the fio options the suite gives, "key=value" (or a bare flag), in order;
	// they apply on top of the profile or of each job section.
	Options []string
	Jobs    []*Job
}

// Job is one workload as it runs.
type Job struct {
	// Name is unique in the suite: the workload's name, the profile's, the job section's.
	Name string
	// Workload has Defaults filled in and has passed Validate; its Name is Name.
	Workload workloads.Workload
	// SizeGiven is false when no size was given: the run then sizes the region to the target
	// (as 'vmstorbench run' does), and a VM works on its whole disk.
	SizeGiven bool
	// Profile is the profile it is based on ("" for none), recorded in the results.
	Profile string
	// Notes say where vmstorbench differs from fio for this job.
	Notes []string
	Line  int
}

// fioOpt is one fio option from the suite, with its line for errors.
type fioOpt struct {
	key, kv string
	line    int
}

var workloadKeys = []string{"name", "profile", "fio", "job_file"}

// fioOptionError is nil when the workloads package takes key as a fio option, else its
// reason: applied bare, an option it does not take fails with "unsupported fio option ..."
// and why (refused, an engine's option, or a did-you-mean); a known one succeeds or fails
// for want of a value or of other options.
func fioOptionError(key string) error {
	_, _, err := workloads.ApplyOptions(workloads.Workload{}, []string{key})
	if err != nil && strings.HasPrefix(err.Error(), "unsupported fio option") {
		return err
	}
	return nil
}

func (d *decoder) workload(s *Suite, n *yaml.Node) *Workload {
	n = resolve(n)
	w := &Workload{Line: n.Line}
	before := len(d.errs)
	var opts []fioOpt
	if n.Kind == yaml.ScalarNode && n.Tag != "!!null" {
		// A bare entry is a profile name, or fio options in one string.
		if strings.Contains(n.Value, "=") {
			opts = d.fioString(field{key: "workload", line: n.Line, val: n})
		} else {
			w.Profile = n.Value
		}
	} else {
		for _, f := range d.fields(n, "workload") {
			switch f.key {
			case "name":
				w.Name = d.str(f)
			case "profile":
				w.Profile = d.str(f)
			case "job_file":
				if p := d.str(f); p != "" {
					w.JobFile = s.path(p)
				}
			case "fio":
				if v := resolve(f.val); v.Kind == yaml.MappingNode {
					opts = append(opts, d.fioMap(f.val, "workload fio options")...)
				} else {
					opts = append(opts, d.fioString(f)...)
				}
			case "filename":
				d.errorf(f.line, "workload: filename: the suite's targets say where the workload runs; drop filename")
			default:
				if err := fioOptionError(f.key); err != nil {
					d.unknownWorkloadKey(f, err)
					continue
				}
				if o, ok := d.fioValue(f); ok {
					opts = append(opts, o)
				}
			}
		}
	}
	for _, o := range opts {
		w.Options = append(w.Options, o.kv)
	}
	if len(d.errs) > before {
		return nil // resolving would only repeat what is already reported
	}
	if d.resolveJobs(w, opts); len(d.errs) > before {
		return nil
	}
	return w
}

// unknownWorkloadKey reports a workload key that is neither a suite key nor a fio option
// vmstorbench takes; fioErr is the workloads package's reason.
func (d *decoder) unknownWorkloadKey(f field, fioErr error) {
	if !strings.Contains(fioErr.Error(), "(not a fio option") {
		// A real fio option that vmstorbench refuses: its reason says more than a list.
		d.errorf(f.line, "workload: %v", fioErr)
		return
	}
	msg := fmt.Sprintf("unknown key %q in workload", f.key)
	if s := suggest.Nearest(f.key, append(append([]string{}, workloadKeys...), workloads.OptionNames()...)); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	} else {
		msg += " (workload keys: " + strings.Join(workloadKeys, ", ") + ", or a fio option: see README, fio job files)"
	}
	d.errs = append(d.errs, &Error{File: d.file, Line: f.line, Msg: msg})
}

// fioMap reads fio options written as a mapping: "iodepth: 16".
func (d *decoder) fioMap(n *yaml.Node, what string) []fioOpt {
	var out []fioOpt
	for _, f := range d.fields(n, what) {
		if err := fioOptionError(f.key); err != nil {
			d.unknownWorkloadKey(f, err)
			continue
		}
		if f.key == "filename" {
			d.errorf(f.line, "workload: filename: the suite's targets say where the workload runs; drop filename")
			continue
		}
		if o, ok := d.fioValue(f); ok {
			out = append(out, o)
		}
	}
	return out
}

// fioValue turns "key: value" into "key=value": true/false become 1/0, and a key without a
// value is a bare flag ("time_based:").
func (d *decoder) fioValue(f field) (fioOpt, bool) {
	v := resolve(f.val)
	if v.Kind != yaml.ScalarNode {
		d.errorf(f.line, "%s: want a single value, got %s", f.key, kindName(v))
		return fioOpt{}, false
	}
	o := fioOpt{key: f.key, line: f.line}
	switch {
	case v.Tag == "!!null":
		o.kv = f.key
	case v.Tag == "!!bool":
		o.kv = f.key + "=0"
		if strings.EqualFold(v.Value, "true") {
			o.kv = f.key + "=1"
		}
	default:
		o.kv = f.key + "=" + v.Value
	}
	return o, true
}

// fioString reads fio options in one string: "rw=randread bs=4k iodepth=16".
func (d *decoder) fioString(f field) []fioOpt {
	s, ok := d.scalar(f)
	if !ok {
		return nil
	}
	var out []fioOpt
	for _, kv := range strings.Fields(s) {
		key, _, _ := strings.Cut(strings.TrimPrefix(kv, "--"), "=")
		if key == "filename" {
			d.errorf(f.line, "workload: filename: the suite's targets say where the workload runs; drop filename")
			continue
		}
		out = append(out, fioOpt{key: key, kv: kv, line: f.line})
	}
	return out
}

// resolveJobs builds the workload's jobs: the profile's or job file's workloads with the
// suite's fio options applied, as 'vmstorbench run' does with --profile or a job file and
// its flags.
func (d *decoder) resolveJobs(w *Workload, opts []fioOpt) {
	sizeGiven := false
	for _, o := range opts {
		sizeGiven = sizeGiven || o.key == "size"
	}
	switch {
	case w.Profile != "" && w.JobFile != "":
		d.errorf(w.Line, "workload: give profile or job_file, not both")
	case w.JobFile != "":
		f, err := os.Open(w.JobFile)
		if err != nil {
			d.errorf(w.Line, "workload: job_file: %v", err)
			return
		}
		defer f.Close()
		parsed, err := workloads.ParseJobFile(w.JobFile, f)
		if err != nil {
			d.errorf(w.Line, "workload: job_file: %v", err)
			return
		}
		for _, pj := range parsed {
			wl, notes, err := workloads.ApplyOptions(pj.Workload, kvs(opts))
			if err != nil {
				d.optionError(w, opts, fmt.Sprintf("job %q of %s: ", pj.Section, filepath.Base(w.JobFile)), err)
				return
			}
			_, given := pj.Options["size"]
			name := pj.Section
			switch {
			case w.Name != "" && len(parsed) == 1:
				name = w.Name
			case w.Name != "":
				name = w.Name + "/" + pj.Section
			}
			notes = append(pj.Notes, notes...)
			if pj.Workload.Filename != "" {
				notes = append(notes, "filename= is not used: the suite's targets say where the job runs")
			}
			wl.Name, wl.Filename = name, ""
			w.Jobs = append(w.Jobs, &Job{Name: name, Workload: wl, SizeGiven: given || sizeGiven, Notes: notes, Line: w.Line})
		}
	default:
		base := workloads.Workload{}
		if w.Profile != "" {
			var err error
			if base, err = workloads.Profile(w.Profile); err != nil {
				d.errorf(w.Line, "workload: %v", err)
				return
			}
			sizeGiven = true // profiles size their region
		} else if len(opts) == 0 {
			d.errorf(w.Line, "workload: empty: give a profile, fio options or a job_file")
			return
		}
		wl, notes, err := workloads.ApplyOptions(base, kvs(opts))
		if err != nil {
			d.optionError(w, opts, "", err)
			return
		}
		name := w.Name
		if name == "" {
			name = w.Profile
		}
		if name == "" && wl.Name == "" {
			name = wl.RW
		} else if name == "" {
			name = wl.Name
		}
		wl.Name = name
		w.Jobs = []*Job{{Name: name, Workload: wl, SizeGiven: sizeGiven, Profile: w.Profile, Notes: notes, Line: w.Line}}
	}
}

func kvs(opts []fioOpt) []string {
	out := make([]string, len(opts))
	for i, o := range opts {
		out[i] = o.kv
	}
	return out
}

// optionError reports a fio option error on the line of the option it names, or on the
// workload's line when it is about the options together (bs larger than size, say).
func (d *decoder) optionError(w *Workload, opts []fioOpt, prefix string, err error) {
	msg := err.Error()
	line := w.Line
	for _, o := range opts {
		if strings.HasPrefix(msg, fmt.Sprintf("unsupported fio option %q", o.key)) ||
			strings.HasPrefix(msg, fmt.Sprintf("fio option %q", o.key)) ||
			strings.HasPrefix(msg, o.key+"=") {
			line = o.line
			break
		}
	}
	what := "workload"
	if w.Name != "" {
		what = fmt.Sprintf("workload %q", w.Name)
	} else if w.Profile != "" {
		what = fmt.Sprintf("workload %q", w.Profile)
	}
	d.errorf(line, "%s: %s%s", what, prefix, msg)
}

// checkWorkloadNames makes job names unique and refuses two jobs that measure the same
// thing: reports group runs by what was measured and would merge them.
func (s *Suite) checkWorkloadNames(d *decoder) {
	names := map[string]*Job{}
	same := map[string]*Job{}
	for _, w := range s.Workloads {
		for _, j := range w.Jobs {
			if first, dup := names[j.Name]; dup {
				d.errorf(j.Line, "workload name %q is used twice (first on line %d); give each a name:", j.Name, first.Line)
				continue
			}
			names[j.Name] = j
			k := caseKey(j)
			if first, dup := same[k]; dup {
				d.errorf(j.Line, "workload %q measures the same as %q (line %d): reports would merge their results; change or drop one", j.Name, first.Name, first.Line)
				continue
			}
			same[k] = j
		}
	}
}

// caseKey is what results.KeyOf compares of a workload: everything but its name and file,
// with the size the run will use.
func caseKey(j *Job) string {
	w := j.Workload
	w.Name, w.Filename = "", ""
	if !j.SizeGiven {
		w.Size = 0
	}
	b, _ := json.Marshal(w)
	return string(b)
}
