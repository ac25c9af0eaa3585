package report

import (
	"fmt"
	"slices"

	"github.com/vmstorbench/vmstorbench/results"
)

// replicationPerGiB is the median over the case's runs on a replicated device of the
// replication traffic sent per GiB the workload wrote (DRBD: about 1 GiB plus protocol
// overhead for a healthy pair, more while a resync runs), shown on write rows only.
func replicationPerGiB(c *results.Case, dir string) (string, bool) {
	if dir != "write" {
		return "", false
	}
	var v []float64
	for _, r := range c.Runs {
		if r.Replication != nil && r.Write != nil && r.Write.Bytes > 0 {
			v = append(v, r.Replication.SentPerGiBWritten)
		}
	}
	if len(v) == 0 {
		return "", false
	}
	slices.Sort(v)
	m := v[len(v)/2]
	if len(v)%2 == 0 {
		m = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return fmt.Sprintf("%.3g GiB", m/(1<<30)), true
}

// anyReplication says whether a replication column is worth showing.
func anyReplication(rows []row) bool {
	for _, rw := range rows {
		if _, ok := replicationPerGiB(rw.c, rw.dir); ok {
			return true
		}
	}
	return false
}
