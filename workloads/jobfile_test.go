package workloads

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// testEnv is the environment ${VAR} sees in these tests.
var testEnv = map[string]string{"BS": "16k", "DIR": "/srv/images", "EMPTY": ""}

func lookupTestEnv(k string) (string, bool) {
	v, ok := testEnv[k]
	return v, ok
}

func parseTest(text string) ([]Job, error) {
	return parseJobFile("job.fio", strings.NewReader(text), lookupTestEnv)
}

// wl builds an expected workload: the fields given, then Defaults, as the parser returns it.
func wl(w Workload) Workload { return w.Defaults() }

func TestParseJobFile(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name string
		text string
		want []Workload
	}{
		{
			name: "globals apply to later jobs, jobs override, a later global adds",
			text: `
[global]
bs=8k
iodepth=4
size=64m
[a]
rw=randread
[b]
rw=write
iodepth=16
[global]
numjobs=2
[c]
rw=randrw
`,
			want: []Workload{
				wl(Workload{Name: "a", RW: RandRead, BS: [2]BlockSize{Fixed(8192), Fixed(8192)}, IODepth: 4, Size: 64 * mib}),
				wl(Workload{Name: "b", RW: SeqWrite, BS: [2]BlockSize{Fixed(8192), Fixed(8192)}, IODepth: 16, Size: 64 * mib}),
				wl(Workload{Name: "c", RW: RandMixed, BS: [2]BlockSize{Fixed(8192), Fixed(8192)}, IODepth: 4, Size: 64 * mib, NumJobs: 2}),
			},
		},
		{
			name: "comments, whitespace, bare flags",
			text: `; a comment
# another
[db job]
  rw = randrw   ; inline comment after whitespace
	rwmixwrite= 30
bs =4k # also a comment
size=1g
runtime=30
time_based
direct=1
ramp_time=500ms
group_reporting
thread
norandommap=1
description=ignored ; text
`,
			want: []Workload{wl(Workload{Name: "db job", RW: RandMixed, RWMixRead: 70, BS: [2]BlockSize{Fixed(4096), Fixed(4096)},
				Size: 1 << 30, Runtime: 30 * time.Second, TimeBased: true, Direct: true, RampTime: 500 * time.Millisecond})},
		},
		{
			name: "fio's default kb_base=1024: k is 1024, KiB is 1000",
			text: "[j]\nbs=4KiB\nsize=1m\noffset=1MiB\nio_size=2k\n",
			want: []Workload{wl(Workload{Name: "j", BS: [2]BlockSize{Fixed(4000), Fixed(4000)}, Size: mib, Offset: 1000000, IOSize: 2048})},
		},
		{
			name: "kb_base=1000 applies to the whole section, wherever it is",
			text: "[j]\nbs=4k\nsize=1MiB\nkb_base=1000\n",
			want: []Workload{wl(Workload{Name: "j", BS: [2]BlockSize{Fixed(4000), Fixed(4000)}, Size: mib})},
		},
		{
			name: "kb_base in [global] applies to jobs",
			text: "[global]\nkb_base=1000\n[j]\nsize=2m\nbs=4KiB\n",
			want: []Workload{wl(Workload{Name: "j", BS: [2]BlockSize{Fixed(4096), Fixed(4096)}, Size: 2000000})},
		},
		{
			name: "per-direction block sizes",
			text: `[global]
rw=randrw
size=16m
[two]
bs=4k,64k
[write-only]
bs=,8k
[read-only]
blocksize=8k,
[trim-ignored]
bs=4k,16k,32k
[hex]
bs=0x1000
`,
			want: []Workload{
				wl(Workload{Name: "two", RW: RandMixed, Size: 16 * mib, BS: [2]BlockSize{Fixed(4096), Fixed(65536)}}),
				wl(Workload{Name: "write-only", RW: RandMixed, Size: 16 * mib, BS: [2]BlockSize{Fixed(4096), Fixed(8192)}}),
				wl(Workload{Name: "read-only", RW: RandMixed, Size: 16 * mib, BS: [2]BlockSize{Fixed(8192), Fixed(4096)}}),
				wl(Workload{Name: "trim-ignored", RW: RandMixed, Size: 16 * mib, BS: [2]BlockSize{Fixed(4096), Fixed(16384)}}),
				wl(Workload{Name: "hex", RW: RandMixed, Size: 16 * mib, BS: [2]BlockSize{Fixed(4096), Fixed(4096)}}),
			},
		},
		{
			name: "block size ranges; the last of bs and bsrange wins",
			text: `[global]
rw=randread
size=16m
bs=8k
[one]
bsrange=4k-64k
[two]
blocksize_range=4k-16k,8k:64k
[override]
bsrange=4k-64k
bs=16k
`,
			want: []Workload{
				wl(Workload{Name: "one", RW: RandRead, Size: 16 * mib, BS: [2]BlockSize{{4096, 65536}, {4096, 65536}}}),
				wl(Workload{Name: "two", RW: RandRead, Size: 16 * mib, BS: [2]BlockSize{{4096, 16384}, {8192, 65536}}}),
				wl(Workload{Name: "override", RW: RandRead, Size: 16 * mib, BS: [2]BlockSize{Fixed(16384), Fixed(16384)}}),
			},
		},
		{
			name: "rates",
			text: `[global]
rw=randrw
size=16m
[both]
rate=1m,500k
rate_iops=100,50
[one-value-each-way]
rate=10m
rate_iops=1k
[write-only]
rate=,1m
rate_iops=20,
`,
			want: []Workload{
				wl(Workload{Name: "both", RW: RandMixed, Size: 16 * mib, Rate: [2]int64{mib, 512000}, RateIOPS: [2]int64{100, 50}}),
				wl(Workload{Name: "one-value-each-way", RW: RandMixed, Size: 16 * mib, Rate: [2]int64{10 * mib, 10 * mib}, RateIOPS: [2]int64{1024, 1024}}),
				wl(Workload{Name: "write-only", RW: RandMixed, Size: 16 * mib, Rate: [2]int64{0, mib}, RateIOPS: [2]int64{20, 0}}),
			},
		},
		{
			name: "the rest of the options",
			text: `[global]
name=ignored-in-global
ioengine=libaio
[j]
name=renamed
readwrite=readwrite
rwmixread=60
size=8m
io_limit=4m
randseed=0x1234
fsync=8
verify=crc32c-intel
filename=/dev/disk/by-path/pci-0000\:00\:1f.2
buffered=0
runtime=1m
randrepeat=1
stonewall
new_group
[k]
rw=write
size=8m
direct=1
buffered=1
verify=0
filename=${DIR}/disk.img
bs=${BS}
`,
			want: []Workload{
				wl(Workload{Name: "renamed", RW: SeqMixed, RWMixRead: 60, Size: 8 * mib, IOSize: 4 * mib, RandSeed: 0x1234,
					Fsync: 8, Verify: "crc32c", Filename: "/dev/disk/by-path/pci-0000:00:1f.2", Direct: true, Runtime: time.Minute}),
				wl(Workload{Name: "k", RW: SeqWrite, Size: 8 * mib, Filename: "/srv/images/disk.img", BS: [2]BlockSize{Fixed(16384), Fixed(16384)}}),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			jobs, err := parseTest(tt.text)
			if err != nil {
				t.Fatal(err)
			}
			var got []Workload
			for _, j := range jobs {
				got = append(got, j.Workload)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d jobs, want %d", len(got), len(tt.want))
			}
			for i := range got {
				if !reflect.DeepEqual(got[i], tt.want[i]) {
					t.Errorf("job %d:\n got %+v\nwant %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestParseJobFileJobs(t *testing.T) {
	text := `[global]
ioengine=libaio
size=1m
name=not-a-job-name

[first]
rw=read
randrepeat=0

[second]
rw=write
norandommap
[third]
stonewall
norandommap=0
`
	jobs, err := parseTest(text)
	if err != nil {
		t.Fatal(err)
	}
	type summary struct {
		Section string
		Line    int
		Notes   []string
	}
	engine := "ioengine=libaio replaced by the vmstorbench backend"
	want := []summary{
		{"first", 6, []string{engine, "randrepeat=0: offsets still follow randseed and repeat from run to run"}},
		{"second", 10, []string{engine, "norandommap: random offsets still visit every block once per pass, as with fio's random map"}},
		{"third", 13, []string{engine}},
	}
	for i, j := range jobs {
		if j.Workload.Name != j.Section {
			t.Errorf("job %d named %q, want the section name", i, j.Workload.Name)
		}
		got := summary{j.Section, j.Line, j.Notes}
		if !reflect.DeepEqual(got, want[i]) {
			t.Errorf("job %d: got %+v, want %+v", i, got, want[i])
		}
	}
	wantOptions := map[string]string{"ioengine": "libaio", "size": "1m", "rw": "write", "norandommap": ""}
	if !reflect.DeepEqual(jobs[1].Options, wantOptions) {
		t.Errorf("options: got %v, want %v", jobs[1].Options, wantOptions)
	}
	if _, ok := jobs[0].Options["bs"]; ok {
		t.Error("options record bs although it was not given")
	}
	if jobs[2].Options["stonewall"] != "" || !strings.Contains(jobs[2].Workload.Describe(), "read") {
		t.Errorf("third job: options %v, workload %s", jobs[2].Options, jobs[2].Workload.Describe())
	}
}

func TestParseJobFileErrors(t *testing.T) {
	tests := []struct {
		name, text, want string
	}{
		{"unsupported option", "[j]\nrw=read\nfoo=bar\n", `job.fio:3: unsupported fio option "foo"`},
		{"unsupported flag", "[j]\n\n; comment\nfill_device\n", `job.fio:4: unsupported fio option "fill_device": filling the device`},
		{"options are case-sensitive", "[j]\nBS=4k\n", `job.fio:2: unsupported fio option "BS"`},
		{"bad size", "[global]\nbs=4q\n[j]\n", `job.fio:2: bs="4q": unknown size unit "q"`},
		{"bad size in a range", "[j]\nbsrange=4k-x\n", `job.fio:2: bsrange="4k-x": "x" is not a number`},
		{"range needs two ends", "[j]\nbsrange=4k\n", `job.fio:2: bsrange="4k": want a range min-max`},
		{"too many directions", "[j]\nbs=1k,2k,3k,4k\n", `job.fio:2: bs="1k,2k,3k,4k": at most read,write,trim values`},
		{"empty expansion", "[j]\nbs=${NOPE}\n", `job.fio:2: bs="${NOPE}" (expanded to ""): empty value`},
		{"empty value", "[j]\nsize=\n", `job.fio:2: size="": empty value`},
		{"offset modifier", "[j]\nrw=randread:-8\n", `job.fio:2: rw="randread:-8": offset modifier "-8": for a random pattern a number of I/Os`},
		{"trim", "[j]\nrw=randtrim\n", `job.fio:2: rw="randtrim": trim workloads are not supported`},
		{"unknown rw", "[j]\nreadwrite=sideways\n", `job.fio:2: readwrite="sideways": must be one of read, write`},
		{"verify algorithm", "[j]\nverify=sha1\n", `job.fio:2: verify="sha1": must be md5, sha256, crc32c, meta or pattern`},
		{"bool needs a value", "[j]\ndirect\n", `job.fio:2: fio option "direct" needs a value`},
		{"value option needs a value", "[j]\nbs\n", `job.fio:2: fio option "bs" needs a value`},
		{"bool value", "[j]\ndirect=2\n", `job.fio:2: direct="2": must be 0 or 1`},
		{"flag value", "[j]\ntime_based=yes\n", `job.fio:2: time_based="yes": "yes" is not a number`},
		{"percent", "[j]\nrwmixwrite=150\n", `job.fio:2: rwmixwrite="150": must be a whole number 0..100`},
		{"int range", "[j]\niodepth=8g\n", `job.fio:2: iodepth="8g": out of range`},
		{"negative", "[j]\noffset=-4k\n", `job.fio:2: offset="-4k": "-4k" is not a number`},
		{"kb_base", "[j]\nkb_base=512\n", `job.fio:2: kb_base="512": must be 1000 or 1024`},
		{"time", "[j]\nruntime=10 parsecs\n", `job.fio:2: runtime="10 parsecs": unknown time unit`},
		{"randseed", "[j]\nrandseed=-1\n", `job.fio:2: randseed="-1": strconv.ParseUint`},
		{"several files", "[j]\nfilename=/a:/b\n", `job.fio:2: filename="/a:/b": several files`},
		{"include", "[global]\ninclude common.fio\n", "job.fio:2: include directives are not supported"},
		{"option before a section", "bs=4k\n[j]\n", `job.fio:1: option "bs" outside of a [section]`},
		{"missing name", "[j]\n=4k\n", `job.fio:2: missing option name in "=4k"`},
		{"malformed header", "[j\nbs=4k\n", `job.fio:1: malformed section header "[j"`},
		{"empty header", "[]\n", `job.fio:1: malformed section header "[]"`},
		{"no jobs", "; nothing\n", "job.fio: no job sections"},
		{"only globals", "[global]\nbs=4k\n", "job.fio: no job sections"},
		{"validate names file, line and section", "[global]\nsize=4k\n\n[small]\nbs=8k\n", "job.fio:4: [small]: bs (read)=8KiB is larger than size=4KiB"},
		{"validate verify", "[j]\nverify=crc32c\nbs=4k,8k\n", "job.fio:1: [j]: verify=crc32c: needs one fixed block size"},
		{"every error, each with its line", "[a]\nrw=read\n[b]\nfoo=1\niodepht=2\n", "job.fio:4: unsupported fio option \"foo\" (not a fio option)\n" +
			"job.fio:5: unsupported fio option \"iodepht\" (not a fio option; did you mean \"iodepth\"?)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			jobs, err := parseTest(tt.text)
			if err == nil {
				t.Fatalf("no error, jobs %+v", jobs)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error\n got %q\nwant prefix %q", err, tt.want)
			}
		})
	}
}

func TestParseJobFileEnvironment(t *testing.T) {
	t.Setenv("VMSTORBENCH_TEST_BS", "64k")
	jobs, err := ParseJobString("env.fio", "[j]\nrw=randread\nbs=${VMSTORBENCH_TEST_BS}\n")
	if err != nil {
		t.Fatal(err)
	}
	if got := jobs[0].Workload.BS[Read]; got != Fixed(65536) {
		t.Errorf("bs = %v, want 64KiB", got)
	}
}

func TestExpandEnv(t *testing.T) {
	tests := map[string]string{
		"${BS}":          "16k",
		"${DIR}/${BS}":   "/srv/images/16k",
		"a${EMPTY}b":     "ab",
		"${UNSET}x":      "x",
		"${BS":           "${BS",
		"$BS":            "$BS", // fio expands only the braced form
		"${}":            "",
		"${BS}${BS}}":    "16k16k}",
		"plain":          "plain",
		"${${BS}}":       "}", // the name is "${BS", unset
		"100% ${DIR}!":   "100% /srv/images!",
		"trailing ${BS}": "trailing 16k",
	}
	for in, want := range tests {
		if got := expandEnv(in, lookupTestEnv); got != want {
			t.Errorf("expandEnv(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseOptions(t *testing.T) {
	tests := []struct {
		name string
		kv   []string
		want Workload
	}{
		{"fio flags", []string{"--rw=randread", "--bs=4k", "--iodepth=32", "--time_based", "--runtime=5"},
			wl(Workload{RW: RandRead, IODepth: 32, TimeBased: true, Runtime: 5 * time.Second})},
		{"bare pairs", []string{"rw=randrw", "rwmixread=70", "bs=8k,64k", "size=256m", "name=x", "kb_base=1000"},
			wl(Workload{Name: "x", RW: RandMixed, RWMixRead: 70, BS: [2]BlockSize{Fixed(8000), Fixed(64000)}, Size: 256000000})},
		{"nothing", nil, wl(Workload{})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseOptions(tt.kv)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseOptionsErrors(t *testing.T) {
	tests := []struct {
		kv   []string
		want string
	}{
		{[]string{"rw=read", "--foo=1"}, `unsupported fio option "foo" (not a fio option)`},
		{[]string{"bs=4q"}, `bs="4q": unknown size unit "q"`},
		{[]string{"direct"}, `fio option "direct" needs a value`},
		{[]string{"include=x.fio"}, `unsupported fio option "include" (not a fio option)`},
		{[]string{"size=4k", "bs=8k"}, "bs (read)=8KiB is larger than size=4KiB"},
	}
	for _, tt := range tests {
		_, err := ParseOptions(tt.kv)
		if err == nil || err.Error() != tt.want {
			t.Errorf("ParseOptions(%q): error %v, want %q", tt.kv, err, tt.want)
		}
	}
}

// TestOptionsMatchJobFile checks that a job file and the same options on a command line
// give the same workload.
func TestOptionsMatchJobFile(t *testing.T) {
	opts := []string{"rw=randrw", "rwmixwrite=25", "bsrange=4k-16k,8k-64k", "size=32m", "offset=4k",
		"iodepth=8", "numjobs=3", "runtime=2", "time_based", "ramp_time=1", "rate=2m,1m", "rate_iops=300",
		"randseed=7", "direct=1", "fsync=4", "filename=/tmp/x", "name=j"}
	fromOptions, err := ParseOptions(opts)
	if err != nil {
		t.Fatal(err)
	}
	jobs, err := parseTest("[j]\n" + strings.Join(opts, "\n") + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fromOptions, jobs[0].Workload) {
		t.Errorf("options %+v\njob file %+v", fromOptions, jobs[0].Workload)
	}
}

func TestApplyOptionsToProfile(t *testing.T) {
	base, err := Profile("oltp")
	if err != nil {
		t.Fatal(err)
	}
	w, notes, err := ApplyOptions(base, []string{"bs=4k", "runtime=60", "ioengine=io_uring"})
	if err != nil {
		t.Fatal(err)
	}
	if w.RWMixRead != 70 || w.IODepth != 16 || w.BS[Write] != Fixed(4096) || w.Runtime != time.Minute || w.Name != "oltp" {
		t.Errorf("got %s runtime=%s name=%s", w.Describe(), w.Runtime, w.Name)
	}
	if want := []string{"ioengine=io_uring replaced by the vmstorbench backend"}; !reflect.DeepEqual(notes, want) {
		t.Errorf("notes %q, want %q", notes, want)
	}
}

// TestTimeBasedWithoutRuntime: fio warns and runs the job as if time_based were not given.
func TestTimeBasedWithoutRuntime(t *testing.T) {
	jobs, err := parseTest("[j]\ntime_based\nsize=1m\n")
	if err != nil {
		t.Fatal(err)
	}
	if jobs[0].Workload.TimeBased || len(jobs[0].Notes) == 0 || !strings.Contains(jobs[0].Notes[0], "time_based without runtime") {
		t.Errorf("time_based %v, notes %q", jobs[0].Workload.TimeBased, jobs[0].Notes)
	}
}

// TestJobGlobalNames: each job records the options the [global] sections before it set.
func TestJobGlobalNames(t *testing.T) {
	jobs, err := parseTest("[global]\nbs=4k\nreadwrite=randread\n[a]\nsize=1m\n[global]\niodepth=4\n[b]\nsize=1m\n")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(jobs[0].Global, " ") + "|" + strings.Join(jobs[1].Global, " "); got != "bs rw|bs iodepth rw" {
		t.Errorf("globals %s", got)
	}
}
