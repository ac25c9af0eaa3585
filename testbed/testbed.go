// Package testbed starts real storage servers on loopback for tests, the demo and users
// without a NAS: each Server runs in its own directory under a state dir, is stopped by the
// PID it was started with, and reports the target URLs that reach it.
package testbed

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
)

// Endpoint is one target a server offers.
type Endpoint struct {
	// Name is a short stable label ("smb", "smb-signed", "smb-encrypted", "nfs-ganesha").
	Name string `json:"name"`
	// URL is the target URL, without credentials.
	URL string `json:"url"`
	// Env names environment variables a client needs (e.g. the SMB password variable) with
	// their values; the testbed writes them to a file of mode 0600, never to the URL.
	Env map[string]string `json:"env,omitempty"`
	// Security is the security level this endpoint exercises ("none", "signed", "encrypted",
	// "auth_sys", "chap").
	Security string `json:"security,omitempty"`
	// Kind is KindHypervisor for a hypervisor's URI (the libvirt pair), "" for storage
	// targets: `run --testbed` runs on every storage endpoint, never on these.
	Kind string `json:"kind,omitempty"`
}

// KindHypervisor marks the endpoints that are hypervisors, not storage.
const KindHypervisor = "hypervisor"

// Server is one real server the testbed can run.
type Server interface {
	// Name is the server's name in `testbed up --only` and `status` ("samba", "ganesha").
	Name() string
	// Start starts the server with its files under dir (created by the caller) and returns
	// once it accepts connections, or an error within the context's deadline.
	Start(ctx context.Context, dir string) ([]Endpoint, error)
	// Stop stops what Start started, by PID, and waits for it to exit.
	Stop() error
	// PIDs lists the processes Start started (empty for in-process servers).
	PIDs() []int
}

// ErrMissingBinary is wrapped by MissingBinary errors.
var ErrMissingBinary = errors.New("missing server binary")

// LookPath finds a server binary, or names the Debian package that provides it.
func LookPath(binary, debianPackage string) (string, error) {
	p, err := exec.LookPath(binary)
	if err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin"} {
		if p, err := exec.LookPath(dir + "/" + binary); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: %s not found: install the Debian package %s (apt-get install %s)", ErrMissingBinary, binary, debianPackage, debianPackage)
}
