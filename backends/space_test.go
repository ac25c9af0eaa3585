package backends

import (
	"strings"
	"testing"
)

func TestCheckSpace(t *testing.T) {
	s := Space{Free: 12 << 30, Size: 100 << 30, Where: "127.0.0.1:/export"}
	err := CheckSpace(s, 100<<30, OpenParams{})
	if err == nil {
		t.Fatal("100 GiB accepted with 12 GiB free")
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "need 100.0 GiB for 1 bench file(s), 12.0 GiB free on 127.0.0.1:/export") || strings.Contains(msg, "\n") {
		t.Errorf("message: %q", msg)
	}
	// The rest of the run counts: 2 GiB here plus 4 × 3 GiB elsewhere.
	err = CheckSpace(s, 2<<30, OpenParams{SpaceNeeded: 12 << 30, SpaceFiles: 4})
	if err == nil || !strings.Contains(err.Error(), "need 14.0 GiB for 5 bench file(s)") {
		t.Errorf("others not counted: %v", err)
	}
	if err := CheckSpace(s, 1<<30, OpenParams{SpaceNeeded: 1 << 30, SpaceFiles: 1}); err != nil {
		t.Errorf("2 GiB of 12 refused: %v", err)
	}
	// Nothing new to allocate: nothing to check, even on a full disk.
	if err := CheckSpace(Space{Where: "x"}, 0, OpenParams{}); err != nil {
		t.Errorf("nothing needed: %v", err)
	}
	// The margin: 64 MiB, at most 5% of a small filesystem.
	if err := CheckSpace(Space{Free: 100 << 20, Size: 1 << 40}, 50<<20, OpenParams{}); err == nil {
		t.Error("50 MiB of 100 MiB free accepted though 64 MiB must stay free")
	}
	if err := CheckSpace(Space{Free: 64 << 20, Size: 64 << 20}, 50<<20, OpenParams{}); err != nil {
		t.Errorf("50 MiB on an empty 64 MiB filesystem refused: %v", err)
	}
}

func TestSpaceMargin(t *testing.T) {
	for _, c := range []struct{ need, size, want int64 }{
		{1 << 30, 0, 64 << 20},
		{100 << 30, 0, 5 << 30},
		{1 << 20, 64 << 20, 64 << 20 / 20},
	} {
		if got := SpaceMargin(c.need, c.size); got != c.want {
			t.Errorf("SpaceMargin(%d, %d) = %d, want %d", c.need, c.size, got, c.want)
		}
	}
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{100: "100 B", 1 << 30: "1.0 GiB", 12*(1<<30) + 3*(1<<28): "12.8 GiB", 1536: "1.5 KiB"} {
		if got := HumanBytes(n); got != want {
			t.Errorf("HumanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestFileNames(t *testing.T) {
	if got := DirFile("vb", OpenParams{Job: 2}); got != "vb.job2.dat" {
		t.Errorf("one file: %q", got)
	}
	if got := DirFile("vb", OpenParams{Job: 2, File: 3, NrFiles: 4}); got != "vb.job2.3.dat" {
		t.Errorf("file 3: %q", got)
	}
	if got := DirFile("vb", OpenParams{Job: 2, FileName: "x.2.0"}); got != "x.2.0" {
		t.Errorf("FileName: %q", got)
	}
	if got := NamedFile("d/vm.img", OpenParams{Job: 1, File: 2, NrFiles: 3}); got != "d/vm.img.1.f2" {
		t.Errorf("named: %q", got)
	}
	if got := NamedFile("d/vm.img", OpenParams{NrFiles: 3}); got != "d/vm.img" {
		t.Errorf("named file 0: %q", got)
	}
}

func TestLayoutProgress(t *testing.T) {
	m := &memWriter{data: make([]byte, 4<<20), fail: -1}
	var calls, last, total int64
	err := Layout(m, 0, 3<<20+7, 1<<20, 3, func(done, tot int64) {
		calls++
		if done < last {
			t.Errorf("progress went back: %d after %d", done, last)
		}
		last, total = done, tot
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls != 5 || last != 3<<20+7 || total != 3<<20+7 {
		t.Errorf("calls %d, last %d, total %d", calls, last, total)
	}
}
