package migrate

import (
	"encoding/json"

	"github.com/vmstorbench/vmstorbench/results"
)

// MarshalJSON writes the result document; its migration section is Run.Migration.
func (r *Result) MarshalJSON() ([]byte, error) {
	r.Run.Migration = r.Migration
	return json.Marshal(r.Run)
}

// Save writes the result document into dir with results.Save and returns its path.
func (r *Result) Save(dir string) (string, error) {
	r.Run.Migration = r.Migration
	return results.Save(dir, r.Run)
}
