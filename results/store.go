package results

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// schemaName is SchemaVersion without its version: "vmstorbench.result".
var schemaName, schemaMajor = splitSchema(SchemaVersion)

// NewID returns a random 16-hex-digit run ID.
func NewID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (it panics on a broken kernel)
	return hex.EncodeToString(b[:])
}

// FileName is the name Save gives r: <start UTC compact>-<backend>-<workload name or rw>-<short id>.json.
func FileName(r *Run) string {
	backend := r.Target.Backend
	if backend == "" {
		backend = "unknown"
	}
	work := r.Workload.Name
	if work == "" {
		work = r.Workload.RW
	}
	id := r.ID
	if len(id) > 8 {
		id = id[:8]
	}
	parts := []string{r.Start.UTC().Format("20060102T150405Z"), backend, work, id}
	for i, p := range parts {
		parts[i] = safeName(p)
	}
	return strings.Join(parts, "-") + ".json"
}

// safeName keeps letters, digits, '.' and '_'; everything else (including '-', the field
// separator, and path separators) becomes '_'.
func safeName(s string) string {
	if s == "" {
		return "_"
	}
	return strings.Map(func(c rune) rune {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_':
			return c
		}
		return '_'
	}, s)
}

// Save writes r as indented JSON into dir (created if needed) and returns the file's path.
// It fills r.Schema and r.ID when empty. The file appears atomically: it is written to a
// temporary file in dir, synced, then renamed.
func Save(dir string, r *Run) (string, error) {
	if r.Schema == "" {
		r.Schema = SchemaVersion
	}
	if r.ID == "" {
		r.ID = NewID()
	}
	r.Status = r.Outcome()
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", fmt.Errorf("results: encode run %s: %w", r.ID, err)
	}
	data = append(data, '\n')
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("results: create result directory: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".vmstorbench-*.tmp")
	if err != nil {
		return "", fmt.Errorf("results: result directory %q is not writable: %w", dir, err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644) // CreateTemp makes 0600; results are not secret
	}
	path := filepath.Join(dir, FileName(r))
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return "", fmt.Errorf("results: write %s: %w", path, err)
	}
	return path, nil
}

// Load reads one result document. It refuses files that are not vmstorbench results and
// documents of a newer major schema version than this build understands.
func Load(path string) (*Run, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("results: %w", err)
	}
	r, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("results: %s: %w", path, err)
	}
	return r, nil
}

// Decode reads one result document from data, as Load does from a file.
func Decode(data []byte) (*Run, error) {
	var head struct {
		Schema string `json:"schema"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("not a JSON result: %w", err)
	}
	if err := checkSchema(head.Schema); err != nil {
		return nil, err
	}
	var r Run
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

func checkSchema(s string) error {
	name, major := splitSchema(s)
	if s == "" || name != schemaName || major < 1 {
		return fmt.Errorf("not a vmstorbench result (schema %q, want %s)", s, SchemaVersion)
	}
	if major > schemaMajor {
		return fmt.Errorf("written by a newer vmstorbench (schema %s; this build reads %s.x and older): upgrade vmstorbench to read it", s, SchemaVersion)
	}
	return nil
}

// splitSchema splits "vmstorbench.result/1.2" into its name and major version (0 if none).
func splitSchema(s string) (name string, major int) {
	name, ver, ok := strings.Cut(s, "/")
	if !ok {
		return s, 0
	}
	ver, _, _ = strings.Cut(ver, ".")
	major, err := strconv.Atoi(ver)
	if err != nil {
		return name, 0
	}
	return name, major
}

// LoadAll loads result documents from paths: files, directories (every *.json directly
// inside, sorted by name) and glob patterns. A directory or pattern that yields no file is an
// error, so a mistyped path is never silently an empty report.
func LoadAll(paths ...string) ([]*Run, error) {
	runs, _, err := LoadAllWith(LoadOptions{}, paths...)
	return runs, err
}

// LoadOptions configure LoadAllWith.
type LoadOptions struct {
	// SkipUnreadable leaves out a file that cannot be read or is not a result document this
	// build understands, and reports it in skipped, instead of failing. A path that names
	// nothing is still an error, and so is a set in which no file could be read.
	SkipUnreadable bool
}

// LoadAllWith is LoadAll with options; skipped lists the files left out, with why.
func LoadAllWith(opt LoadOptions, paths ...string) (runs []*Run, skipped []error, err error) {
	if len(paths) == 0 {
		return nil, nil, errors.New("results: no result files given")
	}
	var files []string
	for _, p := range paths {
		found, err := expand(p)
		if err != nil {
			return nil, nil, err
		}
		files = append(files, found...)
	}
	runs = make([]*Run, 0, len(files))
	for _, f := range files {
		r, err := Load(f)
		switch {
		case err != nil && opt.SkipUnreadable:
			skipped = append(skipped, err)
		case err != nil:
			return nil, nil, err
		default:
			runs = append(runs, r)
		}
	}
	if len(runs) == 0 && len(skipped) > 0 {
		return nil, skipped, fmt.Errorf("results: none of the %d result files could be read, first: %w", len(skipped), skipped[0])
	}
	return runs, skipped, nil
}

func expand(p string) ([]string, error) {
	if strings.ContainsAny(p, "*?[") {
		if _, err := os.Stat(p); err != nil { // a real name containing '[' is taken literally
			m, err := filepath.Glob(p)
			if err != nil {
				return nil, fmt.Errorf("results: pattern %q: %w", p, err)
			}
			if len(m) == 0 {
				return nil, fmt.Errorf("results: no files match %q", p)
			}
			return m, nil // Glob sorts
		}
	}
	fi, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("results: %w", err)
	}
	if !fi.IsDir() {
		return []string{p}, nil
	}
	m, err := filepath.Glob(filepath.Join(globEscape(p), "*.json"))
	if err != nil {
		return nil, fmt.Errorf("results: %s: %w", p, err)
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("results: no *.json files in directory %s", p)
	}
	return m, nil
}

// globEscape quotes glob metacharacters in a literal path.
func globEscape(p string) string {
	var b strings.Builder
	for _, c := range p {
		if strings.ContainsRune(`*?[\`, c) {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}
