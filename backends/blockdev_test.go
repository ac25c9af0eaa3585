package backends

import (
	"errors"
	"io"
	"testing"
)

func TestBlockDevice(t *testing.T) {
	d := BlockDevice{Scheme: "x", What: "the disk", Size: 10, MaxIO: 4}
	type call struct{ off, n int64 }
	tests := []struct {
		name    string
		write   bool
		off     int64
		n       int
		wantN   int
		wantErr error
		calls   []call
	}{
		{"split into MaxIO pieces", false, 0, 10, 10, nil, []call{{0, 4}, {4, 4}, {8, 2}}},
		{"clipped at the end", false, 8, 4, 2, io.EOF, []call{{8, 2}}},
		{"past the end", false, 10, 4, 0, io.EOF, nil},
		{"empty", false, 20, 0, 0, nil, nil},
		{"write split", true, 2, 8, 8, nil, []call{{2, 4}, {6, 4}}},
		{"write past the end refused whole", true, 8, 4, 0, errors.New("beyond the end"), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []call
			do := func(p []byte, off int64) error { got = append(got, call{off, int64(len(p))}); return nil }
			var n int
			var err error
			if tc.write {
				n, err = d.WriteAt(make([]byte, tc.n), tc.off, do)
			} else {
				n, err = d.ReadAt(make([]byte, tc.n), tc.off, do)
			}
			if n != tc.wantN || (err == nil) != (tc.wantErr == nil) || (err != nil && err != io.EOF && tc.wantErr == io.EOF) {
				t.Errorf("n %d err %v, want %d %v", n, err, tc.wantN, tc.wantErr)
			}
			if len(got) != len(tc.calls) {
				t.Fatalf("calls %v, want %v", got, tc.calls)
			}
			for i := range got {
				if got[i] != tc.calls[i] {
					t.Errorf("calls %v, want %v", got, tc.calls)
				}
			}
		})
	}
	// A failing piece reports the bytes done before it.
	fail := errors.New("boom")
	n, err := d.ReadAt(make([]byte, 10), 0, func(_ []byte, off int64) error {
		if off == 4 {
			return fail
		}
		return nil
	})
	if n != 4 || !errors.Is(err, fail) {
		t.Errorf("failing piece: %d, %v", n, err)
	}
}
