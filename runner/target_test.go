package runner

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/vmstorbench/vmstorbench/testbed"
)

// TestResolveTestbedSkipsHypervisors: --testbed (all) runs on the storage endpoints only; a
// hypervisor endpoint is still found by name.
func TestResolveTestbedSkipsHypervisors(t *testing.T) {
	dir := t.TempDir()
	st := testbed.State{Endpoints: []testbed.Endpoint{
		{Name: "nfs-go", URL: "nfs://127.0.0.1:2049/"},
		{Name: "libvirt-1", URL: "qemu+unix:///session?socket=/tmp/s", Kind: testbed.KindHypervisor},
	}}
	data, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, testbed.StateFile), data, 0o600); err != nil {
		t.Fatal(err)
	}
	all, _, err := ResolveTestbed(nil, true, dir)
	if err != nil || len(all) != 1 || all[0].Name != "nfs-go" {
		t.Errorf("all: %+v %v", all, err)
	}
	named, _, err := ResolveTestbed([]string{"testbed:libvirt-1"}, false, dir)
	if err != nil || len(named) != 1 || named[0].URL != "qemu+unix:///session?socket=/tmp/s" {
		t.Errorf("by name: %+v %v", named, err)
	}
}
