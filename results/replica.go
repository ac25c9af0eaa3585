package results

// MigrationReplication is a migration between two replicas of the VM's disk (DRBD in
// dual-primary): each hypervisor's QEMU opens its own host's replica, the replication
// link carries the guest's writes, and the replicas' roles change around the migration.
type MigrationReplication struct {
	// Kind is "drbd"; Protocol the replication protocol (A, B, C).
	Kind     string `json:"kind"`
	Protocol string `json:"protocol,omitempty"`
	// Link is the emulated replication link for the run (nil: as the pair was set up).
	Link *MigrationLink `json:"link,omitempty"`
	// Source and Destination name the replicas the two QEMUs opened ("a", "b").
	Source      string `json:"source"`
	Destination string `json:"destination"`
	// Steps are the role changes in order ("dual-primary", "switchover", "abort") with the
	// nodes' states after each.
	Steps []ReplicaStep `json:"steps,omitempty"`
	// Samples are the nodes' states at the points the traffic figures are cut at:
	// "workload start", "migration start", "migration end", "end".
	Samples []ReplicaSample `json:"samples,omitempty"`
	// BeforeB, DuringB and AfterB are the replication bytes on the link (DRBD's own
	// counters of data sent, summed over both nodes) from the workload's start to the
	// migration's start, during the migration, and from its end to the workload's end;
	// -1 when a sample is missing.
	BeforeB int64 `json:"before_bytes"`
	DuringB int64 `json:"during_bytes"`
	AfterB  int64 `json:"after_bytes"`
	// Note says how the replication differed from the endpoint's settings while migrating
	// (DRBD runs dual-primary with protocol C only).
	Note string `json:"note,omitempty"`
	// Error is set when a role change or a sample failed.
	Error string `json:"error,omitempty"`
}

// ReplicaNodeState is one replica's state as its node reported it.
type ReplicaNodeState struct {
	Node       string `json:"node"`
	Role       string `json:"role,omitempty"`
	PeerRole   string `json:"peer_role,omitempty"`
	Connection string `json:"connection,omitempty"`
	Disk       string `json:"disk,omitempty"`
	PeerDisk   string `json:"peer_disk,omitempty"`
	// TwoPrimaries is allow-two-primaries, when the step read it (role changes do).
	TwoPrimaries *bool  `json:"two_primaries,omitempty"`
	SentB        int64  `json:"sent_bytes"`
	ReceivedB    int64  `json:"received_bytes"`
	Error        string `json:"error,omitempty"`
}

// ReplicaStep is one role change of the replicas.
type ReplicaStep struct {
	Name       string             `json:"name"`
	TNS        int64              `json:"t_ns"`
	DurationNS int64              `json:"duration_ns"`
	Nodes      []ReplicaNodeState `json:"nodes,omitempty"`
	Error      string             `json:"error,omitempty"`
}

// ReplicaSample is the replicas' states at one point of the run.
type ReplicaSample struct {
	Point string             `json:"point"`
	TNS   int64              `json:"t_ns"`
	Nodes []ReplicaNodeState `json:"nodes"`
}

// Summarise computes BeforeB, DuringB and AfterB from the samples. DRBD's counters may
// restart when the connection is renegotiated: a counter lower than in the sample before
// counts from zero, so the samples taken around each role change keep what was sent.
func (r *MigrationReplication) Summarise() {
	index := map[string]int{}
	for i, s := range r.Samples {
		if _, seen := index[s.Point]; !seen {
			index[s.Point] = i
		}
	}
	between := func(a, b string) int64 {
		i, okA := index[a]
		j, okB := index[b]
		if !okA || !okB || j < i {
			return -1
		}
		var total int64
		for k := i; k <= j; k++ {
			for _, n := range r.Samples[k].Nodes {
				if n.Error != "" {
					return -1
				}
			}
			if k == i {
				continue
			}
			for _, n := range r.Samples[k].Nodes {
				prev, found := int64(0), false
				for _, p := range r.Samples[k-1].Nodes {
					if p.Node == n.Node {
						prev, found = p.SentB, true
					}
				}
				switch {
				case !found:
					return -1
				case n.SentB >= prev:
					total += n.SentB - prev
				default:
					total += n.SentB // restarted
				}
			}
		}
		return total
	}
	r.BeforeB = between("workload start", "migration start")
	r.DuringB = between("migration start", "migration end")
	r.AfterB = between("migration end", "end")
}

// Roles is the nodes' roles after the last step, "a Secondary, b Primary".
func (r *MigrationReplication) Roles() string {
	if len(r.Steps) == 0 {
		return ""
	}
	out := ""
	for _, n := range r.Steps[len(r.Steps)-1].Nodes {
		if out != "" {
			out += ", "
		}
		out += n.Node + " " + n.Role
	}
	return out
}
