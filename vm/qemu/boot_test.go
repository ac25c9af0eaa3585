package qemu_test

import (
	"context"
	"testing"
	"time"

	"github.com/vmstorbench/vmstorbench/vm/agent"
	"github.com/vmstorbench/vmstorbench/vm/guest"
	"github.com/vmstorbench/vmstorbench/vm/internal/vmtest"
	"github.com/vmstorbench/vmstorbench/vm/qemu"
)

// TestIntegrationBoot boots the guest under TCG and waits for the agent's hello.
func TestIntegrationBoot(t *testing.T) {
	img := vmtest.Image(t)
	dir, err := vmtest.ShortTempDir(t)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := qemu.Config{
		Name: "boot", Dir: dir, Accel: "tcg", MemoryMiB: 256, Firmware: guest.Firmware(),
		Kernel: img.Kernel, Initrd: img.Initrd, Append: img.Cmdline,
		AgentPortName: guest.AgentPortName,
	}
	start := time.Now()
	vm, err := qemu.Start(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Stop()
	msgs := make(chan agent.Message, 16)
	conn, err := agent.Dial(ctx, "boot", cfg.AgentSocket(), msgs)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	select {
	case m := <-msgs:
		if m.Hello == nil {
			t.Fatalf("first message is not hello: %+v", m)
		}
		t.Logf("agent ready %s after QEMU start (guest uptime %s: agent code from %s, modules %s; kernel %s, %s)",
			m.At.Sub(start).Round(time.Millisecond), time.Duration(m.Hello.UptimeNS).Round(time.Millisecond), time.Duration(m.Hello.StartNS).Round(time.Millisecond),
			time.Duration(m.Hello.ModulesNS).Round(time.Millisecond), m.Hello.Kernel, img.KernelFormat)
	case <-ctx.Done():
		t.Fatalf("no hello: %v; console: %s; log: %s", ctx.Err(), vm.Console(), vm.Log())
	}
	st, err := vm.Status(ctx)
	if err != nil || st != "running" {
		t.Fatalf("status %q, %v", st, err)
	}
	if err := conn.Quit(); err != nil {
		t.Fatal(err)
	}
	if err := vm.Stop(); err != nil {
		t.Fatal(err)
	}
}
