package drbdstate

import (
	"os"
	"path/filepath"
	"testing"
)

// seeds adds every capture in testdata to f: the fuzzer mutates real output.
func seeds(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*"))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
}

// checkState holds for any state a parser returns, whatever its input.
func checkState(t *testing.T, s State) {
	if s.OutOfSyncBytes < 0 || s.SentBytes < 0 || s.ReceivedBytes < 0 || s.WrittenBytes < 0 || s.ReadBytes < 0 || s.SizeBytes < 0 {
		t.Fatalf("negative counter: %+v", s)
	}
	if s.SyncPercent != -1 && !(s.SyncPercent >= 0 && s.SyncPercent <= 100) {
		t.Fatalf("sync percent %v", s.SyncPercent)
	}
	_ = s.Healthy()
	_ = s.Degraded()
}

func FuzzParseProc(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		_, sts, _ := ParseProc(b)
		for _, s := range sts {
			checkState(t, s)
		}
	})
}

func FuzzParseStatusJSON(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		sts, _ := ParseStatusJSON(b)
		for _, s := range sts {
			checkState(t, s)
		}
	})
}

func FuzzParseEvents2(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		s, _ := ParseEvents2(b, "r0")
		checkState(t, s)
	})
}

func FuzzParseShow(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ParseShow(b)
	})
}
