package bench

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto/sha256"
	"net/url"
	"strings"
	"testing"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/workloads"
)

// writes runs n writes of bs bytes through a worker's writeData (one buffer, as a worker
// has) and returns what each write carried; write i goes to block i%span.
func writes(t *testing.T, w workloads.Workload, bs, n int) [][]byte {
	return writesSpan(t, w, bs, n, n)
}

func writesSpan(t *testing.T, w workloads.Workload, bs, n, span int) [][]byte {
	t.Helper()
	w.BS = [2]workloads.BlockSize{workloads.Fixed(int64(bs)), workloads.Fixed(int64(bs))}
	plan, err := newDataPlan(w.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	buf := alignedBuffer(bs)
	wd := newWriteData(plan, buf, 42, 0)
	out := make([][]byte, n)
	for i := range out {
		wd.prepare(buf, int64(i%span)*int64(bs), 1)
		out[i] = bytes.Clone(buf)
	}
	return out
}

// savedPct is how much flate saves on b, in percent.
func savedPct(t *testing.T, b []byte) float64 {
	t.Helper()
	var out bytes.Buffer
	zw, _ := flate.NewWriter(&out, flate.DefaultCompression)
	zw.Write(b)
	zw.Close()
	return 100 * (1 - float64(out.Len())/float64(len(b)))
}

func TestBufferCompressPercentage(t *testing.T) {
	cases := []struct {
		name  string
		w     workloads.Workload
		bs    int
		saved float64 // expected, percent
	}{
		{"default", workloads.Workload{}, 4096, 0},
		{"25", workloads.Workload{BufferCompressPct: 25}, 4096, 25},
		{"50", workloads.Workload{BufferCompressPct: 50}, 4096, 50},
		{"75", workloads.Workload{BufferCompressPct: 75}, 4096, 75},
		{"90/chunk=4k/bs=64k", workloads.Workload{BufferCompressPct: 90, BufferCompressChunk: 4096}, 65536, 90},
		{"60/pattern", workloads.Workload{BufferCompressPct: 60, BufferPattern: []byte("abcdefg")}, 8192, 60},
		{"100", workloads.Workload{BufferCompressPct: 100}, 4096, 97},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Storage compresses block by block (or record by record): so does the test.
			// flate's own overhead (block headers, literal coding of random bytes) costs a few
			// points; the tolerance is what a storage compressor would also show.
			var got float64
			blocks := writes(t, c.w, c.bs, 64)
			for _, b := range blocks {
				got += savedPct(t, b) / float64(len(blocks))
			}
			if got < c.saved-6 || got > c.saved+6 {
				t.Errorf("flate saves %.1f%%, want about %.0f%%", got, c.saved)
			}
		})
	}
}

// dupShare is the share of blocks (and of 512-byte sectors) whose content an earlier one had.
func dupShare(blocks [][]byte, unit int) float64 {
	seen := map[[32]byte]bool{}
	var dups, n int
	for _, b := range blocks {
		for s := 0; s < len(b); s += unit {
			h := sha256.Sum256(b[s:min(s+unit, len(b))])
			if seen[h] {
				dups++
			}
			seen[h] = true
			n++
		}
	}
	return float64(dups) / float64(n)
}

func TestDedupePercentage(t *testing.T) {
	cases := []struct {
		name string
		w    workloads.Workload
		want float64
	}{
		{"default", workloads.Workload{}, 0},
		// fio writes buffer_pattern and compress=100 as they are: every block the same.
		{"pattern", workloads.Workload{BufferPattern: []byte{0xde, 0xad, 0xbe, 0xef}}, 1},
		{"compress=100", workloads.Workload{BufferCompressPct: 100}, 1},
		{"30", workloads.Workload{DedupePct: 30}, 0.30},
		{"75/compress=50", workloads.Workload{DedupePct: 75, BufferCompressPct: 50}, 0.75},
		{"100", workloads.Workload{DedupePct: 100}, 1},
	}
	const n = 4000
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			blocks := writes(t, c.w, 4096, n)
			got := dupShare(blocks, 4096)
			if c.want == 1 {
				// Every write but the first repeats it.
				if got != float64(n-1)/n {
					t.Errorf("%.4f of blocks repeat an earlier one, want all but the first", got)
				}
				return
			}
			if got < c.want-0.03 || got > c.want+0.03 {
				t.Errorf("%.3f of blocks repeat an earlier one, want %.2f", got, c.want)
			}
			if c.want == 0 {
				// Without dedupe, not even a 512-byte sector repeats, rewrites included.
				if s := dupShare(writesSpan(t, c.w, 4096, 64, 8), 512); s != 0 {
					t.Errorf("%.3f of sectors repeat, want none", s)
				}
			}
		})
	}
}

func TestBufferPatternFill(t *testing.T) {
	p := []byte("0123456789")
	b := make([]byte, 1000)
	fillPattern(b, p, 3)
	for i := range b {
		if b[i] != p[(i+3)%len(p)] {
			t.Fatalf("byte %d = %q, want %q", i, b[i], p[(i+3)%len(p)])
		}
	}
	// buffer_pattern without compress: exactly the pattern (fio turns scramble_buffers off).
	for _, blk := range writes(t, workloads.Workload{BufferPattern: p}, 4096, 3) {
		if i := patternMismatch(blk, p, 0); i >= 0 {
			t.Fatalf("byte %d not the pattern", i)
		}
	}
}

func TestDataOptionsValidated(t *testing.T) {
	for _, c := range []struct {
		w    workloads.Workload
		want string
	}{
		{workloads.Workload{BufferCompressPct: 101}, "buffer_compress_percentage"},
		{workloads.Workload{DedupePct: -1}, "dedupe_percentage"},
		{workloads.Workload{BufferCompressChunk: -5}, "buffer_compress_chunk"},
		{workloads.Workload{Fdatasync: -1}, "fdatasync"},
		{workloads.Workload{SyncIO: "always"}, "sync="},
		{workloads.Workload{Verify: "crc99"}, "verify="},
		{workloads.Workload{Verify: "pattern"}, "verify_pattern"},
		{workloads.Workload{VerifyPattern: []byte{1}}, "verify_pattern"},
		{workloads.Workload{Verify: "md5", VerifyInterval: 1000}, "verify_interval"},
		{workloads.Workload{Verify: "sha256", VerifyInterval: 64}, "verify_interval"},
		{workloads.Workload{Verify: "md5", VerifyInterval: -512}, "verify_interval"},
	} {
		if _, err := newDataPlan(c.w.Defaults()); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: err %v, want one naming %s", c.w, err, c.want)
		}
	}
	// The engine refuses them before opening anything.
	reg, opened := registry(t, memTarget)
	_, err := Run(context.Background(), Config{Target: "test://", Registry: reg, Workload: workloads.Workload{DedupePct: 200, Size: 1 << 20}})
	if err == nil || !strings.Contains(err.Error(), "dedupe_percentage") || len(*opened) != 0 {
		t.Errorf("err %v, %d targets opened; want a dedupe_percentage error and none", err, len(*opened))
	}
}

// The hot path allocates nothing, whatever the buffer and verify options.
func TestWriteDataDoesNotAllocate(t *testing.T) {
	for _, w := range []workloads.Workload{
		{},
		{DedupePct: 50, BufferCompressPct: 50},
		{Verify: "crc32c"},
		{Verify: "md5", VerifyInterval: 1024},
		{Verify: "sha256"},
		{Verify: "meta", VerifyPattern: []byte{1, 2, 3}},
		{Verify: "pattern", VerifyPattern: []byte{1, 2, 3}},
	} {
		w.BS = bs(4096)
		plan, err := newDataPlan(w.Defaults())
		if err != nil {
			t.Fatal(err)
		}
		buf := alignedBuffer(4096)
		wd := newWriteData(plan, buf, 1, 0)
		var off int64
		allocs := testing.AllocsPerRun(200, func() {
			off += 4096
			wd.prepare(buf, off, 7)
			if plan.verify != nil {
				plan.verify.check(buf, off, 7)
			}
		})
		if allocs != 0 {
			t.Errorf("%+v: %.1f allocations per write", w, allocs)
		}
	}
}

// End to end: what reaches the target dedupes and compresses as asked.
func TestRunWritesDedupableData(t *testing.T) {
	var tt *testTarget
	r := &backends.Registry{}
	r.Register(backends.Backend{Scheme: "test", Open: func(_ context.Context, _ *url.URL, p backends.OpenParams) (backends.Target, error) {
		tt = memTarget(p.Size)
		return tt, nil
	}})
	w := workloads.Workload{RW: "randwrite", Size: 4 << 20, DedupePct: 40, BufferCompressPct: 50}
	if _, err := Run(context.Background(), Config{Target: "test://", Registry: r, Workload: w}); err != nil {
		t.Fatal(err)
	}
	img := make([]byte, 4<<20)
	tt.ReadAt(img, 0)
	var blocks [][]byte
	for off := 0; off < len(img); off += 4096 {
		blocks = append(blocks, img[off:off+4096])
	}
	if d := dupShare(blocks, 4096); d < 0.35 || d > 0.45 {
		t.Errorf("%.3f of the target's blocks are duplicates, want about 0.40", d)
	}
	if s := savedPct(t, img); s < 44 || s > 56 {
		t.Errorf("the target's data compresses by %.1f%%, want about 50%%", s)
	}
}

// BenchmarkWriteData is the per-write cost of the write content, 4 KiB blocks: the default
// (sector stamps) is what every write pays; the others only runs that ask for them.
func BenchmarkWriteData(b *testing.B) {
	for _, c := range []struct {
		name string
		w    workloads.Workload
	}{
		{"default", workloads.Workload{}},
		{"compress50", workloads.Workload{BufferCompressPct: 50}},
		{"dedupe50", workloads.Workload{DedupePct: 50}},
		{"verify-crc32c", workloads.Workload{Verify: "crc32c"}},
		{"verify-md5", workloads.Workload{Verify: "md5"}},
		{"verify-sha256", workloads.Workload{Verify: "sha256"}},
	} {
		b.Run(c.name, func(b *testing.B) {
			c.w.BS = bs(4096)
			plan, err := newDataPlan(c.w.Defaults())
			if err != nil {
				b.Fatal(err)
			}
			buf := alignedBuffer(4096)
			wd := newWriteData(plan, buf, 1, 0)
			b.SetBytes(4096)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				wd.prepare(buf, int64(i&255)*4096, uint32(i)|1)
			}
		})
	}
}
