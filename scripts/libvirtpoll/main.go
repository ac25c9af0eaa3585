// Command libvirtpoll measures what polling libvirt's job statistics costs a migration: it
// starts the testbed's libvirt pair, boots the guest on daemon 1, and migrates it back and
// forth between the two daemons, alternating a migration with virDomainGetJobStats polled
// every -poll (as vmstorbench's scenario does through the driver: one query at a time, the
// next on the next tick) and one without any poll. It prints each
// migration's total time (from the first call, Begin, to the domain running on the
// destination and the source's copy gone: all five protocol steps) and
// libvirt's own elapsed time and downtime, and the CPU time the two daemons' users spent
// (libvirtd and QEMU on both sides: what a poll costs, less disturbed than wall time by a
// loaded machine), then the medians and the ratios poll / none.
//
//	libvirtpoll [-rounds 5] [-poll 50ms] [-memory 256] [-settle 0]
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vmstorbench/vmstorbench/testbed"
	"github.com/vmstorbench/vmstorbench/vm/agent"
	"github.com/vmstorbench/vmstorbench/vm/guest"
	"github.com/vmstorbench/vmstorbench/vm/hv/libvirt"
)

func main() {
	rounds := flag.Int("rounds", 5, "rounds (each migrates once with the poll and once without)")
	poll := flag.Duration("poll", 50*time.Millisecond, "job-stats poll interval")
	memory := flag.Int("memory", 256, "guest memory (MiB)")
	settle := flag.Duration("settle", 0, "pause before each migration: one started as soon as the guest arrived is often 3-4x shorter than one started later (measured), which makes two kinds of migration; a pause of 2s makes them all the later kind")
	reap := flag.Bool("reap", true, "reap the daemons' exited QEMU at once (see reapOrphans); false leaves them to PID 1")
	flag.Parse()
	// Interrupted, it still stops the daemons and the guest (the deferred calls in run).
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *rounds, *poll, *memory, *reap, *settle); err != nil {
		fmt.Fprintln(os.Stderr, "libvirtpoll:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, rounds int, poll time.Duration, memory int, reap bool, settle time.Duration) error {
	cache := guest.DefaultCacheDir()
	agentBin, err := guest.BuildAgent(ctx, cache, guest.AgentPackage)
	if err != nil {
		return err
	}
	img, err := guest.Build(ctx, guest.Options{CacheDir: cache, Agent: agentBin})
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "vsb-lvpoll-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	pair := testbed.NewLibvirtPair()
	if reap {
		if err := reapOrphans(ctx, pair.PIDs); err != nil {
			return err
		}
	}
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	eps, err := pair.Start(sctx, dir)
	cancel()
	if err != nil {
		return err
	}
	defer pair.Stop()
	var conns [2]*libvirt.Conn
	for i := range conns {
		if conns[i], err = libvirt.Connect(ctx, eps[i].URL); err != nil {
			return err
		}
		defer conns[i].Close()
	}
	disk, err := sharedDisk(dir)
	if err != nil {
		return err
	}
	dom, err := conns[0].Boot(ctx, libvirt.Spec{Kernel: img.Kernel, Initrd: img.Initrd, Cmdline: img.Cmdline,
		MemoryMiB: memory, Disk: &libvirt.Disk{Source: disk}})
	if err != nil {
		return err
	}
	defer func() { dom.Destroy(context.Background()) }()
	if err := waitAgent(ctx, dom); err != nil {
		return err
	}
	host, err := conns[0].Host(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("libvirt %s, QEMU %s, %d MiB guest (idle, agent up), migration URI tcp://127.0.0.1, exited QEMU reaped at once: %v\n", host.LibvirtVersion, host.HypervisorVersion, memory, reap)
	fmt.Printf("pause before each migration: %s\n", settle)
	var uids []int
	for _, name := range testbed.LibvirtUsers {
		u, err := user.Lookup(name)
		if err != nil {
			return err
		}
		uid, _ := strconv.Atoi(u.Uid)
		uids = append(uids, uid)
	}
	var totals, cpus [2][]time.Duration
	var latencies []time.Duration // of each poll
	names := [2]string{"poll " + poll.String(), "no poll"}
	at := 0
	for r := 1; r <= rounds; r++ {
		// The arms take turns going first, so that each migrates in both directions (the
		// guest goes back and forth: with a fixed order one arm would always go 1 to 2).
		for _, mode := range [2][2]int{{0, 1}, {1, 0}}[(r-1)%2] {
			every := poll
			if mode == 1 {
				every = 0
			}
			if settle > 0 {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(settle):
				}
			}
			mctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
			meter := startCPUMeter(uids)
			next, total, polls, steps, err := migrate(mctx, dom, conns[1-at], every, &latencies)
			cpu := meter.stop()
			cancel()
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", r, names[mode], err)
			}
			dom, at = next, 1-at
			js, err := dom.JobStats(ctx, true)
			if err != nil {
				return err
			}
			totals[mode] = append(totals[mode], total)
			cpus[mode] = append(cpus[mode], cpu)
			var took []string
			for _, s := range steps {
				took = append(took, fmt.Sprintf("%s %.0f", s.Name, ms(s.Took)))
			}
			fmt.Printf("round %d  %-12s %d→%d  total %6.0f ms (%s)  libvirt elapsed %6.0f ms  setup %4.0f ms  downtime %4.0f ms  %d iterations  %5.1f MB sent  %3d polls  CPU %6.0f ms\n",
				r, names[mode], 2-at, at+1, ms(total), strings.Join(took, ", "), ms(js.Elapsed), ms(js.Setup), ms(js.Downtime), js.Iterations, float64(js.DataProcessed)/1e6, polls, ms(cpu))
		}
	}
	med := [2]time.Duration{median(totals[0]), median(totals[1])}
	cmed := [2]time.Duration{median(cpus[0]), median(cpus[1])}
	fmt.Printf("median of %d: total %s %.0f ms, %s %.0f ms, ratio poll/none %.3f; CPU %.0f ms, %.0f ms, ratio %.3f\n",
		rounds, names[0], ms(med[0]), names[1], ms(med[1]), float64(med[0])/float64(med[1]),
		ms(cmed[0]), ms(cmed[1]), float64(cmed[0])/float64(cmed[1]))
	lo, hi := ratioInterval(totals[0], totals[1], median)
	mlo, mhi := ratioInterval(totals[0], totals[1], mean)
	fmt.Printf("95%% bootstrap interval of the total's ratio poll/none: medians %.3f to %.3f; means %.3f (%.3f to %.3f)\n",
		lo, hi, float64(mean(totals[0]))/float64(mean(totals[1])), mlo, mhi)
	if len(latencies) > 0 {
		slices.Sort(latencies)
		fmt.Printf("%d polls: median round trip %.1f ms, 90th percentile %.1f ms\n",
			len(latencies), ms(latencies[len(latencies)/2]), ms(latencies[len(latencies)*9/10]))
	}
	return nil
}

// migrate moves dom to dst, polling the source's job stats every poll (0: never).
func migrate(ctx context.Context, dom *libvirt.Domain, dst *libvirt.Conn, poll time.Duration, lat *[]time.Duration) (*libvirt.Domain, time.Duration, int, []libvirt.Step, error) {
	t0 := time.Now()
	m, err := libvirt.StartMigration(ctx, dom, dst, libvirt.MigrateOptions{Live: true, Unsafe: true, MigrationURI: "tcp://127.0.0.1"})
	if err != nil {
		return nil, 0, 0, nil, err
	}
	polls := 0
	if poll > 0 {
		t := time.NewTicker(poll)
		for done := false; !done; {
			select {
			case <-m.Done():
				done = true
			case <-t.C:
				t0 := time.Now()
				if _, err := m.Stats(ctx); err == nil {
					polls++
					*lat = append(*lat, time.Since(t0))
				}
			}
		}
		t.Stop()
	}
	next, err := m.Wait()
	return next, time.Since(t0), polls, m.Steps(), err
}

func waitAgent(ctx context.Context, dom *libvirt.Domain) error {
	ch, ok, err := dom.ReadAgentChannel(ctx)
	if err != nil || !ok {
		return fmt.Errorf("agent channel: %v %v", ok, err)
	}
	msgs := make(chan agent.Message, 64)
	c, err := agent.Dial(ctx, "source", ch.Address, msgs)
	if err != nil {
		return err
	}
	defer c.Close()
	timeout := time.After(2 * time.Minute)
	for {
		select {
		case m := <-msgs:
			if m.Hello != nil {
				return nil
			}
		case <-timeout:
			return fmt.Errorf("no agent after 2 minutes (console %s)", dom.ConsoleLog())
		}
	}
}

// sharedDisk is a sparse raw disk in dir that both daemons' users can open.
func sharedDisk(dir string) (string, error) {
	d := filepath.Join(dir, "disk")
	if err := os.Mkdir(d, 0o755); err != nil {
		return "", err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", err
	}
	p := filepath.Join(d, "disk.raw")
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o666)
	if err != nil {
		return "", err
	}
	f.Close()
	if err := os.Chmod(p, 0o666); err != nil {
		return "", err
	}
	return p, os.Truncate(p, 64<<20)
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func mean(d []time.Duration) time.Duration {
	var sum time.Duration
	for _, x := range d {
		sum += x
	}
	return sum / time.Duration(len(d))
}

// ratioInterval is the 95% percentile-bootstrap interval of stat(a)/stat(b): how far the
// machine's noise lets the ratio be told (the migrations of one kind vary 2-3x here).
func ratioInterval(a, b []time.Duration, stat func([]time.Duration) time.Duration) (lo, hi float64) {
	const n = 4000
	rng := rand.New(rand.NewPCG(1, 2)) // fixed: the same figures give the same interval
	resample := func(x []time.Duration) []time.Duration {
		out := make([]time.Duration, len(x))
		for i := range out {
			out[i] = x[rng.IntN(len(x))]
		}
		return out
	}
	r := make([]float64, n)
	for i := range r {
		r[i] = float64(stat(resample(a))) / float64(stat(resample(b)))
	}
	slices.Sort(r)
	return r[n*25/1000], r[n*975/1000]
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// cpuMeter adds up the CPU time (user and system) that the processes of the given users
// spend while it runs: libvirtd and QEMU of both sides. It samples /proc every 100 ms, so a
// process that exits (the source's QEMU at the end) counts up to its last sample: at most
// 100 ms of it is lost, with and without the poll alike.
type cpuMeter struct {
	uids  []int
	first map[int]int64
	last  map[int]int64
	quit  chan struct{}
	done  chan struct{}
}

func startCPUMeter(uids []int) *cpuMeter {
	m := &cpuMeter{uids: uids, first: usersTicks(uids), last: map[int]int64{}, quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(m.done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			for pid, v := range usersTicks(m.uids) {
				m.last[pid] = v
			}
			select {
			case <-m.quit:
				return
			case <-t.C:
			}
		}
	}()
	return m
}

func (m *cpuMeter) stop() time.Duration {
	close(m.quit)
	<-m.done
	for pid, v := range usersTicks(m.uids) {
		m.last[pid] = v
	}
	var ticks int64
	for pid, v := range m.last {
		ticks += v - m.first[pid]
	}
	return time.Duration(ticks) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}

// usersTicks is utime+stime, in clock ticks, of each running process of the given users.
func usersTicks(uids []int) map[int]int64 {
	out := map[int]int64{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := os.Stat("/proc/" + e.Name())
		if err != nil || !slices.Contains(uids, int(statUID(st))) {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// The fields after the command (in parentheses, may hold spaces): utime and stime
		// are the 12th and 13th.
		f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
		if len(f) > 13 {
			u, _ := strconv.ParseInt(f[11], 10, 64)
			s, _ := strconv.ParseInt(f[12], 10, 64)
			out[pid] = u + s
		}
	}
	return out
}

func statUID(st os.FileInfo) uint32 {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return s.Uid
	}
	return 0
}

// reapOrphans makes this process the reaper of its orphaned descendants and reaps those
// that exit (but the daemons, keep(), which their Process waits for). The daemons' QEMU
// daemonizes, so it is an orphan; at Confirm libvirt SIGTERMs the source's QEMU and polls
// every 200 ms until kill(pid, 0) fails, which it does not while the process is a zombie.
// Left to this machine's PID 1 (a VM agent that reaps orphans 1.6-1.7 s after they exit,
// measured), Confirm then takes 1.2-2.0 s in 200 ms steps, whatever the poll does.
func reapOrphans(ctx context.Context, keep func() []int) error {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("PR_SET_CHILD_SUBREAPER: %w", err)
	}
	self := os.Getpid()
	go func() {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			for _, pid := range zombieChildren(self) {
				if !slices.Contains(keep(), pid) {
					_, _ = unix.Wait4(pid, nil, unix.WNOHANG, nil)
				}
			}
		}
	}()
	return nil
}

// zombieChildren are the children of parent that have exited and wait to be reaped.
func zombieChildren(parent int) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// After the command (in parentheses): state, then the parent's PID.
		f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
		if len(f) > 1 && f[0] == "Z" && f[1] == strconv.Itoa(parent) {
			out = append(out, pid)
		}
	}
	return out
}
