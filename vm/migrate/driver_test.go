package migrate

import (
	"errors"
	"testing"

	"github.com/vmstorbench/vmstorbench/vm/hv"
)

// withoutCaps is a driver offering none of hv's optional capabilities (as libvirt's lacks
// the memory dump and QEMU's block jobs); supportedBy never calls anything but Name and
// Supports.
type withoutCaps struct{ hv.Driver }

func (withoutCaps) Name() string                { return "libvirt" }
func (withoutCaps) Supports(hv.Capability) bool { return false }

func TestSupportedByRefusesMissingCapabilities(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"shared pre-copy", Config{Mode: ModePrecopy, Storage: StorageShared}, ""},
		{"memory check", Config{Mode: ModePrecopy, CheckMemory: true}, "--check-memory is not supported by the libvirt driver"},
		{"mirror", Config{Mode: ModePrecopy, Storage: StorageMirror}, "--storage mirror is not supported by the libvirt driver"},
		{"copy", Config{Mode: ModeStopcopy, Storage: StorageCopy}, "--storage copy is not supported by the libvirt driver"},
		{"pull", Config{Mode: ModePostcopy, Storage: StoragePull}, "--storage pull is not supported by the libvirt driver"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.supportedBy(withoutCaps{})
			if tc.want == "" {
				if err != nil {
					t.Fatalf("supportedBy: %v", err)
				}
				return
			}
			if err == nil || err.Error() != tc.want || !errors.Is(err, hv.ErrUnsupported) {
				t.Fatalf("supportedBy = %v, want %q", err, tc.want)
			}
		})
	}
}
