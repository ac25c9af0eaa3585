package hv_test

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vmstorbench/vmstorbench/vm/hv"
)

// limited is a driver that offers none of the optional capabilities, to check the refusal
// wording; it never boots anything.
type limited struct{ hv.Driver }

func (limited) Name() string                { return "libvirt" }
func (limited) Supports(hv.Capability) bool { return false }

type full struct{ limited }

func (full) Supports(hv.Capability) bool { return true }

func TestRequire(t *testing.T) {
	for _, tc := range []struct {
		name string
		d    hv.Driver
		want string
	}{
		{"supported", full{}, ""},
		{"refused", limited{}, "--check-memory is not supported by the libvirt driver"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := hv.Require(tc.d, hv.CapMemoryDump, "--check-memory")
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Require: %v", err)
				}
				return
			}
			if err == nil || err.Error() != tc.want || !errors.Is(err, hv.ErrUnsupported) {
				t.Fatalf("Require = %v, want %q wrapping ErrUnsupported", err, tc.want)
			}
		})
	}
}

func TestStateStopped(t *testing.T) {
	for st, want := range map[hv.State]bool{
		hv.StateRunning: false, hv.StatePaused: false, hv.StateInMigrate: false, "postmigrate": false,
		hv.StateError: true, hv.StatePanicked: true, hv.StateShutdown: true,
	} {
		if st.Stopped() != want {
			t.Errorf("%s.Stopped() = %v", st, !want)
		}
	}
}

// The guest agent is linked into every guest image and booted under TCG: it must not grow
// by a hypervisor driver (design note, orchestration.md section 4).
func TestGuestAgentLinksNoDriver(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command (go test puts it on PATH): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, gobin, "list", "-deps", "github.com/vmstorbench/vmstorbench/vm/internal/guestagent").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v: %s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		for _, banned := range []string{"github.com/vmstorbench/vmstorbench/vm/hv", "github.com/vmstorbench/vmstorbench/runner", "github.com/digitalocean/go-libvirt", "libvirt.org/go"} {
			if pkg == banned || strings.HasPrefix(pkg, banned+"/") {
				t.Errorf("the guest agent links %s", pkg)
			}
		}
	}
}
