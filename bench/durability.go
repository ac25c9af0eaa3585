package bench

import (
	"fmt"
	"strings"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/workloads"
)

// fsync=N and fdatasync=N count the job's writes (one counter, as fio counts writes) and
// sync after every Nth; both kinds are timed into the result's Sync stats, as fio reports
// both under "sync". fio's sync= (O_SYNC/O_DSYNC) is the backend's business: the engine
// passes it in OpenParams.SyncWrites.

// syncsDue counts p if it is a write and says which syncs are due after it.
func (wk *worker) syncsDue(p plan) (fsync, fdatasync bool) {
	w := &wk.st.w
	if p.dir != workloads.Write || (w.Fsync <= 0 && w.Fdatasync <= 0) {
		return false, false
	}
	n := wk.job.writes.Add(1)
	return w.Fsync > 0 && n%int64(w.Fsync) == 0, w.Fdatasync > 0 && n%int64(w.Fdatasync) == 0
}

// runSyncs runs the syncs syncsDue said; false means the run failed.
func (wk *worker) runSyncs(fsync, fdatasync bool) bool {
	return (!fsync || wk.timedSync(false)) && (!fdatasync || wk.timedSync(true))
}

// timedSync syncs the job's target (data only when data is set and the backend can) and
// records the sync's latency.
func (wk *worker) timedSync(data bool) bool {
	st, j := wk.st, wk.job
	s0 := st.now()
	var err error
	ds, ok := j.target.(backends.DataSyncer)
	if data && ok {
		err = ds.DataSync()
	} else {
		err = j.target.Sync()
	}
	wk.recordSync(s0, st.now(), err)
	if err != nil {
		call := "sync"
		if data {
			call = "datasync (fdatasync=)"
		}
		st.fail(fmt.Errorf("job %d: %s: %w", j.id, call, err))
		return false
	}
	return true
}

// syncCalls names the Target calls the syncs of w use on t, for the result: "sync"
// (Target.Sync: fsync(2), NFS COMMIT, SMB FLUSH, SYNCHRONIZE CACHE), "datasync"
// (backends.DataSyncer: fdatasync(2)), both joined by "+", or "" without syncs. A backend
// without a data-only sync runs fdatasync=N as "sync".
func syncCalls(w workloads.Workload, t backends.Target) string {
	var calls []string
	if w.Fsync > 0 {
		calls = append(calls, "sync")
	}
	if w.Fdatasync > 0 {
		call := "sync"
		if _, ok := t.(backends.DataSyncer); ok {
			call = "datasync"
		}
		if len(calls) == 0 || calls[0] != call {
			calls = append(calls, call)
		}
	}
	return strings.Join(calls, "+")
}
