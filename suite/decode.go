package suite

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/vmstorbench/vmstorbench/internal/suggest"
	"github.com/vmstorbench/vmstorbench/workloads/units"
)

// Error is one problem in a suite file, with the line it is on ("suite.yaml:12: ...").
type Error struct {
	File string
	Line int // 0 when the problem has no single place (the file as a whole)
	Msg  string
}

func (e *Error) Error() string {
	if e.Line <= 0 {
		return e.File + ": " + e.Msg
	}
	return e.File + ":" + strconv.Itoa(e.Line) + ": " + e.Msg
}

// Errors are all the problems found in a suite file, in line order: Parse reports every
// one at once rather than the first, so one edit fixes them all.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// decoder walks the yaml.Node tree, which keeps line numbers (decoding into structs would
// lose them), and collects errors.
type decoder struct {
	file string
	errs Errors
}

func (d *decoder) errorf(line int, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func (d *decoder) err() error {
	if len(d.errs) == 0 {
		return nil
	}
	sort.SliceStable(d.errs, func(i, j int) bool { return d.errs[i].Line < d.errs[j].Line })
	return d.errs
}

// yamlLine matches the line yaml.v3 puts in its syntax errors: "yaml: line 3: did not find ...".
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError turns a yaml.v3 error into an Error with the file and line.
func syntaxError(file string, err error) *Error {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		return &Error{File: file, Line: n, Msg: "invalid YAML: " + m[2]}
	}
	return &Error{File: file, Msg: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

// field is one key of a mapping with its value.
type field struct {
	key  string
	line int
	val  *yaml.Node
}

// resolve follows aliases (*anchor) to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// fields returns a mapping's keys in order; a node that is not a mapping and repeated keys
// are reported (what names the mapping in messages: "target", "workload").
func (d *decoder) fields(n *yaml.Node, what string) []field {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		d.errorf(n.Line, "%s: want a mapping (key: value lines), got %s", what, kindName(n))
		return nil
	}
	var out []field
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.errorf(k.Line, "%s: keys must be plain names", what)
			continue
		}
		if k.Value == "<<" {
			d.errorf(k.Line, "%s: merge keys (<<) are not supported", what)
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.errorf(k.Line, "duplicate key %q in %s (first on line %d)", k.Value, what, first)
			continue
		}
		seen[k.Value] = k.Line
		out = append(out, field{key: k.Value, line: k.Line, val: v})
	}
	return out
}

// unknown reports a key that is not one of known, suggesting the nearest one.
func (d *decoder) unknown(f field, what string, known []string) {
	msg := fmt.Sprintf("unknown key %q in %s", f.key, what)
	if s := suggest.Nearest(f.key, known); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	} else {
		msg += " (known: " + strings.Join(known, ", ") + ")"
	}
	d.errs = append(d.errs, &Error{File: d.file, Line: f.line, Msg: msg})
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

// scalar returns a scalar's text; lists, mappings and null are reported.
func (d *decoder) scalar(f field) (string, bool) {
	n := resolve(f.val)
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		d.errorf(f.line, "%s: want a single value, got %s", f.key, kindName(n))
		return "", false
	}
	return n.Value, true
}

func (d *decoder) str(f field) string {
	s, _ := d.scalar(f)
	return s
}

func (d *decoder) boolean(f field) bool {
	s, ok := d.scalar(f)
	if !ok {
		return false
	}
	switch strings.ToLower(s) {
	case "true", "yes", "on":
		return true
	case "false", "no", "off":
		return false
	}
	d.errorf(f.line, "%s: %q is not true or false", f.key, s)
	return false
}

func (d *decoder) integer(f field, min, max int) int {
	s, ok := d.scalar(f)
	if !ok {
		return 0
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < min || n > max {
		d.errorf(f.line, "%s: %q: want a whole number from %d to %d", f.key, s, min, max)
		return 0
	}
	return n
}

// duration reads a duration with fio's units ("300ms", "5s", "2m"; a bare number is seconds).
func (d *decoder) duration(f field) time.Duration {
	s, ok := d.scalar(f)
	if !ok {
		return 0
	}
	v, err := units.ParseDuration(s, time.Second)
	if err != nil || v <= 0 {
		d.errorf(f.line, "%s: %q: want a positive duration like 300ms, 5s or 2m", f.key, s)
		return 0
	}
	return v
}

// size reads a byte count with fio's units ("32m", "1g").
func (d *decoder) size(f field) int64 {
	s, ok := d.scalar(f)
	if !ok {
		return 0
	}
	v, err := units.ParseSize(s)
	if err != nil || v <= 0 {
		d.errorf(f.line, "%s: %q: want a positive size like 32m or 1g", f.key, s)
		return 0
	}
	return v
}

// oneOf reads a value that must be one of allowed.
func (d *decoder) oneOf(f field, allowed []string) string {
	s, ok := d.scalar(f)
	if !ok {
		return ""
	}
	if !slices.Contains(allowed, s) {
		d.errorf(f.line, "%s: %q: must be one of %s", f.key, s, strings.Join(allowed, ", "))
		return ""
	}
	return s
}

// list returns a sequence's items; a single item is accepted as a list of one.
func (d *decoder) list(f field) []*yaml.Node {
	n := resolve(f.val)
	switch {
	case n.Kind == yaml.SequenceNode:
		return n.Content
	case n.Kind == yaml.ScalarNode && n.Tag == "!!null":
		d.errorf(f.line, "%s: empty", f.key)
		return nil
	}
	return []*yaml.Node{n}
}

// stringMap reads a mapping of names to single values (labels).
func (d *decoder) stringMap(f field) map[string]string {
	out := map[string]string{}
	for _, g := range d.fields(f.val, f.key) {
		if v, ok := d.scalar(g); ok {
			out[g.key] = v
		}
	}
	return out
}
