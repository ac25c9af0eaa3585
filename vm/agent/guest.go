package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/bench"
	"github.com/vmstorbench/vmstorbench/internal/version"
)

// Options configure the in-guest agent.
type Options struct {
	// Port is the virtio-serial port name to talk over.
	Port string
	// Modules, if set, is a file listing kernel modules in its directory to load before
	// looking for the port: one stage a line, dependencies in earlier stages, the names of a
	// stage separated by spaces (loaded at the same time).
	Modules string
	// PortTimeout bounds the wait for the port to appear (default 10 s).
	PortTimeout time.Duration
	// FlushEvery is how often completions are sent (default 10 ms).
	FlushEvery time.Duration
	// Init is set when the agent is the guest's first process (the kernel's rdinit): it
	// mounts /proc, /sys and /dev itself and powers the guest off when it ends, saving the
	// shell and the mount processes a script would start (process creation is slow under
	// TCG).
	Init bool
}

// maxBuffered bounds the completions held while the host is not reading; beyond it they
// are counted as dropped.
const maxBuffered = 1 << 20

// Run is the agent: it loads modules, opens the port, says hello and runs the host's tasks
// one at a time until the host says quit or ctx ends.
func Run(ctx context.Context, o Options) error {
	if o.Init {
		err := run(ctx, o, true)
		if err != nil {
			fmt.Fprintln(os.Stderr, "vmstorbench agent:", err)
		}
		// The first process must not exit (the kernel would panic): power off instead.
		unix.Sync()
		_ = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
		return err
	}
	return run(ctx, o, false)
}

func run(ctx context.Context, o Options, init bool) error {
	t0 := time.Now()
	startNS := uptimeNS()
	if init {
		if err := mountKernelFilesystems(); err != nil {
			return err
		}
	}
	if o.PortTimeout <= 0 {
		o.PortTimeout = 10 * time.Second
	}
	if o.FlushEvery <= 0 {
		o.FlushEvery = 10 * time.Millisecond
	}
	var modNS int64
	if o.Modules != "" {
		if err := loadModules(o.Modules); err != nil {
			return err
		}
		modNS = int64(time.Since(t0))
	}
	dev, err := findPort(ctx, o.Port, o.PortTimeout)
	if err != nil {
		return err
	}
	port, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("agent: open %s: %w", dev, err)
	}
	defer port.Close()
	hello := Hello{Version: version.String(), Kernel: bench.HostFacts().Kernel, StartNS: startNS, UptimeNS: uptimeNS(), ModulesNS: modNS, Port: o.Port}
	return serveOn(ctx, port, t0, o.FlushEvery, hello)
}

// serveOn says hello on port and serves the host's tasks on it.
func serveOn(ctx context.Context, port io.ReadWriter, t0 time.Time, flushEvery time.Duration, hello Hello) error {
	a := &guestAgent{port: port, t0: t0, flushEvery: flushEvery}
	if err := a.sendJSON(FrameHello, hello); err != nil {
		return err
	}
	return a.serve(ctx)
}

type guestAgent struct {
	port       io.ReadWriter
	t0         time.Time
	flushEvery time.Duration

	wmu sync.Mutex // serialises frames on the port

	mu sync.Mutex
	// running holds, per running task, the channel whose closing ends it gracefully (the
	// engine's Stop); stopped marks the tasks the host ended that way.
	running map[int]chan struct{}
	stopped map[int]bool
	wg      sync.WaitGroup
}

func (a *guestAgent) send(typ byte, payload []byte) error {
	a.wmu.Lock()
	defer a.wmu.Unlock()
	return WriteFrame(a.port, typ, payload)
}

func (a *guestAgent) sendJSON(typ byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return a.send(typ, b)
}

func (a *guestAgent) logf(format string, args ...any) {
	_ = a.send(FrameLog, []byte(fmt.Sprintf(format, args...)))
}

// serve reads host frames until quit.
func (a *guestAgent) serve(ctx context.Context) error {
	a.running, a.stopped = map[int]chan struct{}{}, map[int]bool{}
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		a.wg.Wait()
	}()
	r := bufio.NewReader(a.port)
	for {
		typ, p, err := ReadFrame(r)
		if err != nil {
			return fmt.Errorf("agent: read from host: %w", err)
		}
		switch typ {
		case FrameTask:
			var t Task
			if err := json.Unmarshal(p, &t); err != nil {
				a.logf("bad task: %v", err)
				continue
			}
			stop := make(chan struct{})
			a.mu.Lock()
			a.running[t.ID] = stop
			a.mu.Unlock()
			a.wg.Add(1)
			go func() {
				defer a.wg.Done()
				a.runTask(ctx, t, stop)
			}()
		case FrameStop:
			var s StopTask
			if err := json.Unmarshal(p, &s); err != nil {
				continue
			}
			a.mu.Lock()
			if stop := a.running[s.ID]; stop != nil && !a.stopped[s.ID] {
				a.stopped[s.ID] = true
				close(stop)
			}
			a.mu.Unlock()
		case FrameQuit:
			return nil
		}
	}
}

// runTask runs one workload with the engine and streams its completions. Closing stop ends
// it gracefully: the engine drains, runs its verify pass and returns a complete result.
// ctx ends it abruptly (the host quit or the connection broke).
func (a *guestAgent) runTask(ctx context.Context, t Task, stop <-chan struct{}) {
	var st *streamer
	cfg := bench.Config{
		Target:   t.Target,
		Workload: t.Workload,
		Interval: t.Interval,
		Stop:     stop,
		// On the guest's clock: see Task.
		StallTimeout: t.StallTimeout,
		Grace:        t.Grace,
		// The guest's disk exists only for the benchmark: writing to the block device is
		// the point.
		Open: backends.OpenParams{AllowDestructive: true},
	}
	lastPhase := ""
	cfg.Progress = func(p bench.Progress) {
		if p.Phase != lastPhase {
			lastPhase = p.Phase
			_ = a.sendJSON(FramePhase, Phase{Task: t.ID, Phase: p.Phase})
		}
	}
	cfg.ProgressEvery = 100 * time.Millisecond
	if t.Stream {
		st = newStreamer(a, t.ID, t.FlushEvery)
		cfg.Observer = st
		go st.run()
	}
	_ = a.sendJSON(FramePhase, Phase{Task: t.ID, Phase: "running"})
	run, err := bench.Run(ctx, cfg)
	res := Result{Task: t.ID, Run: run}
	if st != nil {
		res.Dropped = st.close()
	}
	a.mu.Lock()
	res.Stopped = a.stopped[t.ID]
	delete(a.running, t.ID)
	delete(a.stopped, t.ID)
	a.mu.Unlock()
	if err != nil {
		res.Error = err.Error()
	}
	if run == nil && err == nil {
		res.Error = "engine returned no result"
	}
	if err := a.sendJSON(FrameResult, res); err != nil {
		a.logf("send result: %v", err)
	}
}

// streamer is the bench.Observer: Observe appends to a buffer, and a goroutine sends the
// buffer every flushEvery.
type streamer struct {
	a     *guestAgent
	task  int
	every time.Duration

	mu      sync.Mutex
	buf     []Record
	dropped uint32

	stop chan struct{}
	done chan struct{}
}

func newStreamer(a *guestAgent, task int, every time.Duration) *streamer {
	if every <= 0 {
		every = a.flushEvery
	}
	return &streamer{a: a, task: task, every: every, buf: make([]Record, 0, 4096), stop: make(chan struct{}), done: make(chan struct{})}
}

// Observe is called from the engine's I/O goroutines.
func (s *streamer) Observe(c bench.Completion) {
	r := Record{EndNS: int64(time.Since(s.a.t0)), LatNS: int64(c.End - c.Start), Bytes: uint32(c.Bytes), Job: uint16(c.Job), Dir: c.Dir, Err: c.Err != nil}
	s.mu.Lock()
	if len(s.buf) < maxBuffered {
		s.buf = append(s.buf, r)
	} else {
		s.dropped++
	}
	s.mu.Unlock()
}

func (s *streamer) run() {
	defer close(s.done)
	t := time.NewTicker(s.every)
	defer t.Stop()
	var seq uint32
	spare := make([]Record, 0, 4096)
	var payload []byte
	flush := func() {
		s.mu.Lock()
		recs := s.buf
		s.buf = spare[:0]
		dropped := s.dropped
		s.mu.Unlock()
		if len(recs) > 0 {
			b := &Batch{Task: s.task, Seq: seq, FlushNS: int64(time.Since(s.a.t0)), Dropped: dropped, Records: recs}
			seq++
			payload = AppendBatch(payload[:0], b)
			if err := s.a.send(FrameCompletions, payload); err != nil {
				s.mu.Lock()
				s.dropped += uint32(len(recs))
				s.mu.Unlock()
			}
		}
		spare = recs
	}
	for {
		select {
		case <-t.C:
			flush()
		case <-s.stop:
			flush()
			return
		}
	}
}

// close sends what is left and returns the number of dropped completions.
func (s *streamer) close() int64 {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return int64(s.dropped)
}

// mountKernelFilesystems mounts what /init would: proc, sysfs and devtmpfs.
func mountKernelFilesystems() error {
	for _, m := range []struct{ fstype, dir string }{{"proc", "/proc"}, {"sysfs", "/sys"}, {"devtmpfs", "/dev"}} {
		_ = os.MkdirAll(m.dir, 0o755)
		if err := unix.Mount(m.fstype, m.dir, m.fstype, 0, ""); err != nil && !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("agent: mount %s: %w", m.dir, err)
		}
	}
	return nil
}

// loadModules loads the modules named in file from the file's directory with finit_module:
// one stage a line, in order, and the modules of one stage (which do not depend on each
// other) at the same time, so that one's probing (a disk's partition scan) overlaps another's
// loading. A module that is already loaded (or built in) is fine.
func loadModules(file string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("agent: modules: %w", err)
	}
	dir := filepath.Dir(file)
	for _, line := range strings.Split(string(b), "\n") {
		names := strings.Fields(line)
		errs := make([]error, len(names))
		var wg sync.WaitGroup
		for i, name := range names {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = loadModule(filepath.Join(dir, name+".ko"), name)
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
	}
	return nil
}

func loadModule(path, name string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("agent: module %s: %w", name, err)
	}
	defer f.Close()
	if err := unix.FinitModule(int(f.Fd()), "", 0); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("agent: load module %s: %w", name, err)
	}
	return nil
}

// findPort waits for the virtio-serial port called name and returns its device path.
func findPort(ctx context.Context, name string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		ents, _ := filepath.Glob("/sys/class/virtio-ports/*/name")
		for _, e := range ents {
			b, err := os.ReadFile(e)
			if err == nil && strings.TrimSpace(string(b)) == name {
				dev := "/dev/" + filepath.Base(filepath.Dir(e))
				if _, err := os.Stat(dev); err == nil {
					return dev, nil
				}
			}
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("agent: no virtio-serial port named %q after %s (is virtio_console loaded?)", name, timeout)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// uptimeNS is the guest's uptime (CLOCK_BOOTTIME: no /proc needed), 0 if unknown.
func uptimeNS() int64 {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts) != nil {
		return 0
	}
	return ts.Nano()
}

// MountKernelFilesystems mounts /proc, /sys and /dev for a first process (other guest kinds'
// agents, such as the testbed's DRBD nodes, start the same way).
func MountKernelFilesystems() error { return mountKernelFilesystems() }

// LoadModules loads the modules listed in file (see Options.Modules).
func LoadModules(file string) error { return loadModules(file) }
