package bench

import (
	"context"
	"sync"
	"time"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/results"
)

// ReplicationSampler is implemented by Targets on a replicated device (the drbd backend):
// the engine samples the replication state while the workload runs and puts it in the
// result. Both methods must be safe to call while I/O is in flight.
type ReplicationSampler interface {
	// ReplicationInfo says what is replicated (kind, resource, source, protocol, and why the
	// device was measured although degraded); its Samples are ignored.
	ReplicationInfo() results.Replication
	// SampleReplication reads the current state; ctx carries its deadline.
	SampleReplication(ctx context.Context) (results.ReplicationState, error)
}

// maxSampleWait bounds one state read: a node that stopped answering must not hold up the
// run's end or the next sample for long.
const maxSampleWait = 3 * time.Second

// replicationSampler samples a ReplicationSampler every interval until stopped.
type replicationSampler struct {
	src      ReplicationSampler
	start    time.Time
	rampNS   int64
	interval time.Duration

	mu   sync.Mutex
	rep  results.Replication
	stop chan struct{}
	done chan struct{}
}

// newReplicationSampler takes the first sample before any I/O is issued, so the counters'
// baseline cannot already include the first writes (the sent-per-written ratio would then
// fall below 1 on a synchronous protocol). The caller starts the clock and then calls run.
func newReplicationSampler(ctx context.Context, t backends.Target, rampNS int64, interval time.Duration) *replicationSampler {
	src, ok := t.(ReplicationSampler)
	if !ok {
		return nil
	}
	s := &replicationSampler{src: src, rampNS: rampNS, interval: interval,
		rep: src.ReplicationInfo(), stop: make(chan struct{}), done: make(chan struct{})}
	s.rep.Samples, s.rep.Events = nil, nil
	s.sample(ctx)
	return s
}

// begin starts periodic sampling; times are relative to start, the run's clock.
func (s *replicationSampler) begin(ctx context.Context, start time.Time) {
	if s == nil {
		return
	}
	s.start = start
	go s.run(ctx)
}

func (s *replicationSampler) sample(ctx context.Context) {
	sctx, cancel := context.WithTimeout(ctx, min(s.interval, maxSampleWait))
	defer cancel()
	t := -s.rampNS // the baseline, taken just before the clock starts
	if !s.start.IsZero() {
		t = int64(time.Since(s.start)) - s.rampNS
	}
	st, err := s.src.SampleReplication(sctx)
	st.TNS = t
	if err != nil {
		st = results.ReplicationState{TNS: t, Error: err.Error()}
	}
	s.mu.Lock()
	s.rep.Add(st)
	s.mu.Unlock()
}

func (s *replicationSampler) run(ctx context.Context) {
	defer close(s.done)
	tick := time.NewTicker(s.interval)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-ctx.Done():
			return
		case <-tick.C:
			s.sample(ctx)
		}
	}
}

// finish stops the sampling, takes a last sample (with its own deadline: the run's context
// may be cancelled by then) and returns the summary.
func (s *replicationSampler) finish(written int64) *results.Replication {
	if s == nil {
		return nil
	}
	close(s.stop)
	<-s.done
	s.sample(context.Background())
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rep
	r.Summarise(written)
	return &r
}
