package results

// Replication is the state of a replicated block device (DRBD) over a run: sampled every
// interval from the node the I/O went to, with a summary and the changes seen.
type Replication struct {
	// Kind is "drbd".
	Kind     string `json:"kind"`
	Resource string `json:"resource,omitempty"`
	// Source says where the state came from: "/proc/drbd", "drbdsetup status --json",
	// "node agent 127.0.0.1:PORT".
	Source string `json:"source,omitempty"`
	// Protocol is the replication protocol (A, B, C) at the start of the run.
	Protocol string `json:"protocol,omitempty"`
	// Degraded is set when the run was allowed on a device that was not Primary/UpToDate
	// with an UpToDate peer (allow_degraded): it says what was wrong, and labels the result.
	Degraded string `json:"degraded,omitempty"`
	// Start and End are the first and last samples.
	Start *ReplicationState `json:"start,omitempty"`
	End   *ReplicationState `json:"end,omitempty"`
	// SentBytes and ReceivedBytes are the replication traffic over the run (end − start of
	// DRBD's counters); SentPerGiBWritten relates it to what the workload wrote.
	SentBytes         int64   `json:"sent_bytes"`
	ReceivedBytes     int64   `json:"received_bytes"`
	SentPerGiBWritten float64 `json:"sent_per_gib_written,omitempty"`
	// Samples are the states through the run; TNS is from the start of measurement
	// (negative during ramp).
	Samples []ReplicationState `json:"samples,omitempty"`
	// Events are the changes of role, connection, disk and protocol, and the samples that
	// failed (a node gone), in time order.
	Events []ReplicationEvent `json:"events,omitempty"`
}

// ReplicationState is one sample of DRBD's state.
type ReplicationState struct {
	TNS            int64   `json:"t_ns"`
	Role           string  `json:"role,omitempty"`
	PeerRole       string  `json:"peer_role,omitempty"`
	Connection     string  `json:"connection,omitempty"`
	Replication    string  `json:"replication,omitempty"`
	Disk           string  `json:"disk,omitempty"`
	PeerDisk       string  `json:"peer_disk,omitempty"`
	Protocol       string  `json:"protocol,omitempty"`
	OutOfSyncBytes int64   `json:"out_of_sync_bytes"`
	SyncPercent    float64 `json:"sync_percent"`
	SentBytes      int64   `json:"sent_bytes"`
	ReceivedBytes  int64   `json:"received_bytes"`
	// Error is set when the state could not be read; the other fields are then empty.
	Error string `json:"error,omitempty"`
}

// ReplicationEvent is one change seen between two samples.
type ReplicationEvent struct {
	TNS int64 `json:"t_ns"`
	// What is "connection", "role", "peer_role", "disk", "peer_disk", "protocol",
	// "replication" or "error".
	What string `json:"what"`
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
}

// Add appends a sample and records what changed since the previous one.
func (r *Replication) Add(s ReplicationState) {
	var prev *ReplicationState
	if n := len(r.Samples); n > 0 {
		prev = &r.Samples[n-1]
	}
	if prev != nil {
		if s.Error != "" {
			if prev.Error == "" {
				r.Events = append(r.Events, ReplicationEvent{TNS: s.TNS, What: "error", To: s.Error})
			}
		} else {
			base := *prev
			if prev.Error != "" {
				// Compare with the last good sample: a node that came back is news.
				base = ReplicationState{}
				for i := len(r.Samples) - 1; i >= 0; i-- {
					if r.Samples[i].Error == "" {
						base = r.Samples[i]
						break
					}
				}
			}
			for _, c := range []struct{ what, a, b string }{
				{"role", base.Role, s.Role}, {"peer_role", base.PeerRole, s.PeerRole},
				{"connection", base.Connection, s.Connection}, {"replication", base.Replication, s.Replication},
				{"disk", base.Disk, s.Disk}, {"peer_disk", base.PeerDisk, s.PeerDisk}, {"protocol", base.Protocol, s.Protocol},
			} {
				if c.a != c.b {
					r.Events = append(r.Events, ReplicationEvent{TNS: s.TNS, What: c.what, From: c.a, To: c.b})
				}
			}
		}
	}
	r.Samples = append(r.Samples, s)
}

// Summarise fills Start, End and the traffic figures from the samples; written is what the
// workload wrote (bytes).
func (r *Replication) Summarise(written int64) {
	var first, last *ReplicationState
	for i := range r.Samples {
		if r.Samples[i].Error != "" {
			continue
		}
		if first == nil {
			first = &r.Samples[i]
		}
		last = &r.Samples[i]
	}
	if first == nil {
		return
	}
	a, b := *first, *last
	r.Start, r.End = &a, &b
	if r.Protocol == "" {
		r.Protocol = a.Protocol
	}
	// Counters restart when a resource is reconfigured: never report a negative amount.
	r.SentBytes = max(b.SentBytes-a.SentBytes, 0)
	r.ReceivedBytes = max(b.ReceivedBytes-a.ReceivedBytes, 0)
	if written > 0 {
		r.SentPerGiBWritten = float64(r.SentBytes) / (float64(written) / (1 << 30))
	}
}

// Disconnected returns the time of the first event that took the replication link down,
// or -1 when it stayed up (or was never up).
func (r *Replication) Disconnected() int64 {
	for _, e := range r.Events {
		if e.What == "connection" && e.From == "Connected" {
			return e.TNS
		}
	}
	return -1
}
