package suiterun

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmstorbench/vmstorbench/suite"
	"github.com/vmstorbench/vmstorbench/testbed"
)

// TestLibvirtConfig: a scenario's daemons, testbed:NAME resolved from the testbed's state.
func TestLibvirtConfig(t *testing.T) {
	dir := t.TempDir()
	data, err := json.Marshal(testbed.State{Endpoints: []testbed.Endpoint{
		{Name: "libvirt-1", URL: "qemu+unix:///session?socket=/tmp/a", Kind: testbed.KindHypervisor},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, testbed.StateFile), data, 0o600); err != nil {
		t.Fatal(err)
	}
	sc := &suite.Scenario{Mode: "precopy", Security: "none", Hypervisor: "libvirt", SourceURI: "testbed:libvirt-1", DestURI: "qemu+tcp://hv2/system", Domain: "web1"}
	cfg, err := libvirtConfig(sc, dir)
	if err != nil || cfg.SourceURI != "qemu+unix:///session?socket=/tmp/a" || cfg.DestURI != "qemu+tcp://hv2/system" || cfg.Domain != "web1" {
		t.Errorf("config %+v %v", cfg, err)
	}
	sc.DestURI = "testbed:libvirt-9"
	if _, err := libvirtConfig(sc, dir); err == nil || !strings.Contains(err.Error(), `testbed has no endpoint "libvirt-9"`) {
		t.Errorf("unknown endpoint: %v", err)
	}
}

// TestLibvirtTestbedTarget: a testbed endpoint, known only when the suite runs, is checked
// against the libvirt scenario before anything starts: a mirror of an NFS endpoint is
// refused as the parser refuses a URL target.
func TestLibvirtTestbedTarget(t *testing.T) {
	sc := &suite.Scenario{Mode: "precopy", Security: "none", Storage: "mirror", MirrorCopyMode: "background", Access: "auto",
		Hypervisor: "libvirt", SourceURI: "qemu:///system", DestURI: "qemu+tcp://hv2/system"}
	pr := suite.Run{N: 1, Of: 1, Endpoint: suite.Endpoint{Name: "nfs-ganesha", URL: "nfs://127.0.0.1/export/x"}, Job: &suite.Job{Name: "oltp"}, Scenario: sc}
	_, err := runPlanned(context.Background(), &suite.Suite{Name: "t"}, pr, Options{}, nil, func(string, ...any) {}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "storage: mirror under libvirt copies a local image file, not nfs://127.0.0.1/export/x") {
		t.Errorf("mirror of a testbed NFS endpoint: %v", err)
	}
}
