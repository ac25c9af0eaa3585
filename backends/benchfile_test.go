package backends

import (
	"bytes"
	"errors"
	"sync"
	"testing"
)

func TestJobFileNames(t *testing.T) {
	for job, want := range []string{"d/vm.img", "d/vm.img.1", "d/vm.img.2"} {
		if got := JobFile("d/vm.img", job); got != want {
			t.Errorf("JobFile job %d: %q, want %q", job, got, want)
		}
	}
	if got := DirJobFile("vmstorbench", 3); got != "vmstorbench.job3.dat" {
		t.Errorf("DirJobFile: %q", got)
	}
}

type memWriter struct {
	mu   sync.Mutex
	data []byte
	fail int64 // offset at which writes fail (-1 never)
}

func (m *memWriter) WriteAt(p []byte, off int64) (int, error) {
	if m.fail >= 0 && off >= m.fail {
		return 0, errors.New("boom")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return copy(m.data[off:], p), nil
}

func TestLayout(t *testing.T) {
	m := &memWriter{data: make([]byte, 10<<20), fail: -1}
	if err := Layout(m, 4096, 9<<20+5, 1<<20, 4, nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(m.data[:4096], make([]byte, 4096)) {
		t.Error("wrote before from")
	}
	if m.data[9<<20+4] == 0 && m.data[9<<20+3] == 0 || !bytes.Equal(m.data[9<<20+5:], make([]byte, len(m.data)-(9<<20+5))) {
		t.Error("did not write up to exactly to")
	}
	// The pattern does not repeat within a chunk (non-compressible, not zeros).
	if bytes.Equal(m.data[4096:8192], m.data[8192:12288]) {
		t.Error("pattern repeats every 4 KiB")
	}
	bad := &memWriter{data: make([]byte, 4<<20), fail: 2 << 20}
	if err := Layout(bad, 0, 4<<20, 1<<20, 2, nil); err == nil {
		t.Error("write error not returned")
	}
}
