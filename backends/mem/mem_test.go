package mem

import (
	"bytes"
	"testing"

	"github.com/vmstorbench/vmstorbench/backends"
)

func TestReadWriteAcrossStripes(t *testing.T) {
	m, err := New(4 << 20)
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte{7}, 3<<20)
	if n, err := m.WriteAt(data, stripe-100); n != len(data) || err != nil {
		t.Fatalf("WriteAt: %d %v", n, err)
	}
	got := make([]byte, len(data))
	if n, err := m.ReadAt(got, stripe-100); n != len(data) || err != nil || !bytes.Equal(got, data) {
		t.Fatalf("ReadAt: %d %v", n, err)
	}
	if _, err := m.ReadAt(make([]byte, 10), 4<<20-5); err == nil {
		t.Error("read past the end: no error")
	}
	if _, err := New(0); err == nil {
		t.Error("New(0): no error")
	}
}

// The queue completes every submitted I/O once, with what ReadAt or WriteAt return, refuses
// more than depth in flight and anything after Close.
func TestQueue(t *testing.T) {
	m, err := New(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	q, err := m.NewQueue(2)
	if err != nil {
		t.Fatal(err)
	}
	data, got := bytes.Repeat([]byte{9}, 4096), make([]byte, 4096)
	for _, c := range []struct {
		name    string
		io      backends.IO
		wantN   int
		wantErr bool
	}{
		{"write", backends.IO{Write: true, Off: 8192, Buf: data, Tag: 1}, 4096, false},
		{"read back", backends.IO{Off: 8192, Buf: got, Tag: 2}, 4096, false},
		{"read past the end", backends.IO{Off: 1<<20 - 10, Buf: make([]byte, 4096), Tag: 3}, 0, true},
	} {
		if err := q.Submit(c.io); err != nil {
			t.Fatalf("%s: Submit: %v", c.name, err)
		}
		done := q.Reap(nil, 1)
		if len(done) != 1 || done[0].Tag != c.io.Tag || done[0].N != c.wantN || (done[0].Err != nil) != c.wantErr {
			t.Errorf("%s: completions %+v, want tag %d, %d bytes, error %v", c.name, done, c.io.Tag, c.wantN, c.wantErr)
		}
	}
	if !bytes.Equal(got, data) {
		t.Error("the queued read did not return the queued write's data")
	}
	if len(q.Reap(nil, 0)) != 0 {
		t.Error("Reap with nothing in flight returned completions")
	}
	for i := range 2 {
		if err := q.Submit(backends.IO{Off: 0, Buf: got, Tag: i}); err != nil {
			t.Fatalf("Submit %d of depth 2: %v", i, err)
		}
	}
	if err := q.Submit(backends.IO{Off: 0, Buf: got}); err == nil {
		t.Error("a third I/O on a queue of depth 2: no error")
	}
	if done := q.Reap(nil, 1); len(done) != 2 {
		t.Errorf("Reap returned %d completions, want both in flight", len(done))
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if err := q.Submit(backends.IO{Off: 0, Buf: got}); err == nil {
		t.Error("Submit after Close: no error")
	}
	if _, err := m.NewQueue(0); err == nil {
		t.Error("NewQueue(0): no error")
	}
}
