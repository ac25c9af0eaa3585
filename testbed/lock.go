package testbed

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// machineLock serialises users of a resource that is global to the machine rather than to a
// process, such as rpcbind on port 111: two Ganesha instances register the same RPC programs
// there, and one's exit unregisters the other. It is an flock, so the kernel releases it
// when its holder dies.
type machineLock struct{ f *os.File }

func acquireMachineLock(ctx context.Context, name string) (*machineLock, error) {
	path := filepath.Join(os.TempDir(), "vmstorbench-"+name+".lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return &machineLock{f: f}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("another %s is running on this machine (lock %s): %w", name, path, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (l *machineLock) release() {
	if l != nil {
		l.f.Close()
	}
}
