package migrate

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/vmstorbench/vmstorbench/results"
)

// MarshalJSON writes the result document with the migration section under "migration".
func (r *Result) MarshalJSON() ([]byte, error) {
	type document struct {
		*results.Run
		Migration *results.Migration `json:"migration,omitempty"`
	}
	return json.Marshal(document{r.Run, r.Migration})
}

// Save writes the result document into dir (created if needed) under results.FileName, the
// file appearing atomically, and returns its path.
func (r *Result) Save(dir string) (string, error) {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", fmt.Errorf("results: encode run %s: %w", r.Run.ID, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("results: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".vmstorbench-*.tmp")
	if err != nil {
		return "", fmt.Errorf("results: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(append(data, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	path := filepath.Join(dir, results.FileName(r.Run))
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return "", fmt.Errorf("results: write %s: %w", path, err)
	}
	return path, nil
}
