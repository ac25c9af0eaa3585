package workloads

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestFioSpelling(t *testing.T) {
	for n, want := range map[int64]string{512: "512", 4096: "4k", 65536: "64k", 1 << 20: "1m", 3 << 30: "3g", 1536: "1536"} {
		if got := FioSize(n); got != want {
			t.Errorf("FioSize(%d) = %s, want %s", n, got, want)
		}
	}
	for d, want := range map[time.Duration]string{2 * time.Second: "2s", 1500 * time.Millisecond: "1500ms", 250 * time.Microsecond: "250us"} {
		if got := FioDuration(d); got != want {
			t.Errorf("FioDuration(%v) = %s, want %s", d, got, want)
		}
	}
}

// TestFioOptionsRoundTrip: what FioOptions writes, the job-file parser reads back as the
// same workload.
func TestFioOptionsRoundTrip(t *testing.T) {
	ws := []Workload{
		{RW: "randrw", RWMixRead: 70, BS: [2]BlockSize{Fixed(8192), Fixed(8192)}, Size: 64 << 20, Offset: 1 << 20, IOSize: 32 << 20,
			IODepth: 16, NumJobs: 2, Runtime: 1500 * time.Millisecond, TimeBased: true, RampTime: time.Second,
			Rate: [2]int64{1 << 20, 2 << 20}, RateIOPS: [2]int64{1000, 1000}, RandSeed: 42, Direct: true, Fsync: 4, Verify: "crc32c"},
		{RW: "read", BS: [2]BlockSize{{Min: 4096, Max: 65536}, {Min: 4096, Max: 65536}}, Size: 1 << 30, IODepth: 1, NumJobs: 1, RandSeed: 7},
		{RW: "randwrite", BS: [2]BlockSize{Fixed(4096), Fixed(65536)}, Size: 8 << 20, IODepth: 4, NumJobs: 1, RandSeed: 1},
		// The options of issue 12.
		{RW: "randrw", RWMixRead: 30, BS: [2]BlockSize{{Min: 2048, Max: 4096}, {Min: 4096, Max: 8192}}, Size: 64 << 20, IODepth: 8, NumJobs: 1, RandSeed: 3,
			BSSplit:    [2][]BSSplitEntry{{{2048, 50}, {4096, 50}}, {{4096, 90}, {8192, 10}}},
			BlockAlign: [2]int64{0, 4096},
			RandomDist: [2]Distribution{{Kind: "zoned", Zones: []Zone{{60, 10}, {40, 90}}}, {Kind: "zoned", Zones: []Zone{{100, 100}}}},
			RWModifier: 8, RWSequencer: "identical", Loops: 3, NumberIOs: 1000, StartDelay: 1500 * time.Millisecond,
			ThinkTime: 2 * time.Millisecond, ThinkTimeSpin: 250 * time.Microsecond, ThinkTimeBlocks: 4, RateProcess: "poisson",
			Rate:          [2]int64{1 << 20, 1 << 20},
			BufferPattern: []byte{0xde, 0xad, 'a', 0}, BufferCompressPct: 50, BufferCompressChunk: 4096, DedupePct: 20,
			SyncIO: "dsync", Fdatasync: 8, NoInvalidate: true,
			NrFiles: 4, FileSize: BlockSize{Min: 1 << 20, Max: 4 << 20}, Directory: "/srv/a:b", FilenameFormat: "$jobname.$jobnum.$filenum"},
		{RW: "read", BS: [2]BlockSize{Fixed(8192), Fixed(8192)}, Size: 16 << 20, IODepth: 1, NumJobs: 1, RandSeed: 5, RWModifier: -8192},
		{RW: "write", BS: [2]BlockSize{Fixed(4096), Fixed(4096)}, Size: 16 << 20, IODepth: 1, NumJobs: 1, RandSeed: 5, RWModifier: 4096,
			Verify: "pattern", VerifyPattern: []byte{0xaa, 0x55}, VerifyInterval: 512, SyncIO: "sync", FileSize: Fixed(8 << 20)},
		{RW: "randread", BS: [2]BlockSize{Fixed(4096), Fixed(4096)}, Size: 1 << 30, IODepth: 1, NumJobs: 1, RandSeed: 9,
			RandomDist: [2]Distribution{{Kind: "zipf", Param: 1.2}, {Kind: "zipf", Param: 1.2}}},
		{RW: "randread", BS: [2]BlockSize{Fixed(4096), Fixed(4096)}, Size: 1 << 30, IODepth: 1, NumJobs: 1, RandSeed: 9,
			RandomDist: [2]Distribution{{Kind: "zoned_abs", Zones: []Zone{{60, 20 << 20}, {40, 100 << 20}}}, {Kind: "zoned_abs", Zones: []Zone{{60, 20 << 20}, {40, 100 << 20}}}}},
		{RW: "write", BS: [2]BlockSize{Fixed(4096), Fixed(4096)}, Size: 16 << 20, IODepth: 1, NumJobs: 1, RandSeed: 5, Verify: "sha256", VerifyInterval: 1024},
	}
	for _, w := range ws {
		var b strings.Builder
		b.WriteString("[j]\n")
		for _, o := range w.FioOptions() {
			b.WriteString(o.Name + "=" + o.Value + "\n")
		}
		jobs, err := ParseJobFile("x.fio", strings.NewReader(b.String()))
		if err != nil || len(jobs) != 1 {
			t.Fatalf("%s: %v", b.String(), err)
		}
		got := jobs[0].Workload
		got.Name = ""
		if !reflect.DeepEqual(got, w) {
			t.Errorf("round trip of\n%s\ngot  %+v\nwant %+v", b.String(), got, w)
		}
	}
}
