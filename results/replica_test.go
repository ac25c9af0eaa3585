package results

import "testing"

func TestMigrationReplicationSummarise(t *testing.T) {
	nodes := func(a, b int64, bad bool) []ReplicaNodeState {
		ns := []ReplicaNodeState{{Node: "a", SentB: a}, {Node: "b", SentB: b}}
		if bad {
			ns[1].Error = "node b: connection refused"
		}
		return ns
	}
	for _, c := range []struct {
		name                  string
		samples               []ReplicaSample
		before, during, after int64
	}{
		{"all points", []ReplicaSample{
			{Point: "workload start", Nodes: nodes(100, 0, false)},
			{Point: "migration start", Nodes: nodes(1100, 0, false)},
			// During dual-primary both nodes send: the sum is what crossed the link.
			{Point: "migration end", Nodes: nodes(3100, 500, false)},
			{Point: "end", Nodes: nodes(3100, 2500, false)},
		}, 1000, 2500, 2000},
		{"a node unreadable at the end", []ReplicaSample{
			{Point: "workload start", Nodes: nodes(0, 0, false)},
			{Point: "migration start", Nodes: nodes(10, 0, false)},
			{Point: "migration end", Nodes: nodes(30, 0, false)},
			{Point: "end", Nodes: nodes(40, 0, true)},
		}, 10, 20, -1},
		{"counters restarted by a role change", []ReplicaSample{
			{Point: "workload start", Nodes: nodes(50, 0, false)},
			{Point: "before dual-primary", Nodes: nodes(80, 0, false)},
			{Point: "after dual-primary", Nodes: nodes(0, 0, false)},
			{Point: "migration start", Nodes: nodes(10, 0, false)},
		}, 40, -1, -1},
		{"a node missing", []ReplicaSample{
			{Point: "workload start", Nodes: nodes(50, 0, false)[:1]},
			{Point: "migration start", Nodes: nodes(60, 0, false)},
		}, -1, -1, -1},
	} {
		r := MigrationReplication{Samples: c.samples}
		r.Summarise()
		if r.BeforeB != c.before || r.DuringB != c.during || r.AfterB != c.after {
			t.Errorf("%s: before %d during %d after %d, want %d %d %d", c.name, r.BeforeB, r.DuringB, r.AfterB, c.before, c.during, c.after)
		}
	}
}
