package workloads

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestParseNewOptions: each option of issue 12 lands in its model field, with fio's syntax.
func TestParseNewOptions(t *testing.T) {
	const k = 1024
	split := func(e ...BSSplitEntry) []BSSplitEntry { return e }
	tests := []struct {
		name string
		text string // options of one [j] section
		want func(w *Workload)
	}{
		{"bssplit one set for both directions", "bssplit=4k/10:64k/50:32k/40", func(w *Workload) {
			sp := split(BSSplitEntry{4 * k, 10}, BSSplitEntry{64 * k, 50}, BSSplitEntry{32 * k, 40})
			w.BSSplit = [2][]BSSplitEntry{sp, sp}
			w.BS = [2]BlockSize{{4 * k, 64 * k}, {4 * k, 64 * k}}
		}},
		{"bssplit per direction", "rw=randrw\nbssplit=2k/50:4k/50,4k/90:8k/10", func(w *Workload) {
			w.RW = RandMixed
			w.BSSplit = [2][]BSSplitEntry{split(BSSplitEntry{2 * k, 50}, BSSplitEntry{4 * k, 50}), split(BSSplitEntry{4 * k, 90}, BSSplitEntry{8 * k, 10})}
			w.BS = [2]BlockSize{{2 * k, 4 * k}, {4 * k, 8 * k}}
		}},
		{"bssplit empty shares split the remainder", "bssplit=4k/50:1k/:32k/", func(w *Workload) {
			sp := split(BSSplitEntry{4 * k, 50}, BSSplitEntry{1 * k, 25}, BSSplitEntry{32 * k, 25})
			w.BSSplit = [2][]BSSplitEntry{sp, sp}
			w.BS = [2]BlockSize{{1 * k, 32 * k}, {1 * k, 32 * k}}
		}},
		{"bssplit remainder rounding goes to the last", "bssplit=4k/:8k/:16k/", func(w *Workload) {
			sp := split(BSSplitEntry{4 * k, 33}, BSSplitEntry{8 * k, 33}, BSSplitEntry{16 * k, 34})
			w.BSSplit = [2][]BSSplitEntry{sp, sp}
			w.BS = [2]BlockSize{{4 * k, 16 * k}, {4 * k, 16 * k}}
		}},
		{"bssplit wins over bs whatever the order", "bssplit=8k/100\nbs=4k", func(w *Workload) {
			w.BSSplit = [2][]BSSplitEntry{split(BSSplitEntry{8 * k, 100}), split(BSSplitEntry{8 * k, 100})}
			w.BS = [2]BlockSize{Fixed(8 * k), Fixed(8 * k)}
		}},
		{"blockalign and its alias", "rw=randread\nba=4k,8k", func(w *Workload) {
			w.RW = RandRead
			w.BlockAlign = [2]int64{4 * k, 8 * k}
		}},
		{"zipf", "rw=randread\nrandom_distribution=zipf:1.2", func(w *Workload) {
			w.RW = RandRead
			w.RandomDist = [2]Distribution{{Kind: "zipf", Param: 1.2}, {Kind: "zipf", Param: 1.2}}
		}},
		{"pareto and normal", "random_distribution=pareto:0.9\nrandom_distribution=normal:10", func(w *Workload) {
			w.RandomDist = [2]Distribution{{Kind: "normal", Param: 10}, {Kind: "normal", Param: 10}}
		}},
		{"random resets", "random_distribution=zipf:0.5\nrandom_distribution=random", func(*Workload) {}},
		{"zoned with a size to fill in", "random_distribution=zoned:50/5:30/15:20/", func(w *Workload) {
			d := Distribution{Kind: "zoned", Zones: []Zone{{50, 5}, {30, 15}, {20, 80}}}
			w.RandomDist = [2]Distribution{d, d}
		}},
		{"zoned per direction", "random_distribution=zoned:60/10:40/90,100/100", func(w *Workload) {
			w.RandomDist = [2]Distribution{{Kind: "zoned", Zones: []Zone{{60, 10}, {40, 90}}}, {Kind: "zoned", Zones: []Zone{{100, 100}}}}
		}},
		{"zoned_abs", "random_distribution=zoned_abs:60/20g:40/100g", func(w *Workload) {
			d := Distribution{Kind: "zoned_abs", Zones: []Zone{{60, 20 << 30}, {40, 100 << 30}}}
			w.RandomDist = [2]Distribution{d, d}
		}},
		{"files", "filesize=1k-4k\nnrfiles=4\ndirectory=/srv/a\\:b\nfilename_format=$jobname.$filenum", func(w *Workload) {
			w.FileSize = BlockSize{1 * k, 4 * k}
			w.NrFiles = 4
			w.Directory = "/srv/a:b"
			w.FilenameFormat = "$jobname.$filenum"
		}},
		{"nr_files and filesize range with a colon", "nr_files=2\nfilesize=4k:8k", func(w *Workload) {
			w.NrFiles = 2
			w.FileSize = BlockSize{4 * k, 8 * k}
		}},
		{"sequential offset modifier backwards", "rw=read:-8k", func(w *Workload) { w.RWModifier = -8 * k }},
		{"sequential holes", "rw=write:112k", func(w *Workload) { w.RW = SeqWrite; w.RWModifier = 112 * k }},
		{"random modifier counts I/Os", "rw=randread:8\nrw_sequencer=identical", func(w *Workload) {
			w.RW, w.RWModifier, w.RWSequencer = RandRead, 8, "identical"
		}},
		{"rw_sequencer default", "rw_sequencer=sequential", func(*Workload) {}},
		{"a later rw drops the modifier", "rw=read:4k\nrw=read", func(*Workload) {}},
		{"loops, number_ios, startdelay in seconds", "loops=3\nnumber_ios=20\nstartdelay=2", func(w *Workload) {
			w.Loops, w.NumberIOs, w.StartDelay = 3, 20, 2*time.Second
		}},
		{"thinktime in microseconds", "thinktime=2000\nthinktime_spin=500\nthinktime_blocks=4", func(w *Workload) {
			w.ThinkTime, w.ThinkTimeSpin, w.ThinkTimeBlocks = 2*time.Millisecond, 500*time.Microsecond, 4
		}},
		{"thinktime with a unit", "thinktime=1s\nthinktime_blocks_type=complete", func(w *Workload) { w.ThinkTime = time.Second }},
		{"timeout is runtime", "timeout=60", func(w *Workload) { w.Runtime = time.Minute }},
		{"rate_process", "rate=1m\nrate_process=poisson", func(w *Workload) {
			w.Rate = [2]int64{1 << 20, 1 << 20}
			w.RateProcess = "poisson"
		}},
		{"rate_process linear is the default", "rate_process=linear", func(*Workload) {}},
		{"buffer_pattern hex", "buffer_pattern=0x01", func(w *Workload) { w.BufferPattern = []byte{1} }},
		{"buffer_pattern combined", `buffer_pattern=0xdeadface"ab"-12`, func(w *Workload) {
			w.BufferPattern = []byte{0xde, 0xad, 0xfa, 0xce, 'a', 'b', 0xf4, 0xff, 0xff, 0xff}
		}},
		{"buffer_pattern decimal low byte first", "buffer_pattern=256", func(w *Workload) { w.BufferPattern = []byte{0, 1} }},
		{"buffer_pattern odd hex digits", "buffer_pattern=0x123", func(w *Workload) { w.BufferPattern = []byte{1, 0x23} }},
		{"zero_buffers", "zero_buffers", func(w *Workload) { w.BufferPattern = []byte{0} }},
		{"compress and dedupe", "buffer_compress_percentage=50\nbuffer_compress_chunk=4k\ndedupe_percentage=30\ndedupe_mode=repeat", func(w *Workload) {
			w.BufferCompressPct, w.BufferCompressChunk, w.DedupePct = 50, 4*k, 30
		}},
		{"sync=1", "rw=write\nsync=1\nfdatasync=8", func(w *Workload) { w.RW, w.SyncIO, w.Fdatasync = SeqWrite, "sync", 8 }},
		{"sync=dsync", "sync=dsync", func(w *Workload) { w.SyncIO = "dsync" }},
		{"sync=none", "sync=dsync\nsync=none", func(*Workload) {}},
		{"verify md5", "rw=write\nverify=md5\ndo_verify=1", func(w *Workload) { w.RW, w.Verify = SeqWrite, "md5" }},
		{"verify sha256 with an interval", "rw=write\nverify=sha256\nverify_interval=512", func(w *Workload) {
			w.RW, w.Verify, w.VerifyInterval = SeqWrite, "sha256", 512
		}},
		{"verify_pattern alone means verify=pattern", "rw=write\nverify_pattern=0xaa555aa5", func(w *Workload) {
			w.RW, w.Verify, w.VerifyPattern = SeqWrite, "pattern", []byte{0xaa, 0x55, 0x5a, 0xa5}
		}},
		{"verify_pattern with a checksum keeps it", "rw=write\nverify=crc32c-intel\nverify_pattern=\"x\"", func(w *Workload) {
			w.RW, w.Verify, w.VerifyPattern = SeqWrite, "crc32c", []byte("x")
		}},
		{"meta", "rw=write\nverify=meta", func(w *Workload) { w.RW, w.Verify = SeqWrite, "meta" }},
		{"invalidate=0", "invalidate=0", func(w *Workload) { w.NoInvalidate = true }},
		{"invalidate=1", "invalidate=1", func(*Workload) {}},
		{"rwmixread=0 is all writes", "rw=randrw\nrwmixread=0", func(w *Workload) { w.RW = RandWrite }},
		{"rwmixwrite=100 is all writes", "rwmixwrite=100\nrw=rw", func(w *Workload) { w.RW = SeqWrite }},
		{"size=0 is fio's default", "size=0", func(*Workload) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			jobs, err := parseTest("[j]\n" + tt.text + "\n")
			if err != nil {
				t.Fatal(err)
			}
			want := Workload{Name: "j"}
			tt.want(&want)
			want = want.Defaults()
			if got := jobs[0].Workload; !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

// TestParseNewOptionsErrors: invalid values are refused with fio's reasons, never replaced.
func TestParseNewOptionsErrors(t *testing.T) {
	tests := []struct{ name, text, want string }{
		{"bs=0", "bs=0", `job.fio:2: bs="0": must be positive`},
		{"bs=4k,0", "bs=4k,0", `job.fio:2: bs="4k,0": must be positive`},
		{"bsrange with 0", "bsrange=0-4k", `job.fio:2: bsrange="0-4k": block sizes must be positive`},
		{"numjobs=0", "numjobs=0", `job.fio:2: numjobs="0": must be at least 1`},
		{"iodepth=0", "iodepth=0", `job.fio:2: iodepth="0": must be at least 1`},
		{"blockalign=0", "blockalign=0", `job.fio:2: blockalign="0": must be positive`},
		{"filesize=0", "filesize=0", `job.fio:2: filesize="0": must be positive`},
		{"nrfiles=0", "nrfiles=0", `job.fio:2: nrfiles="0": must be at least 1`},
		{"verify_interval=0", "verify_interval=0", `job.fio:2: verify_interval="0": must be at least 80`},
		{"verify_interval divides bs", "rw=write\nverify=md5\nverify_interval=1000", "job.fio:1: [j]: verify_interval=1000B: must divide bs=4KiB"},
		{"bssplit over 100", "bssplit=4k/50:8k/60", `job.fio:2: bssplit="4k/50:8k/60": percentages add up to 110, more than 100`},
		{"bssplit under 100", "bssplit=4k/50:8k/40", "job.fio:1: [j]: bssplit (read): percentages add up to 90, not 100"},
		{"bssplit bad size", "bssplit=4x/100", `job.fio:2: bssplit="4x/100": block size "4x"`},
		{"bssplit bad pct", "bssplit=4k/1.5", `job.fio:2: bssplit="4k/1.5": percentage "1.5": must be a whole number 0..100`},
		{"bssplit with verify", "rw=write\nverify=crc32c\nbssplit=4k/50:8k/50", "job.fio:1: [j]: verify=crc32c: needs one fixed block size"},
		{"zipf theta 1", "random_distribution=zipf:1", `job.fio:2: random_distribution="zipf:1": zipf:1: theta must be positive and not 1`},
		{"pareto range", "random_distribution=pareto:1.5", "pareto:1.5: power must be between 0 and 1"},
		{"normal range", "random_distribution=normal:150", "normal:150: deviation must be 0 to less than 100"},
		{"zipf per direction", "random_distribution=zipf:1.2,pareto:0.5", "zipf takes one value for all directions"},
		{"zipf centre", "random_distribution=zipf:1.2:0.25", "a second value (where the distribution is centred) is not supported"},
		{"zoned access sum", "random_distribution=zoned:50/10:40/90", "zoned: access percentages add up to 90, not 100"},
		{"zoned size sum", "random_distribution=zoned:50/60:50/60", "zone sizes: percentages add up to 120, more than 100"},
		{"zoned missing access", "random_distribution=zoned:50/5:/80", `zone "/80": access percentage`},
		{"zoned_abs needs sizes", "random_distribution=zoned_abs:50/1g:50/", `zone "50/": needs a size`},
		{"fio's zoned_abs= typo", "random_distribution=zoned_abs=60/20G:40/100g", "must be random, zipf:theta"},
		{"unknown distribution", "random_distribution=gauss:1", "must be random, zipf:theta"},
		{"random modifier negative", "rw=randread:-1", "for a random pattern a number of I/Os"},
		{"rw_sequencer", "rw_sequencer=backwards", `rw_sequencer="backwards": must be sequential or identical`},
		{"startdelay range", "startdelay=1-3", `job.fio:2: startdelay="1-3": a range (a random delay per job) is not supported`},
		{"thinktime_spin longer", "thinktime=10\nthinktime_spin=20", "job.fio:1: [j]: thinktime_spin=20µs: longer than thinktime=10µs"},
		{"thinktime_blocks_type issue", "thinktime_blocks_type=issue", "only complete, fio's default, is supported"},
		{"thinktime_iotime", "thinktime_iotime=9s", "thinktime by I/O time is not supported"},
		{"rate_process", "rate_process=bursty", "must be linear or poisson"},
		{"sync=2", "sync=2", `job.fio:2: sync="2": must be none (0), sync (1) or dsync`},
		{"buffer_pattern file", "buffer_pattern='data.bin'", "a pattern read from a 'file' is not supported"},
		{"buffer_pattern junk", "buffer_pattern=abc", `unexpected 'a' at 0`},
		{"buffer_pattern 0x alone", "buffer_pattern=0x", "0x at 0 without hex digits"},
		{"buffer_pattern over 32 bits", "buffer_pattern=4294967295", "a decimal number must fit in 32 bits"},
		{"buffer_pattern unterminated", `buffer_pattern="abc`, "unterminated"},
		{"verify_pattern %o", "verify_pattern=%o", "%o (the block offset in the pattern) is not supported"},
		{"verify=pattern without a pattern", "rw=write\nverify=pattern", "job.fio:1: [j]: verify=pattern: needs verify_pattern"},
		{"do_verify=0", "rw=write\nverify=md5\ndo_verify=0", "job.fio:1: [j]: do_verify=0: vmstorbench always reads the written blocks back"},
		{"compress over 100", "buffer_compress_percentage=101", "must be a whole number 0..100"},
		{"dedupe_mode", "dedupe_mode=working_set", "only repeat, fio's default, is supported"},
		{"invalidate=2", "invalidate=2", "must be 0 or 1"},
		{"several directories", "directory=/a:/b", "several directories"},
		{"$clientuid", "filename_format=f.$clientuid", "client/server mode"},
		{"refused with a reason", "zonemode=zbd", `job.fio:2: unsupported fio option "zonemode": zoned block devices`},
		{"engine option", "sg_write_mode=verify", `job.fio:2: unsupported fio option "sg_write_mode": an option of fio's ioengine=sg;`},
		{"fio option not implemented", "write_barrier=4", `job.fio:2: unsupported fio option "write_barrier": vmstorbench does not implement it`},
		{"engine without storage I/O", "ioengine=cpuio", "fio's ioengine=cpuio burns CPU: no storage I/O"},
		{"verify_backlog", "verify_backlog=1024", "vmstorbench verifies after the writes, not during them"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			jobs, err := parseTest("[j]\n" + tt.text + "\n")
			if err == nil {
				t.Fatalf("no error, jobs %+v", jobs)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error\n got %q\nwant %q", err, tt.want)
			}
		})
	}
}

// TestEveryProblemReported: all unsupported options of a file in one error, one a line, in
// file order, each with its line, a [global] one once.
func TestEveryProblemReported(t *testing.T) {
	text := "[global]\nzonemode=zbd\n[a]\niodepht=4\n[b]\nnumjobs=0\nbs=4k\nfoo=1\n"
	_, err := parseTest(text)
	if err == nil {
		t.Fatal("no error")
	}
	want := []string{
		`job.fio:2: unsupported fio option "zonemode": zoned block devices (zonemode) are not supported`,
		`job.fio:4: unsupported fio option "iodepht" (not a fio option; did you mean "iodepth"?)`,
		`job.fio:6: numjobs="0": must be at least 1`,
		`job.fio:8: unsupported fio option "foo" (not a fio option)`,
	}
	if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%s\nwant\n%s", err, strings.Join(want, "\n"))
	}
}

// TestQuietOptions: options that change no I/O are accepted, each with a note.
func TestQuietOptions(t *testing.T) {
	text := "[j]\ngtod_reduce=1\ndisable_lat\nclat_percentiles=1\npercentile_list=99.9:99.99\ncpus_allowed=0-3\n" +
		"cpus_allowed_policy=split\nthread\nwrite_lat_log=lat\nlog_avg_msec=1000\niodepth_batch=8\niodepth_low=4\n" +
		"refill_buffers\nscramble_buffers=0\nverify_fatal=1\nverify_dump=1\nverify_async=4\nunified_rw_reporting=1\n" +
		"create_serialize=0\nfallocate=none\nrandom_generator=lfsr\n"
	jobs, err := parseTest(text)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(text, "\n") - 1; len(jobs[0].Notes) != n {
		t.Errorf("%d notes for %d options: %q", len(jobs[0].Notes), n, jobs[0].Notes)
	}
	for _, n := range jobs[0].Notes {
		if !strings.Contains(n, "=") || !strings.Contains(n, ": ") {
			t.Errorf("note does not name its option: %q", n)
		}
	}
	if !reflect.DeepEqual(jobs[0].Workload, wl(Workload{Name: "j"})) {
		t.Errorf("workload changed: %+v", jobs[0].Workload)
	}
}

// TestJobGroups: stonewall (wait_for_previous), new_group and group_reporting are recorded
// per job, from [global] too.
func TestJobGroups(t *testing.T) {
	text := "[global]\ngroup_reporting\n[a]\n[b]\nstonewall\n[c]\nwait_for_previous\nnew_group\n[d]\nstonewall=0\ngroup_reporting=0\n"
	jobs, err := parseTest(text)
	if err != nil {
		t.Fatal(err)
	}
	type g struct{ stonewall, newGroup, grouped bool }
	want := []g{{false, false, true}, {true, false, true}, {true, true, true}, {false, false, false}}
	for i, j := range jobs {
		if got := (g{j.Stonewall, j.NewGroup, j.GroupReporting}); got != want[i] {
			t.Errorf("[%s]: got %+v, want %+v", j.Section, got, want[i])
		}
	}
}

func TestFileTarget(t *testing.T) {
	tests := []struct {
		name, text, want, err string
	}{
		{"absolute filename", "filename=/var/tmp/img", "file:///var/tmp/img", ""},
		{"device", "filename=/dev/sdb", "file:///dev/sdb", ""},
		{"directory only", "directory=/scratch", "file:///scratch", ""},
		{"filename inside directory", "directory=/scratch\nfilename=f1", "file:///scratch/f1", ""},
		{"neither", "rw=read", "", ""},
		{"escaped colon in a path", `filename=/dev/disk/by-path/pci-0000\:00\:1f.2`, "file:///dev/disk/by-path/pci-0000:00:1f.2", ""},
		{"url", `filename=iscsi\://127.0.0.1/iqn.2016-02.com.fio\:system\:fio/1`, "", "is a URL"},
		{"host:port", `filename=localhost\:8888`, "", "is a host:port"},
		{"protocol:path", `filename=rbd\:pool/image`, "", "looks like protocol:path"},
		{"engine's name", "ioengine=rbd\nfilename=fio_test", "", "fio's ioengine=rbd connects to"},
		{"http object", "ioengine=http\nfilename=/bucket/object", "", "fio's ioengine=http connects to"},
		{"pmem malloc", "ioengine=dev-dax\nfilename=malloc", "", "filename=malloc is memory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			jobs, err := parseTest("[j]\n" + tt.text + "\n")
			if err != nil {
				t.Fatal(err)
			}
			got, _, err := jobs[0].FileTarget()
			switch {
			case tt.err == "" && (err != nil || got != tt.want):
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Errorf("got %q, %v; want an error with %q", got, err, tt.err)
			}
		})
	}
	jobs, _ := parseTest("[j]\nfilename=/dev/sdb\n")
	if n := jobs[0].TargetNote(); n != "filename=/dev/sdb replaced by the target" {
		t.Errorf("note %q", n)
	}
}

func TestDescribeNewOptions(t *testing.T) {
	tests := []struct{ text, want string }{
		{"rw=randread\nbssplit=4k/50:64k/50\nrandom_distribution=zipf:1.2", "randread bssplit=4k/50:64k/50 random_distribution=zipf:1.2 iodepth=1 numjobs=1"},
		{"rw=read:-8k", "read:-8k bs=4KiB iodepth=1 numjobs=1"},
		{"rw=write\nsync=dsync", "write bs=4KiB iodepth=1 numjobs=1 sync=dsync"},
	}
	for _, tt := range tests {
		jobs, err := parseTest("[j]\n" + tt.text + "\n")
		if err != nil {
			t.Fatal(err)
		}
		if got := jobs[0].Workload.Describe(); got != tt.want {
			t.Errorf("%q: got %q, want %q", tt.text, got, tt.want)
		}
	}
}
