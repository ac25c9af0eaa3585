package suiterun

import (
	"encoding/json"
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
