package migrate

import (
	"encoding/json"
	"os"
	"path/filepath"
	"time"

	"github.com/vmstorbench/vmstorbench/bench"
)

// kvmProbe is the remembered verdict of a KVM boot check, so that "--accel auto" on a host
// whose KVM cannot run the guest (this one's /dev/kvm is a paravirtual KVM on which a stock
// kernel never boots) pays for the check once, not on every run. It is keyed by the host
// kernel and the QEMU version; delete the file to check again.
type kvmProbe struct {
	HostKernel string    `json:"host_kernel"`
	QEMU       string    `json:"qemu"`
	Usable     bool      `json:"usable"`
	Reason     string    `json:"reason"`
	Checked    time.Time `json:"checked"`
}

const kvmProbeFile = "kvm-probe.json"

// kvmAvailable reports whether /dev/kvm can be opened for reading and writing.
func kvmAvailable() (bool, string) {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return false, "no usable /dev/kvm (" + err.Error() + ")"
	}
	f.Close()
	return true, ""
}

// loadKVMProbe returns a remembered verdict for this host kernel and QEMU, if any.
func loadKVMProbe(cacheDir, qemuVersion string) *kvmProbe {
	if cacheDir == "" {
		return nil
	}
	b, err := os.ReadFile(filepath.Join(cacheDir, kvmProbeFile))
	if err != nil {
		return nil
	}
	var p kvmProbe
	if json.Unmarshal(b, &p) != nil || p.HostKernel != bench.HostFacts().Kernel || p.QEMU != qemuVersion {
		return nil
	}
	return &p
}

func saveKVMProbe(cacheDir, qemuVersion string, usable bool, reason string) {
	if cacheDir == "" {
		return
	}
	p := kvmProbe{HostKernel: bench.HostFacts().Kernel, QEMU: qemuVersion, Usable: usable, Reason: reason, Checked: time.Now().UTC()}
	b, _ := json.MarshalIndent(p, "", "  ")
	if os.MkdirAll(cacheDir, 0o755) == nil {
		_ = os.WriteFile(filepath.Join(cacheDir, kvmProbeFile), b, 0o644)
	}
}
