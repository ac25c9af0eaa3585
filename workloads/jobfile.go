package workloads

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vmstorbench/vmstorbench/workloads/units"
)

// Job is one job section of a fio job file.
type Job struct {
	// Workload is the [global] options in force at the section, then the section's own,
	// with Defaults filled in. It has passed Validate.
	Workload Workload
	// Section is the name in the [section] header, Line the header's line number.
	Section string
	Line    int
	// Options are the fio options that shaped the job, globals included, by canonical name
	// (readwrite= is recorded as rw), with values as given after ${VAR} expansion ("" for a
	// flag given without a value). They tell a given option from a default: fio runs a job
	// without size= over the whole file.
	Options map[string]string
	// Notes say where vmstorbench does not do what fio would do for this job.
	Notes []string
	// Stonewall (fio stonewall, wait_for_previous) makes the job wait for every job before it
	// to finish and starts a new reporting group; NewGroup (fio new_group) starts a new
	// reporting group without waiting. Jobs between stonewalls run concurrently.
	Stonewall bool
	NewGroup  bool
	// GroupReporting (fio group_reporting) reports the job's group as one entry, its jobs
	// (numjobs clones included) summed.
	GroupReporting bool
	// Global names the options (canonical names, sorted) that the [global] sections before
	// the job set, so that fio-json can show them as fio shows its "global options".
	Global []string
}

// ParseJobFile parses a fio job file. name is used in errors ("job.fio:12: ...").
//
// It follows fio's INI format: [global] sections set options for the job sections after
// them, every other section is a job named after it, ';' and '#' start comment lines, an
// option is "key=value" or a bare flag ("time_based"), and ${VAR} in a value is replaced
// by the environment variable (empty when unset). Unlike fio, which misreads them, a ';' or
// '#' after whitespace in a value also starts a comment. Every option is checked: an
// unknown or unsupported one, or a value fio refuses, is an error, never ignored or
// replaced; the error reports every such problem of the file, one a line, each with its
// file:line. Options that change no I/O (reporting, logs, CPU placement) are accepted with a
// note. Jobs come back in file order.
func ParseJobFile(name string, r io.Reader) ([]Job, error) {
	return parseJobFile(name, r, os.LookupEnv)
}

// ParseJobString is ParseJobFile for a job file held in a string.
func ParseJobString(name, text string) ([]Job, error) {
	return ParseJobFile(name, strings.NewReader(text))
}

// ParseOptions builds one workload from fio command-line style options: "rw=randread",
// "--bs=4k", "time_based". It takes the same options as ParseJobFile (without ${VAR}
// expansion, which is the shell's job here). The result has Defaults filled in and has
// passed Validate.
func ParseOptions(kv []string) (Workload, error) {
	w, _, err := ApplyOptions(Workload{}, kv)
	return w, err
}

// ApplyOptions applies fio options to base (e.g. a profile), fills in Defaults and
// validates the result. The notes say where vmstorbench differs from fio.
func ApplyOptions(base Workload, kv []string) (Workload, []string, error) {
	s := newScope()
	s.w = base
	settings := make([]setting, len(kv))
	for i, arg := range kv {
		key, value, hasValue := strings.Cut(strings.TrimPrefix(arg, "--"), "=")
		settings[i] = setting{key: key, value: value, raw: value, hasValue: hasValue}
	}
	if errs := s.apply(settings); len(errs) > 0 {
		return Workload{}, nil, joinErrors(errs)
	}
	if s.stonewall || s.newGroup || s.groupReporting {
		s.note("stonewall, wait_for_previous, new_group and group_reporting only shape the jobs of a job file")
	}
	if err := s.finish(); err != nil {
		return Workload{}, nil, err
	}
	w := s.w.Defaults()
	if err := w.Validate(); err != nil {
		return Workload{}, nil, err
	}
	return w, s.notes, nil
}

// setting is one option as written: key=value or a bare key.
type setting struct {
	key, value string
	hasValue   bool
	raw        string // value before ${VAR} expansion
	where      string // "job.fio:12" in a job file, "" on a command line
}

func (st setting) errorf(format string, args ...any) error {
	if st.where == "" {
		return fmt.Errorf(format, args...)
	}
	return fmt.Errorf("%s: "+format, append([]any{st.where}, args...)...)
}

// section is a [name] header and the settings below it.
type section struct {
	name     string
	line     int
	settings []setting
}

func parseJobFile(name string, r io.Reader, lookup func(string) (string, bool)) ([]Job, error) {
	sections, err := readSections(name, r, lookup)
	if err != nil {
		return nil, err
	}
	global := newScope()
	var jobs []Job
	var errs []error
	for _, sec := range sections {
		if sec.name == "global" {
			// A later [global] adds to the options in force for the jobs after it.
			errs = append(errs, global.apply(sec.settings)...)
			continue
		}
		s := global.clone()
		// fio ignores name= in [global]; the job's own name= wins over the section name.
		s.w.Name = sec.name
		delete(s.options, "name")
		if e := s.apply(sec.settings); len(e) > 0 {
			errs = append(errs, e...)
			continue
		}
		if err := s.finish(); err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: [%s]: %w", name, sec.line, sec.name, err))
			continue
		}
		if s.w.TimeBased && s.w.Runtime == 0 {
			// fio: "time_based requires a runtime/timeout setting", and runs the job as if
			// time_based were not given.
			s.w.TimeBased = false
			s.note("time_based without runtime is ignored, as fio ignores it")
		}
		w := s.w.Defaults()
		if err := w.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: [%s]: %w", name, sec.line, sec.name, err))
			continue
		}
		jobs = append(jobs, Job{Workload: w, Section: sec.name, Line: sec.line, Options: s.options, Notes: s.notes,
			Global:    slices.Sorted(maps.Keys(global.options)),
			Stonewall: s.stonewall, NewGroup: s.newGroup, GroupReporting: s.groupReporting})
	}
	if len(errs) > 0 {
		return nil, joinErrors(errs)
	}
	if len(jobs) == 0 {
		return nil, fmt.Errorf("%s: no job sections", name)
	}
	return jobs, nil
}

// joinErrors is one error of every problem found, one a line, each naming its place; an
// option of [global] that fails is reported once, not for every job.
func joinErrors(errs []error) error {
	var uniq []error
	seen := map[string]bool{}
	for _, e := range errs {
		if !seen[e.Error()] {
			seen[e.Error()] = true
			uniq = append(uniq, e)
		}
	}
	if len(uniq) == 1 {
		return uniq[0]
	}
	return errors.Join(uniq...)
}

// readSections splits a job file into sections of settings, expanding ${VAR} in values.
func readSections(name string, r io.Reader, lookup func(string) (string, bool)) ([]section, error) {
	var sections []section
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		where := fmt.Sprintf("%s:%d", name, n)
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == ';' || line[0] == '#':
			continue
		case line[0] == '[':
			if len(line) < 3 || line[len(line)-1] != ']' {
				return nil, fmt.Errorf("%s: malformed section header %q", where, line)
			}
			sections = append(sections, section{name: line[1 : len(line)-1], line: n})
			continue
		case line == "include" || strings.HasPrefix(line, "include "):
			return nil, fmt.Errorf("%s: include directives are not supported: put the included options into this file", where)
		}
		key, value, hasValue := strings.Cut(line, "=")
		key = strings.TrimSpace(key)
		if key == "" {
			return nil, fmt.Errorf("%s: missing option name in %q", where, line)
		}
		if len(sections) == 0 {
			return nil, fmt.Errorf("%s: option %q outside of a [section]", where, key)
		}
		raw := strings.TrimSpace(stripComment(value))
		st := setting{key: key, value: expandEnv(raw, lookup), raw: raw, hasValue: hasValue, where: where}
		last := &sections[len(sections)-1]
		last.settings = append(last.settings, st)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s:%d: %w", name, n+1, err)
	}
	return sections, nil
}

// stripComment cuts a value at a ';' or '#' that follows whitespace.
func stripComment(v string) string {
	for i := 1; i < len(v); i++ {
		if (v[i] == ';' || v[i] == '#') && (v[i-1] == ' ' || v[i-1] == '\t') {
			return v[:i]
		}
	}
	return v
}

// expandEnv replaces fio's ${VAR} with the variable's value, "" when unset (as fio does).
// Expanded text is not expanded again.
func expandEnv(s string, lookup func(string) (string, bool)) string {
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			break
		}
		j := strings.IndexByte(s[i+2:], '}')
		if j < 0 {
			break
		}
		v, _ := lookup(s[i+2 : i+2+j])
		b.WriteString(s[:i])
		b.WriteString(v)
		s = s[i+2+j+1:]
	}
	b.WriteString(s)
	return b.String()
}

// scope is what options are applied to: the [global] state, or one job.
type scope struct {
	w       Workload
	kbBase  int
	options map[string]string
	notes   []string
	// Job-file grouping (fio stonewall, new_group, group_reporting).
	stonewall, newGroup, groupReporting bool
	// mixAllWrites records rwmixread=0 (or rwmixwrite=100): a mixed pattern that only
	// writes, which the model, where RWMixRead 0 means fio's default 50, cannot hold.
	mixAllWrites bool
	// noVerifyPass is do_verify=0.
	noVerifyPass bool
	// bsGiven is the bs= or bsrange= set by the settings being applied, for the note that
	// bssplit takes precedence.
	bsGiven string
}

func newScope() *scope { return &scope{kbBase: 1024, options: map[string]string{}} }

func (s *scope) clone() *scope {
	c := *s
	c.options = maps.Clone(s.options)
	c.notes = slices.Clone(s.notes)
	return &c
}

func (s *scope) note(format string, args ...any) {
	n := fmt.Sprintf(format, args...)
	if !slices.Contains(s.notes, n) {
		s.notes = append(s.notes, n)
	}
}

// apply applies settings in fio's order: kb_base first, whatever its position (fio parses
// it before the other options so that it governs every size in its section), then the
// others as written. Every setting is tried: the errors of all that fail come back.
func (s *scope) apply(settings []setting) []error {
	var errs []error
	s.bsGiven = ""
	for _, first := range []bool{true, false} {
		for _, st := range settings {
			if (st.key == "kb_base") != first {
				continue
			}
			if err := s.set(st); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errs
}

func (s *scope) set(st setting) error {
	opt := lookupOption(st.key)
	if opt == nil {
		return st.errorf("%s", unsupportedOption(st.key))
	}
	value := st.value
	if !st.hasValue {
		if !opt.flag {
			return st.errorf("fio option %q needs a value", st.key)
		}
		value = "1"
	}
	if err := opt.set(s, value); err != nil {
		raw, value := redactPassword(st.raw), redactPassword(st.value)
		if raw != value {
			return st.errorf("%s=%q (expanded to %q): %w", st.key, raw, value, err)
		}
		return st.errorf("%s=%q: %w", st.key, value, err)
	}
	s.options[opt.names[0]] = st.value
	if opt.names[0] == "size" && s.w.Size == 0 {
		delete(s.options, "size") // size=0 is fio's default: the whole file
	}
	return nil
}

// finish settles what depends on several options, once a job's (or a command line's)
// options are all applied.
func (s *scope) finish() error {
	for d := Read; d <= Write; d++ {
		if sp := s.w.BSSplit[d]; len(sp) > 0 {
			s.w.BS[d] = splitRange(sp)
			if s.bsGiven != "" {
				s.note("%s: bssplit takes precedence over it, as in fio", s.bsGiven)
			}
		}
	}
	if s.mixAllWrites && s.w.IsMixed() && s.w.RWMixRead == 0 {
		if s.w.RW == RandMixed {
			s.w.RW = RandWrite
		} else {
			s.w.RW = SeqWrite
		}
		s.note("rwmixread=0: runs as rw=%s (all writes)", s.w.RW)
	}
	if _, given := s.options["verify"]; !given && len(s.w.VerifyPattern) > 0 && s.w.Verify == "" {
		s.w.Verify = "pattern" // fio: verify_pattern without verify= means verify=pattern
	}
	if err := checkEngineOptions(s.options, s.w.Filename); err != nil {
		return err
	}
	if s.noVerifyPass && s.w.Verify != "" {
		return errors.New("do_verify=0: vmstorbench always reads the written blocks back to verify them; drop verify= to write without checking")
	}
	if s.w.RandSeed == 0 {
		if _, given := s.options["randseed"]; given {
			s.note("randseed=0 runs as randseed=%d (vmstorbench's default seed; any fixed seed repeats its offsets)", DefaultRandSeed)
		}
	}
	return nil
}

// option is one supported fio option: the single table both job files and command-line
// options go through.
type option struct {
	names []string // canonical name first, then fio's aliases
	flag  bool     // may be given without a value, meaning 1 (fio's "set" options)
	set   func(s *scope, v string) error
}

func lookupOption(name string) *option {
	for i := range options {
		if slices.Contains(options[i].names, name) {
			return &options[i]
		}
	}
	return nil
}

// options is read-only after initialisation: the options that shape the I/O, then those
// accepted without changing it (quietOptions).
var options = slices.Concat(ioOptions, quietOptions)

var ioOptions = []option{
	{names: []string{"rw", "readwrite"}, set: func(s *scope, v string) (err error) {
		s.w.RW, s.w.RWModifier, err = s.parseRW(v)
		return err
	}},
	{names: []string{"rw_sequencer"}, set: func(s *scope, v string) error {
		switch v {
		case "sequential":
			s.w.RWSequencer = "" // the default
		case "identical":
			s.w.RWSequencer = v
		default:
			return errors.New("must be sequential or identical")
		}
		return nil
	}},
	{names: []string{"rwmixread"}, set: func(s *scope, v string) (err error) {
		s.w.RWMixRead, err = s.percent(v)
		s.mixAllWrites = err == nil && s.w.RWMixRead == 0
		return err
	}},
	{names: []string{"rwmixwrite"}, set: func(s *scope, v string) error {
		p, err := s.percent(v)
		s.w.RWMixRead = 100 - p
		s.mixAllWrites = err == nil && p == 100
		return err
	}},
	{names: []string{"bs", "blocksize"}, set: func(s *scope, v string) error {
		s.bsGiven = "bs=" + v
		return perDirection(v, func(d Direction, p string) error {
			n, err := s.positive(p)
			s.w.BS[d] = Fixed(n)
			return err
		})
	}},
	{names: []string{"bsrange", "blocksize_range"}, set: func(s *scope, v string) error {
		s.bsGiven = "bsrange=" + v
		return perDirection(v, func(d Direction, p string) (err error) {
			s.w.BS[d], err = s.blockRange(p)
			if err == nil && b0(s.w.BS[d]) {
				err = errors.New("block sizes must be positive")
			}
			return err
		})
	}},
	{names: []string{"bssplit"}, set: func(s *scope, v string) error {
		return perDirection(v, func(d Direction, p string) (err error) {
			s.w.BSSplit[d], err = s.parseBSSplit(p)
			return err
		})
	}},
	{names: []string{"blockalign", "ba"}, set: func(s *scope, v string) error {
		return perDirection(v, func(d Direction, p string) (err error) {
			s.w.BlockAlign[d], err = s.positive(p)
			return err
		})
	}},
	{names: []string{"random_distribution"}, set: func(s *scope, v string) (err error) {
		s.w.RandomDist, err = s.parseDistribution(v, s.w.RandomDist)
		return err
	}},
	{names: []string{"size"}, set: func(s *scope, v string) (err error) {
		s.w.Size, err = s.bytes(v)
		return err
	}},
	{names: []string{"offset"}, set: func(s *scope, v string) (err error) {
		s.w.Offset, err = s.bytes(v)
		return err
	}},
	{names: []string{"io_size", "io_limit"}, set: func(s *scope, v string) (err error) {
		s.w.IOSize, err = s.bytes(v)
		return err
	}},
	{names: []string{"filesize"}, set: func(s *scope, v string) (err error) {
		s.w.FileSize, err = s.sizeOrRange(v)
		if err == nil && b0(s.w.FileSize) {
			err = errors.New("must be positive (fio: min value 1)")
		}
		return err
	}},
	{names: []string{"nrfiles", "nr_files"}, set: func(s *scope, v string) (err error) {
		s.w.NrFiles, err = s.int(v)
		if err == nil && s.w.NrFiles == 0 {
			err = errors.New("must be at least 1 (fio does no I/O with nrfiles=0)")
		}
		return err
	}},
	{names: []string{"directory"}, set: func(s *scope, v string) (err error) {
		s.w.Directory, err = parsePathList(v, "directories")
		return err
	}},
	{names: []string{"filename_format"}, set: func(s *scope, v string) error {
		if strings.Contains(v, "$clientuid") {
			return errors.New("$clientuid is for fio's client/server mode, which vmstorbench does not have")
		}
		s.w.FilenameFormat = v
		return nil
	}},
	{names: []string{"iodepth"}, set: func(s *scope, v string) (err error) {
		s.w.IODepth, err = s.positiveInt(v)
		return err
	}},
	{names: []string{"numjobs"}, set: func(s *scope, v string) (err error) {
		s.w.NumJobs, err = s.positiveInt(v)
		return err
	}},
	{names: []string{"runtime", "timeout"}, set: func(s *scope, v string) (err error) {
		s.w.Runtime, err = seconds(v)
		return err
	}},
	{names: []string{"ramp_time"}, set: func(s *scope, v string) (err error) {
		s.w.RampTime, err = seconds(v)
		return err
	}},
	{names: []string{"time_based"}, flag: true, set: func(s *scope, v string) (err error) {
		s.w.TimeBased, err = s.flag(v)
		return err
	}},
	{names: []string{"loops"}, set: func(s *scope, v string) (err error) {
		s.w.Loops, err = s.int(v)
		return err
	}},
	{names: []string{"number_ios"}, set: func(s *scope, v string) (err error) {
		s.w.NumberIOs, err = s.bytes(v)
		return err
	}},
	{names: []string{"startdelay"}, set: func(s *scope, v string) (err error) {
		if strings.Contains(v, "-") || strings.Contains(v, ":") {
			return errors.New("a range (a random delay per job) is not supported: give one delay")
		}
		s.w.StartDelay, err = seconds(v)
		return err
	}},
	{names: []string{"thinktime"}, set: func(s *scope, v string) (err error) {
		s.w.ThinkTime, err = micros(v)
		return err
	}},
	{names: []string{"thinktime_spin"}, set: func(s *scope, v string) (err error) {
		s.w.ThinkTimeSpin, err = micros(v)
		return err
	}},
	{names: []string{"thinktime_blocks"}, set: func(s *scope, v string) (err error) {
		s.w.ThinkTimeBlocks, err = s.int(v)
		return err
	}},
	{names: []string{"thinktime_blocks_type"}, set: func(s *scope, v string) error {
		return onlyDefault(v, "complete", "thinktime after completed blocks (issue is not supported)")
	}},
	{names: []string{"thinktime_iotime"}, set: func(s *scope, v string) error {
		d, err := seconds(v)
		if err == nil && d != 0 {
			err = errors.New("thinktime by I/O time is not supported: use thinktime_blocks")
		}
		return err
	}},
	{names: []string{"rate"}, set: func(s *scope, v string) error {
		return perDirection(v, func(d Direction, p string) (err error) {
			s.w.Rate[d], err = s.bytes(p)
			return err
		})
	}},
	{names: []string{"rate_iops"}, set: func(s *scope, v string) error {
		return perDirection(v, func(d Direction, p string) (err error) {
			s.w.RateIOPS[d], err = s.bytes(p) // fio takes k/m suffixes here too
			return err
		})
	}},
	{names: []string{"rate_process"}, set: func(s *scope, v string) error {
		switch v {
		case "linear":
			s.w.RateProcess = "" // the default
		case "poisson":
			s.w.RateProcess = v
		default:
			return errors.New("must be linear or poisson")
		}
		return nil
	}},
	{names: []string{"randseed"}, set: func(s *scope, v string) (err error) {
		s.w.RandSeed, err = strconv.ParseUint(v, 0, 64)
		return err
	}},
	{names: []string{"direct"}, set: func(s *scope, v string) (err error) {
		s.w.Direct, err = parseBool(v)
		return err
	}},
	{names: []string{"buffered"}, set: func(s *scope, v string) error {
		b, err := parseBool(v)
		s.w.Direct = !b
		return err
	}},
	{names: []string{"invalidate"}, set: func(s *scope, v string) error {
		b, err := parseBool(v)
		s.w.NoInvalidate = !b
		return err
	}},
	{names: []string{"sync"}, set: func(s *scope, v string) error {
		switch v {
		case "0", "none":
			s.w.SyncIO = ""
		case "1", "sync":
			s.w.SyncIO = "sync"
		case "dsync":
			s.w.SyncIO = "dsync"
		default:
			return errors.New("must be none (0), sync (1) or dsync")
		}
		return nil
	}},
	{names: []string{"fsync"}, set: func(s *scope, v string) (err error) {
		s.w.Fsync, err = s.int(v)
		return err
	}},
	{names: []string{"fdatasync"}, set: func(s *scope, v string) (err error) {
		s.w.Fdatasync, err = s.int(v)
		return err
	}},
	{names: []string{"buffer_pattern"}, set: func(s *scope, v string) (err error) {
		s.w.BufferPattern, err = parsePattern(v, false)
		return err
	}},
	{names: []string{"zero_buffers"}, flag: true, set: func(s *scope, v string) error {
		on, err := s.flag(v)
		if on {
			s.w.BufferPattern = []byte{0}
		}
		return err
	}},
	{names: []string{"buffer_compress_percentage"}, set: func(s *scope, v string) (err error) {
		s.w.BufferCompressPct, err = s.percent(v)
		return err
	}},
	{names: []string{"buffer_compress_chunk"}, set: func(s *scope, v string) (err error) {
		s.w.BufferCompressChunk, err = s.bytes(v)
		return err
	}},
	{names: []string{"dedupe_percentage"}, set: func(s *scope, v string) (err error) {
		s.w.DedupePct, err = s.percent(v)
		return err
	}},
	{names: []string{"dedupe_mode"}, set: func(s *scope, v string) error {
		return onlyDefault(v, "repeat", "dedupe_percentage repeats earlier buffers (working_set is not supported)")
	}},
	{names: []string{"dedupe_global"}, set: func(s *scope, v string) error {
		return onlyDefault(v, "0", "deduplication within each job (sharing across jobs is not supported)")
	}},
	{names: []string{"verify"}, set: func(s *scope, v string) (err error) {
		s.w.Verify, err = parseVerify(v)
		return err
	}},
	{names: []string{"verify_pattern"}, set: func(s *scope, v string) (err error) {
		s.w.VerifyPattern, err = parsePattern(v, true)
		return err
	}},
	{names: []string{"verify_interval"}, set: func(s *scope, v string) (err error) {
		s.w.VerifyInterval, err = s.bytes(v)
		if err == nil && s.w.VerifyInterval < minVerifyInterval {
			err = fmt.Errorf("must be at least %d (fio's minimum)", minVerifyInterval)
		}
		return err
	}},
	{names: []string{"do_verify"}, set: func(s *scope, v string) error {
		b, err := parseBool(v)
		s.noVerifyPass = !b
		return err
	}},
	{names: []string{"filename"}, set: func(s *scope, v string) (err error) {
		s.w.Filename, err = parsePathList(v, "files")
		return err
	}},
	{names: []string{"name"}, set: func(s *scope, v string) error {
		s.w.Name = v
		return nil
	}},
	{names: []string{"description"}, set: func(*scope, string) error { return nil }},
	{names: []string{"ioengine"}, set: func(s *scope, v string) error {
		if why, ok := noIOEngines[v]; ok {
			return fmt.Errorf("fio's ioengine=%s %s: no storage I/O for vmstorbench to run", v, why)
		}
		s.note("ioengine=%s replaced by the vmstorbench backend", v)
		return nil
	}},
	// The URLs fio's nbd and nfs engines connect to: the target when no --target is given
	// (Job.FileTarget); checkEngineOptions ties each to its engine.
	{names: []string{"uri"}, set: func(*scope, string) error { return nil }},
	{names: []string{"nfs_url"}, set: func(*scope, string) error { return nil }},
	{names: []string{"stonewall", "wait_for_previous"}, flag: true, set: func(s *scope, v string) (err error) {
		s.stonewall, err = s.flag(v)
		return err
	}},
	{names: []string{"new_group"}, flag: true, set: func(s *scope, v string) (err error) {
		s.newGroup, err = s.flag(v)
		return err
	}},
	{names: []string{"group_reporting"}, flag: true, set: func(s *scope, v string) (err error) {
		s.groupReporting, err = s.flag(v)
		return err
	}},
	{names: []string{"norandommap"}, flag: true, set: func(s *scope, v string) error {
		on, err := s.flag(v)
		if err == nil && on {
			s.note("norandommap: random offsets still visit every block once per pass, as with fio's random map")
		}
		return err
	}},
	{names: []string{"randrepeat"}, set: func(s *scope, v string) error {
		b, err := parseBool(v)
		if err == nil && !b {
			s.note("randrepeat=0: offsets still follow randseed and repeat from run to run")
		}
		return err
	}},
	{names: []string{"kb_base"}, set: func(s *scope, v string) error {
		if v != "1000" && v != "1024" {
			return errors.New("must be 1000 or 1024")
		}
		s.kbBase, _ = strconv.Atoi(v)
		return nil
	}},
}

// perDirection applies fio's "read,write[,trim]" values: one value is for both directions,
// an empty part keeps what was set before, and a trim part is ignored (there is no trim I/O).
func perDirection(v string, set func(Direction, string) error) error {
	parts := strings.Split(v, ",")
	if len(parts) > 3 {
		return errors.New("at most read,write,trim values")
	}
	if len(parts) == 1 {
		if strings.TrimSpace(v) == "" {
			return errors.New("empty value")
		}
		parts = []string{v, v}
	}
	for d := Read; d <= Write; d++ {
		if p := strings.TrimSpace(parts[d]); p != "" {
			if err := set(d, p); err != nil {
				return err
			}
		}
	}
	return nil
}

// bytes parses a size (also used for counts, as fio does: iodepth=1k is 1024) in the
// scope's kb_base. fio also takes hexadecimal.
func (s *scope) bytes(v string) (int64, error) {
	var n int64
	var err error
	if strings.HasPrefix(v, "0x") || strings.HasPrefix(v, "0X") {
		n, err = strconv.ParseInt(v, 0, 64)
	} else {
		n, err = units.ParseSizeBase(v, s.kbBase)
	}
	if err == nil && n < 0 {
		err = errors.New("out of range")
	}
	return n, err
}

func (s *scope) int(v string) (int, error) {
	n, err := s.bytes(v)
	if err == nil && n > math.MaxInt32 {
		err = errors.New("out of range")
	}
	return int(n), err
}

// percent parses a whole percentage, 0..100.
func (s *scope) percent(v string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 || n > 100 {
		return 0, errors.New("must be a whole number 0..100")
	}
	return n, nil
}

// flag parses a fio "set" option's value: any non-zero number turns it on.
func (s *scope) flag(v string) (bool, error) {
	n, err := s.int(v)
	return n != 0, err
}

// blockRange parses "4k-64k" (fio also writes "4k:64k").
func (s *scope) blockRange(v string) (BlockSize, error) {
	lo, hi, ok := strings.Cut(v, "-")
	if !ok {
		lo, hi, ok = strings.Cut(v, ":")
	}
	if !ok {
		return BlockSize{}, errors.New("want a range min-max")
	}
	var b BlockSize
	var err error
	if b.Min, err = s.bytes(strings.TrimSpace(lo)); err != nil {
		return BlockSize{}, err
	}
	b.Max, err = s.bytes(strings.TrimSpace(hi))
	return b, err
}

func seconds(v string) (time.Duration, error) {
	d, err := units.ParseDuration(v, time.Second)
	if err == nil && d < 0 {
		err = errors.New("out of range")
	}
	return d, err
}

func parseBool(v string) (bool, error) {
	switch v {
	case "0":
		return false, nil
	case "1":
		return true, nil
	}
	return false, errors.New("must be 0 or 1")
}
