package migrate

import (
	"context"
	"fmt"
	"time"

	"github.com/vmstorbench/vmstorbench/vm/agent"
	"github.com/vmstorbench/vmstorbench/vm/guest"
	"github.com/vmstorbench/vmstorbench/vm/qemu"
)

// bootSource starts the source QEMU and waits for the agent, choosing the accelerator.
func (s *scenario) bootSource(ctx context.Context, objs []string) (accel, note string, hello agent.Message, err error) {
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
		hello, err = s.startSource(ctx, "kvm", objs, timeout)
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
	hello, err = s.startSource(ctx, "tcg", objs, tcgBootTimeout)
	if err != nil {
		return "", "", hello, err
	}
	if note == "" {
		note = "TCG requested"
	}
	return "tcg", note, hello, nil
}

func (s *scenario) vmConfig(name, accel string, objs []string) qemu.Config {
	cfg := s.cfg
	drive := &s.drive
	if name == "destination" {
		drive = &s.dstDrive
	}
	return qemu.Config{
		Name: name, Dir: s.dir, Binary: s.qemuBin, Accel: accel, Firmware: guest.Firmware(),
		MemoryMiB: cfg.MemoryMiB, CPUs: cfg.CPUs,
		Kernel: cfg.Image.Kernel, Initrd: cfg.Image.Initrd, Append: cfg.Image.Cmdline,
		Drive: drive, AgentPortName: guest.AgentPortName, Objects: objs,
	}
}

// startSource starts the source QEMU with accel and waits up to timeout for the agent.
func (s *scenario) startSource(ctx context.Context, accel string, objs []string, timeout time.Duration) (agent.Message, error) {
	vcfg := s.vmConfig("source", accel, objs)
	vm, err := qemu.Start(ctx, vcfg, s.eventSink("source"))
	if err != nil {
		return agent.Message{}, err
	}
	s.src = &side{name: "source", vm: vm}
	s.watchQEMU(s.src)
	connName := "source-" + accel
	conn, err := agent.Dial(ctx, connName, vcfg.AgentSocket(), s.msgs)
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
			if st, err := vm.Status(ctx); err == nil && (st == "internal-error" || st == "guest-panicked" || st == "shutdown") {
				return agent.Message{}, fmt.Errorf("source guest (%s) stopped while booting: status %s; console: %s", accel, st, lastLine(vm.Console()))
			}
		case <-t.C:
			return agent.Message{}, fmt.Errorf("no agent %s after boot (%s); console: %s", timeout, accel, lastLine(vm.Console()))
		case <-ctx.Done():
			return agent.Message{}, ctx.Err()
		}
	}
}

func (s *scenario) startDestination(ctx context.Context, accel string, objs []string) error {
	vcfg := s.vmConfig("destination", accel, objs)
	vcfg.Incoming = "defer"
	vcfg.Paused = s.cfg.CheckMemory
	vm, err := qemu.Start(ctx, vcfg, s.eventSink("destination"))
	if err != nil {
		return err
	}
	s.dst = &side{name: "destination", vm: vm}
	s.watchQEMU(s.dst)
	conn, err := agent.Dial(ctx, "destination", vcfg.AgentSocket(), s.msgs)
	if err != nil {
		return err
	}
	s.dst.conn = conn
	return nil
}
