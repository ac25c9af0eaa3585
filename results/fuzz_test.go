package results

import (
	"bytes"
	"compress/zlib"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"runtime"
	"testing"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// FuzzDecode checks what report and compare do with result documents from anywhere: no
// document may make decoding, grouping, merging, fio-json output or a comparison of two
// documents panic, hang or allocate without bound. NaN, negative counts, huge numbers,
// missing fields and bad histograms must end in an error or in figures, never in a crash.
// `go test` runs the seeds below and testdata/fuzz/FuzzDecode; `go test -run '^$' -fuzz
// FuzzDecode ./results` searches further.
func FuzzDecode(f *testing.F) {
	enc := func(r *Run) []byte {
		r.Schema = SchemaVersion
		b, err := json.Marshal(r)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	a, b := sampleRun(), sampleRun()
	b.Read.IOPS *= 0.8
	f.Add(enc(a), enc(b))
	jobs := jobFileRuns()
	f.Add(enc(jobs[0]), enc(jobs[2]))
	m := sampleRun()
	m.Labels = map[string]string{"scenario": "precopy"}
	m.Migration = &Migration{Mode: "precopy", Outcome: "completed", Windows: []MigrationWindow{{TNS: 1e9, IOs: 10}},
		Before: &MigrationPhase{StartNS: 0, EndNS: 1e9, IOs: 10}, LongestStall: &Stall{StartNS: 1, EndNS: 2},
		Outside: sampleRun(), Memory: &MemoryCheck{PageSize: 4096, Pages: 10}}
	f.Add(enc(m), enc(sampleRun()))
	f.Add([]byte(`{"schema":"vmstorbench.result/1","complete":true,"read":{"ios":-5,"iops":1e308,"lat_ns":{"n":3,"hdr":"HISTFAAAACB4nJNpmSzMwMDAxgABzFAaRDP2p4AjNzANAB0DAbk="}}}`),
		[]byte(`{"schema":"vmstorbench.result/1","complete":true,"runtime_ns":-1,"read":{"ios":1,"iops":-0,"lat_ns":{"n":1,"hdr":"!!"}}}`))
	f.Fuzz(func(t *testing.T, docA, docB []byte) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		useDocs(t, docA, docB)
		runtime.ReadMemStats(&after)
		// A histogram of the package's geometry takes ~230 KiB in memory, and a few are
		// made per direction; beyond that memory must follow the input's size.
		if grew, limit := after.TotalAlloc-before.TotalAlloc, uint64(64<<20+4096*(len(docA)+len(docB))); grew > limit {
			t.Fatalf("documents of %d and %d bytes allocated %d bytes", len(docA), len(docB), grew)
		}
	})
}

func useDocs(t *testing.T, docA, docB []byte) {
	var runs []*Run
	for _, d := range [][]byte{docA, docB} {
		r, err := Decode(d)
		if err != nil {
			continue
		}
		runs = append(runs, r)
		_ = r.Outcome()
		_ = FileName(r)
		for _, ds := range []*DirStats{r.Read, r.Write, r.Sync} {
			if ds == nil {
				continue
			}
			if h, err := DecodeHistogram(ds.Lat.Histogram); err == nil {
				_ = FioBins(h)
			}
			// Merging encodes a histogram (zlib): slow, and GroupReported merges job groups
			// too, so once.
			_, _ = MergeLatency([]Latency{ds.Lat})
		}
	}
	if len(runs) == 0 {
		return
	}
	for _, c := range Group(runs) {
		_, _, _ = c.Target(), c.Workload(), c.WorkloadName()
		_, _ = c.Complete(), c.NotOK()
		for _, dir := range c.Dirs() {
			for _, m := range Metrics {
				_ = c.Values(dir, m)
				if s, ok := c.Summary(dir, m); ok {
					_, _ = s.Spread(), s.HalfRange()
				}
			}
		}
	}
	_, _ = GroupReported(runs)
	_ = WriteFioJSON(io.Discard, runs)
	_ = WriteFioJSONPlus(io.Discard, runs)
	if len(runs) < 2 {
		return
	}
	th, err := ParseThresholds("iops<-10%,p99>+20%,write.mean>+5%,sync.max>0%")
	if err != nil {
		t.Fatal(err)
	}
	for _, match := range []bool{false, true} {
		c, err := Compare(runs[:1], runs[1:], CompareOptions{Thresholds: th, MatchTargets: match})
		if err != nil {
			continue
		}
		_, _ = c.Failures(), c.CheckCount()
		for _, cc := range c.Cases {
			_ = cc.Name()
			for _, ch := range cc.Changes {
				_, _, _, _ = ch.Better(), ch.Worse(), ch.Failed(), ch.Verdict()
			}
		}
		if err := WriteJUnit(io.Discard, c); err != nil {
			t.Fatalf("junit: %v", err)
		}
	}
}

// TestDecodeHistogramRefusesWideGeometry: a histogram header of 5 significant figures over
// 1..MaxInt64 made DecodeHistogram allocate ~50 MiB for a string of ~60 bytes. Headers of
// more figures than the package writes are refused before decoding; its own still decode.
func TestDecodeHistogramRefusesWideGeometry(t *testing.T) {
	// reheader re-encodes h's encoding with another highest trackable value.
	reheader := func(t *testing.T, h *hdrhistogram.Histogram, highest int64) string {
		enc, err := h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := base64.StdEncoding.DecodeString(string(enc))
		if err != nil {
			t.Fatal(err)
		}
		z, err := zlib.NewReader(bytes.NewReader(raw[8:]))
		if err != nil {
			t.Fatal(err)
		}
		plain, err := io.ReadAll(z)
		if err != nil {
			t.Fatal(err)
		}
		binary.BigEndian.PutUint64(plain[24:], uint64(highest))
		var zb bytes.Buffer
		zw := zlib.NewWriter(&zb)
		zw.Write(plain)
		zw.Close()
		out := binary.BigEndian.AppendUint32(append([]byte{}, raw[:4]...), uint32(zb.Len()))
		return base64.StdEncoding.EncodeToString(append(out, zb.Bytes()...))
	}
	small := hdrhistogram.New(1, 1000, 5)
	_ = small.RecordValue(7)
	ours := NewHistogram()
	_ = ours.RecordValue(12345)
	for _, tc := range []struct {
		name string
		hdr  string
		ok   bool
	}{
		{"5 figures over 1..MaxInt64", reheader(t, small, math.MaxInt64), false},
		{"5 figures, small range", reheader(t, small, 1000), false},
		{"the package's own, 1..MaxInt64", reheader(t, ours, math.MaxInt64), true},
		{"the package's own", reheader(t, ours, HistHighestNS), true},
	} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		h, err := DecodeHistogram(tc.hdr)
		runtime.ReadMemStats(&after)
		if tc.ok != (err == nil) {
			t.Errorf("%s: %v", tc.name, err)
		}
		if err == nil && h.TotalCount() != 1 {
			t.Errorf("%s: %d values", tc.name, h.TotalCount())
		}
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 4<<20 {
			t.Errorf("%s: decoding %d bytes allocated %d bytes", tc.name, len(tc.hdr), grew)
		}
	}
}
