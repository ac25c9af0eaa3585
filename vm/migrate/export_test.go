package migrate

import (
	"sync"
	"testing"
)

// CorruptDestinationAt makes the image check overwrite the block at off in the destination
// image before it compares (so that a test sees a differing block reported); the returned
// function undoes it.
func CorruptDestinationAt(off int64) func() {
	testCorruptDestination = off
	return func() { testCorruptDestination = -1 }
}

// TapLink has the run relay the named link ("disk", "ram") through a tap that keeps every
// byte the link carries, either way. inClear reports whether p crossed it in the clear, and
// how many bytes the tap passed back from the link's upstream (the disk export's side).
func TapLink(t *testing.T, c *Config, link string) (inClear func(p []byte) (bool, int)) {
	var mu sync.Mutex
	var tp *tap
	c.linkTap = func(name, upstream string) (string, error) {
		if name != link {
			return upstream, nil
		}
		mu.Lock()
		defer mu.Unlock()
		tp = startTap(t, upstream)
		return tp.addr, nil
	}
	return func(p []byte) (bool, int) {
		mu.Lock()
		defer mu.Unlock()
		if tp == nil {
			t.Fatalf("the run started no %s link", link)
		}
		return tp.contains(p), tp.bytesBack()
	}
}
