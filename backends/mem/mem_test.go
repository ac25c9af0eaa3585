package mem

import (
	"bytes"
	"testing"
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
