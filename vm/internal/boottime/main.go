// Command boottime boots the guest under TCG a few times and says where the time goes, to
// compare boot set-ups on this machine (it is how the figures in vm/guest were measured):
//
//   - qmp: QEMU's own start, until its QMP socket answers;
//   - console: the host time of the guest console's first byte (with -append
//     earlyprintk=serial,ttyS0 -drop quiet: the kernel's first message);
//   - hello: the agent's hello as the host received it, the figure that counts;
//   - uptime, agent code, modules: the agent's own readings (guest clock, which lags early
//     in the boot): when it was ready, when its code started, how long modules took;
//   - qemu cpu: the CPU time QEMU used until the hello. Under TCG the boot is CPU-bound, and
//     on a shared machine this varies less than the wall-clock figures.
//
// Run it from the source tree: go run ./vm/internal/boottime -n 5 [-append WORDS] [-drop
// WORDS] [-extra 'QEMU ARGS'] [-agent BIN | -image DIR] [-console].
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vmstorbench/vmstorbench/vm/agent"
	"github.com/vmstorbench/vmstorbench/vm/guest"
	"github.com/vmstorbench/vmstorbench/vm/qemu"
)

type options struct {
	agentBin, imageDir, appendWords, dropWords, extra, cpu string
	memMiB                                                 int
	console                                                bool
}

// boot is one boot's figures.
type boot struct {
	cpu, qmp, console, hello, uptime, agentCode, modules time.Duration
	consoleText                                          string
}

func main() {
	var o options
	n := flag.Int("n", 3, "number of boots")
	flag.StringVar(&o.agentBin, "agent", "", "static agent binary (default: "+guest.AgentPackage+" built from the source tree)")
	flag.StringVar(&o.imageDir, "image", "", "boot this cached image directory (its image.json) instead of building one")
	flag.StringVar(&o.appendWords, "append", "", "kernel command line words to add (before the agent's arguments)")
	flag.StringVar(&o.dropWords, "drop", "", "comma-separated kernel command line words to remove (with their =value)")
	flag.StringVar(&o.extra, "extra", "", "extra QEMU arguments, space separated")
	flag.StringVar(&o.cpu, "cpu", "", "QEMU -cpu model")
	flag.IntVar(&o.memMiB, "m", 256, "guest memory in MiB")
	flag.BoolVar(&o.console, "console", false, "print the guest console of the last boot")
	flag.Parse()
	if err := run(context.Background(), o, *n); err != nil {
		fmt.Fprintln(os.Stderr, "boottime:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options, n int) error {
	img, err := image(ctx, o)
	if err != nil {
		return err
	}
	cmdline := strings.Fields(img.Cmdline)
	for _, w := range strings.Split(o.dropWords, ",") {
		cmdline = removeWord(cmdline, w)
	}
	if o.appendWords != "" {
		for i, w := range cmdline {
			if strings.HasPrefix(w, "rdinit=") {
				cmdline = append(cmdline[:i:i], append(strings.Fields(o.appendWords), cmdline[i:]...)...)
				break
			}
		}
	}
	fmt.Printf("kernel %s (%s), initrd %s\ncmdline %s\n", img.Kernel, img.KernelFormat, fileSize(img.Initrd), strings.Join(cmdline, " "))
	var all []boot
	for i := 0; i < n; i++ {
		b, err := bootOnce(ctx, o, img, strings.Join(cmdline, " "))
		if err != nil {
			return err
		}
		fmt.Printf("boot %d: qemu cpu %s, qmp %s, console %s, hello %s (guest uptime %s, agent code at %s, modules %s)\n",
			i, r(b.cpu), r(b.qmp), r(b.console), r(b.hello), r(b.uptime), r(b.agentCode), r(b.modules))
		all = append(all, b)
	}
	med := func(f func(b boot) time.Duration) time.Duration {
		v := make([]time.Duration, len(all))
		for i, b := range all {
			v[i] = f(b)
		}
		sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
		return r(v[len(v)/2])
	}
	fmt.Printf("median: qemu cpu %s, qmp %s, hello %s, guest uptime %s, agent code at %s, modules %s\n",
		med(func(b boot) time.Duration { return b.cpu }), med(func(b boot) time.Duration { return b.qmp }),
		med(func(b boot) time.Duration { return b.hello }), med(func(b boot) time.Duration { return b.uptime }),
		med(func(b boot) time.Duration { return b.agentCode }), med(func(b boot) time.Duration { return b.modules }))
	if o.console && len(all) > 0 {
		fmt.Println(all[len(all)-1].consoleText)
	}
	return nil
}

// image builds (or finds in the cache) the guest image, or loads the one in o.imageDir.
func image(ctx context.Context, o options) (*guest.Image, error) {
	if o.imageDir != "" {
		b, err := os.ReadFile(filepath.Join(o.imageDir, "image.json"))
		if err != nil {
			return nil, err
		}
		img := new(guest.Image)
		if err := json.Unmarshal(b, img); err != nil {
			return nil, fmt.Errorf("%s: %w", o.imageDir, err)
		}
		img.Initrd = filepath.Join(o.imageDir, "initrd.cpio")
		return img, nil
	}
	cache := guest.DefaultCacheDir()
	bin := o.agentBin
	if bin == "" {
		var err error
		if bin, err = guest.BuildAgent(ctx, cache, guest.AgentPackage); err != nil {
			return nil, err
		}
	}
	return guest.Build(ctx, guest.Options{CacheDir: cache, Agent: bin})
}

func bootOnce(ctx context.Context, o options, img *guest.Image, cmdline string) (boot, error) {
	var b boot
	dir, err := os.MkdirTemp("", "vsb-bt-")
	if err != nil {
		return b, err
	}
	defer os.RemoveAll(dir)
	cfg := qemu.Config{
		Name: "bt", Dir: dir, Accel: "tcg", MemoryMiB: o.memMiB, CPU: o.cpu, Firmware: guest.Firmware(),
		Kernel: img.Kernel, Initrd: img.Initrd, Append: cmdline, AgentPortName: guest.AgentPortName,
		Extra: strings.Fields(o.extra),
	}
	start := time.Now()
	vm, err := qemu.Start(ctx, cfg, nil)
	if err != nil {
		return b, err
	}
	defer vm.Stop()
	b.qmp = time.Since(start)
	stopPoll := make(chan struct{})
	firstByte := make(chan time.Duration, 1)
	go func() {
		for {
			if st, err := os.Stat(cfg.ConsoleLog()); err == nil && st.Size() > 0 {
				firstByte <- time.Since(start)
				return
			}
			select {
			case <-stopPoll:
				firstByte <- 0
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	msgs := make(chan agent.Message, 16)
	conn, err := agent.Dial(ctx, "bt", cfg.AgentSocket(), msgs)
	if err != nil {
		return b, err
	}
	defer conn.Close()
	select {
	case m := <-msgs:
		if m.Hello == nil {
			return b, fmt.Errorf("first message from the agent is not its hello: %+v", m)
		}
		b.hello, b.cpu = m.At.Sub(start), procCPU(vm.PID())
		b.uptime, b.agentCode, b.modules = time.Duration(m.Hello.UptimeNS), time.Duration(m.Hello.StartNS), time.Duration(m.Hello.ModulesNS)
	case <-time.After(60 * time.Second):
		return b, fmt.Errorf("no hello after 60 s; console: %s; QEMU: %s", vm.Console(), vm.Log())
	}
	close(stopPoll)
	b.console = <-firstByte
	_ = conn.Quit()
	b.consoleText = vm.ConsoleTail(1 << 20)
	return b, nil
}

func removeWord(ws []string, w string) []string {
	if w == "" {
		return ws
	}
	out := ws[:0]
	for _, x := range ws {
		if x != w && !strings.HasPrefix(x, w+"=") {
			out = append(out, x)
		}
	}
	return out
}

func r(d time.Duration) time.Duration { return d.Round(time.Millisecond) }

func fileSize(p string) string {
	st, err := os.Stat(p)
	if err != nil {
		return "?"
	}
	return fmt.Sprintf("%.1f MiB", float64(st.Size())/(1<<20))
}

// procCPU is the CPU time (user + system) process pid has used, 0 if unknown.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	// utime and stime are fields 14 and 15, in clock ticks (USER_HZ, 100 on Linux); the
	// fields after the command name start at field 3.
	if len(f) < 13 {
		return 0
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if errors.Join(err1, err2) != nil {
		return 0
	}
	return time.Duration(ut+st) * 10 * time.Millisecond
}
