package migrate

import (
	"context"
	"fmt"
	"time"

	"github.com/vmstorbench/vmstorbench/vm/agent"
	"github.com/vmstorbench/vmstorbench/vm/guest"
	"github.com/vmstorbench/vmstorbench/vm/hv"
)

// bootSource starts the source QEMU and waits for the agent, choosing the accelerator.
func (s *scenario) bootSource(ctx context.Context) (accel, note string, hello agent.Message, err error) {
	cfg := s.cfg
	tryKVM := false
	switch cfg.Accel {
	case "kvm":
		tryKVM = true
	case "auto":
		if ok, why := kvmAvailable(); !ok {
			note = why + ": using TCG"
		} else if p := loadKVMProbe(cfg.CacheDir, s.qemuVer); p != nil && !p.Usable {
			note = fmt.Sprintf("KVM cannot boot the guest here (checked %s: %s): using TCG; delete %s/%s to check again",
				p.Checked.Format(time.RFC3339), p.Reason, cfg.CacheDir, kvmProbeFile)
		} else {
			tryKVM = true
		}
	}
	if tryKVM {
		timeout := tcgBootTimeout
		if cfg.Accel == "auto" {
			timeout = cfg.KVMBootCheck
		}
		hello, err = s.startSource(ctx, "kvm", timeout)
		if err == nil {
			if cfg.Accel == "auto" {
				saveKVMProbe(cfg.CacheDir, s.qemuVer, true, "")
			}
			return "kvm", note, hello, nil
		}
		_ = s.src.stop()
		if cfg.Accel == "kvm" || ctx.Err() != nil {
			return "", "", hello, err
		}
		reason := err.Error()
		saveKVMProbe(cfg.CacheDir, s.qemuVer, false, reason)
		note = "KVM tried and unusable (" + reason + "): fell back to TCG"
		cfg.Logf("%s", note)
	}
	hello, err = s.startSource(ctx, "tcg", tcgBootTimeout)
	if err != nil {
		return "", "", hello, err
	}
	if note == "" {
		note = "TCG requested"
	}
	return "tcg", note, hello, nil
}

// spec describes the source or destination guest for the driver.
func (s *scenario) spec(name, accel string) hv.Spec {
	cfg := s.cfg
	disk := s.drive
	if name == "destination" {
		disk = s.dstDrive
	}
	return hv.Spec{
		Name: name, Dir: s.dir, Accel: accel,
		MemoryMiB: cfg.MemoryMiB, CPUs: cfg.CPUs,
		Kernel: cfg.Image.Kernel, Initrd: cfg.Image.Initrd, Cmdline: cfg.Image.Cmdline,
		Disk: &disk, AgentPort: guest.AgentPortName, OnEvent: s.eventSink(name),
	}
}

// startSource starts the source QEMU with accel and waits up to timeout for the agent.
func (s *scenario) startSource(ctx context.Context, accel string, timeout time.Duration) (agent.Message, error) {
	vm, err := s.drv.Boot(ctx, s.spec("source", accel))
	if err != nil {
		return agent.Message{}, err
	}
	s.src = newSide("source", vm)
	s.watchQEMU(s.src)
	if vm.AgentSocket() == "" {
		// No agent channel (a libvirt domain vmstorbench did not define): nothing to wait for.
		s.hostOnly = true
		return agent.Message{At: time.Now(), Hello: &agent.Hello{}}, nil
	}
	connName := "source-" + accel
	conn, err := agent.Dial(ctx, connName, vm.AgentSocket(), s.msgs)
	if err != nil {
		return agent.Message{}, err
	}
	s.src.conn = conn
	t := time.NewTimer(timeout)
	defer t.Stop()
	poll := time.NewTicker(100 * time.Millisecond)
	defer poll.Stop()
	for {
		select {
		case m := <-s.hellos:
			if m.From == connName {
				return m, nil
			}
		case <-poll.C:
			if vm.Exited() {
				return agent.Message{}, fmt.Errorf("source QEMU (%s) exited while booting: %s", accel, vm.Log())
			}
			if st, err := vm.State(ctx); err == nil && st.Stopped() {
				return agent.Message{}, fmt.Errorf("source guest (%s) stopped while booting: status %s; console: %s", accel, st, lastLine(s.src.console()))
			}
		case <-t.C:
			return agent.Message{}, fmt.Errorf("no agent %s after boot (%s); console: %s", timeout, accel, lastLine(s.src.console()))
		case <-ctx.Done():
			return agent.Message{}, ctx.Err()
		}
	}
}
