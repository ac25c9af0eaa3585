package runner

import "github.com/vmstorbench/vmstorbench/results"

// Class is how one run ended, for exit statuses and counts.
type Class int

const (
	// OK: the run completed (and its migration, if any); verify found nothing.
	OK Class = iota
	// MigrationFailed: the migration failed or was cancelled while the workload went on
	// intact on the source.
	MigrationFailed
	// Failed: the run failed or ended early.
	Failed
	// VerifyFailed: verify found blocks that did not read back as written.
	VerifyFailed
)

// Classify classes one run by its result document (nil when it produced none; its
// Migration section for migration runs) and the error it ended with.
func Classify(r *results.Run, err error) Class {
	switch {
	case r != nil && r.Outcome() == results.StatusVerifyFailed:
		return VerifyFailed
	case err != nil, r != nil && !r.Complete:
		return Failed
	case r != nil && r.Migration != nil:
		m := r.Migration
		if m.Mode != "none" && m.Outcome != "completed" && m.Outcome != "none" {
			return MigrationFailed
		}
	}
	return OK
}
