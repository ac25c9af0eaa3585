package results

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vmstorbench/vmstorbench/workloads"
)

// fioShape lists every key path of a fio JSON document with its JSON kind. Array elements
// share one path ("jobs[]"); the free-form option maps and disk_util entries (we have no disks)
// are not descended into.
func fioShape(t *testing.T, data []byte) map[string]string {
	t.Helper()
	var doc any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	shape := map[string]string{}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			shape[path] = "object"
			// json+ bins are keyed by latency: their keys differ from run to run.
			if strings.HasSuffix(path, "options") || strings.HasSuffix(path, ".bins") {
				return
			}
			for k, e := range v {
				walk(path+"."+k, e)
			}
		case []any:
			shape[path] = "array"
			if path == ".disk_util" {
				return
			}
			for _, e := range v {
				walk(path+"[]", e)
			}
		default:
			shape[path] = fmt.Sprintf("%T", v)
		}
	}
	walk("", doc)
	return shape
}

func TestFioJSONShapeMatchesFio(t *testing.T) {
	// testdata/fio-3.33-randrw.json is real fio 3.33 output of:
	//   fio --output-format=json --bs=4k --ioengine=psync --lat_percentiles=1 --name=vmtest
	//       --filename=/tmp/fiox/f --size=16m --rw=randrw --runtime=2 --time_based
	// and testdata/fio-3.33-randrw-plus.json the same with --output-format=json+ --runtime=1.
	for _, c := range []struct {
		ref   string
		write func(io.Writer, []*Run) error
	}{
		{"testdata/fio-3.33-randrw.json", WriteFioJSON},
		{"testdata/fio-3.33-randrw-plus.json", WriteFioJSONPlus},
	} {
		t.Run(c.ref, func(t *testing.T) { checkFioShape(t, c.ref, c.write) })
	}
}

func checkFioShape(t *testing.T, refFile string, write func(io.Writer, []*Run) error) {
	ref, err := os.ReadFile(refFile)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := write(&buf, []*Run{sampleRun()}); err != nil {
		t.Fatal(err)
	}
	want, got := fioShape(t, ref), fioShape(t, buf.Bytes())
	var diffs []string
	for k, kind := range want {
		if got[k] != kind {
			diffs = append(diffs, fmt.Sprintf("%s: fio has %s, we have %q", k, kind, got[k]))
		}
	}
	for k, kind := range got {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: we have %s, fio has none", k, kind))
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		t.Errorf("shape differs from fio's:\n%s", strings.Join(diffs, "\n"))
	}
}

// fioOut is the part of fio's JSON the value checks read.
type fioOut struct {
	Version string `json:"fio version"`
	Jobs    []struct {
		JobName    string             `json:"jobname"`
		GroupID    int                `json:"groupid"`
		Error      int                `json:"error"`
		JobOptions map[string]string  `json:"job options"`
		Read       fioDirOut          `json:"read"`
		Write      fioDirOut          `json:"write"`
		JobRuntime int64              `json:"job_runtime"`
		UsrCPU     float64            `json:"usr_cpu"`
		LatencyUS  map[string]float64 `json:"latency_us"`
		LatencyNS  map[string]float64 `json:"latency_ns"`
		LatencyMS  map[string]float64 `json:"latency_ms"`
	} `json:"jobs"`
}

type fioDirOut struct {
	IOBytes  int64   `json:"io_bytes"`
	BW       int64   `json:"bw"`
	IOPS     float64 `json:"iops"`
	Runtime  int64   `json:"runtime"`
	TotalIOs int64   `json:"total_ios"`
	Clat     struct {
		N          int64            `json:"N"`
		Max        int64            `json:"max"`
		Percentile map[string]int64 `json:"percentile"`
	} `json:"clat_ns"`
	BWMin      int64   `json:"bw_min"`
	BWMax      int64   `json:"bw_max"`
	IOPSMean   float64 `json:"iops_mean"`
	IOPSStddev float64 `json:"iops_stddev"`
	Samples    int64   `json:"iops_samples"`
}

func TestFioJSONValues(t *testing.T) {
	mixed := sampleRun()
	readOnly := sampleRun()
	readOnly.Workload.RW, readOnly.Workload.Name, readOnly.Write = workloads.RandRead, "", nil
	readOnly.Error, readOnly.Complete = "smb: read: connection reset", false
	for i := range readOnly.Series.Points {
		readOnly.Series.Points[i].Write = nil
	}
	var buf bytes.Buffer
	if err := WriteFioJSON(&buf, []*Run{mixed, readOnly}); err != nil {
		t.Fatal(err)
	}
	var out fioOut
	if err := json.Unmarshal(buf.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	if out.Version != "vmstorbench-0.1.0" || len(out.Jobs) != 2 {
		t.Fatalf("version %q, %d jobs", out.Version, len(out.Jobs))
	}
	j := out.Jobs[0]
	if j.JobName != "vm-boot" || j.Error != 0 || j.JobRuntime != 2000 || j.UsrCPU != 50 {
		t.Errorf("job header: %+v", j)
	}
	for k, v := range map[string]string{"rw": "randrw", "rwmixread": "70", "bs": "4k,64k", "size": "64m",
		"iodepth": "16", "numjobs": "2", "runtime": "2s", "time_based": "1", "verify": "crc32c", "randseed": "137"} {
		if j.JobOptions[k] != v {
			t.Errorf("job option %s = %q, want %q", k, j.JobOptions[k], v)
		}
	}
	r := j.Read
	if r.IOBytes != 7000*4096 || r.BW != 3500*4 || r.IOPS != 3500 || r.Runtime != 2000 || r.TotalIOs != 7000 {
		t.Errorf("read totals: %+v", r)
	}
	if r.Clat.N != 7000 || r.Clat.Max != 2_000_000 || len(r.Clat.Percentile) != 17 || r.Clat.Percentile["50.000000"] != mixed.Read.Lat.Percentiles["50.000000"] {
		t.Errorf("read clat: %+v", r.Clat)
	}
	if r.BWMin != 3000*4 || r.BWMax != 4000*4 || r.IOPSMean != 3500 || math.Abs(r.IOPSStddev-707.1068) > 0.01 || r.Samples != 2 {
		t.Errorf("read series stats: %+v", r)
	}
	var sum float64
	for _, m := range []map[string]float64{j.LatencyNS, j.LatencyUS, j.LatencyMS} {
		for _, v := range m {
			sum += v
		}
	}
	// 7000 reads over 50 µs..2 ms, 3000 writes over 200 µs..9 ms: none under 20 µs.
	if math.Abs(sum-100) > 1e-9 || j.LatencyNS["1000"] != 0 || j.LatencyUS["20"] != 0 || j.LatencyUS["100"] == 0 || j.LatencyMS["10"] == 0 {
		t.Errorf("latency buckets sum %v: ns %v us %v ms %v", sum, j.LatencyNS, j.LatencyUS, j.LatencyMS)
	}

	j = out.Jobs[1]
	if j.JobName != "randread" || j.GroupID != 1 || j.Error == 0 {
		t.Errorf("failed run header: %+v", j)
	}
	if w := j.Write; w.IOBytes != 0 || w.TotalIOs != 0 || w.Clat.N != 0 || w.Clat.Percentile != nil || w.Samples != 0 {
		t.Errorf("direction that did not run: %+v", w)
	}
	if !strings.Contains(buf.String(), `"trim": {`) {
		t.Error("trim section missing")
	}
}

func TestFioJSONEmpty(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteFioJSON(&buf, nil); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"jobs": []`, `"disk_util": []`, `"global options": {}`} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("missing %s in %s", want, buf.String())
		}
	}
}

// jobFileRuns are the runs of one job file set: job "a" with numjobs=2 (per-job figures),
// job "b" in the same group, then after a stonewall "c" and "d" with group_reporting.
func jobFileRuns() []*Run {
	mk := func(name string, index, group int, reads int, gr bool) *Run {
		r := sampleRun()
		r.Workload.Name, r.Workload.RW, r.Workload.NumJobs, r.Write = name, workloads.RandRead, 1, nil
		r.Workload.Verify, r.Verify = "", nil
		r.Target = Target{URL: "file:///var/lib/vm.img", Backend: "file", Info: map[string]string{"kind": "regular"}}
		r.Read = &DirStats{IOs: int64(reads), Bytes: int64(reads) * 4096, IOPS: float64(reads) / 2, BWBps: float64(reads) * 2048, Lat: sampleLatency(reads, 20_000, 900_000)}
		for i := range r.Series.Points {
			r.Series.Points[i].Write = nil
		}
		r.ID = name
		r.Job = &JobInfo{Name: name, Set: "s1", Group: group, Index: index, GroupReporting: gr}
		return r
	}
	a := mk("a", 0, 0, 3000, false)
	a.Workload.NumJobs = 2
	a.Jobs = []JobStats{
		{Index: 0, Read: &DirStats{IOs: 1000, Bytes: 1000 * 4096, Lat: sampleLatency(1000, 20_000, 300_000)}},
		{Index: 1, Read: &DirStats{IOs: 2000, Bytes: 2000 * 4096, Lat: sampleLatency(2000, 300_000, 900_000)}},
	}
	c := mk("c", 2, 1, 500, true)
	c.Workload.RampTime = time.Second // an option d does not share
	return []*Run{a, mk("b", 1, 0, 400, false), c, mk("d", 3, 1, 700, true)}
}

func TestFioJSONJobsGroupsAndOptions(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteFioJSON(&buf, jobFileRuns()); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Version string            `json:"fio version"`
		Global  map[string]string `json:"global options"`
		Jobs    []struct {
			JobName    string            `json:"jobname"`
			GroupID    int               `json:"groupid"`
			JobOptions map[string]string `json:"job options"`
			Read       fioDirOut         `json:"read"`
		} `json:"jobs"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Version != "vmstorbench-0.1.0" {
		t.Errorf("fio version %q", doc.Version)
	}
	type entry struct {
		name  string
		group int
		ios   int64
	}
	var got []entry
	for _, j := range doc.Jobs {
		got = append(got, entry{j.JobName, j.GroupID, j.Read.TotalIOs})
		if j.Read.Clat.N != j.Read.TotalIOs {
			t.Errorf("%s: clat N %d for %d I/Os", j.JobName, j.Read.Clat.N, j.Read.TotalIOs)
		}
	}
	want := []entry{{"a", 0, 1000}, {"a", 0, 2000}, {"b", 0, 400}, {"c", 1, 1200}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("entries %v, want %v", got, want)
	}
	// The options all jobs share are the global options; the rest stay with the job.
	if doc.Global["rw"] != "randread" || doc.Global["filename"] != "/var/lib/vm.img" || doc.Global["name"] != "" {
		t.Errorf("global options %v", doc.Global)
	}
	if o := doc.Jobs[0].JobOptions; o["name"] != "a" || o["rw"] != "" || o["numjobs"] != "2" {
		t.Errorf("job a options %v", o)
	}
	if o := doc.Jobs[3].JobOptions; o["group_reporting"] != "1" || o["ramp_time"] == "" {
		t.Errorf("group c+d options %v", o)
	}
}

func TestFioJSONFilenameIsAPath(t *testing.T) {
	for _, c := range []struct {
		url, kind, key, want string
	}{
		{"file:///var/lib/vm.img", "regular", "filename", "/var/lib/vm.img"},
		{"file:///var/tmp", "directory", "directory", "/var/tmp"},
		{"nfs://127.0.0.1:2049/export/vm.img", "", "filename", "/export/vm.img"},
	} {
		r := sampleRun()
		r.Target = Target{URL: c.url, Info: map[string]string{"kind": c.kind}}
		var buf bytes.Buffer
		if err := WriteFioJSON(&buf, []*Run{r}); err != nil {
			t.Fatal(err)
		}
		var out fioOut
		if err := json.Unmarshal(buf.Bytes(), &out); err != nil {
			t.Fatal(err)
		}
		if got := out.Jobs[0].JobOptions[c.key]; got != c.want {
			t.Errorf("%s: %s=%q, want %q (options %v)", c.url, c.key, got, c.want, out.Jobs[0].JobOptions)
		}
	}
}

func TestFioBinsAreFios(t *testing.T) {
	// Every bin fio 3.33 printed is the midpoint of its own bucket.
	ref, err := os.ReadFile("testdata/fio-3.33-randrw-plus.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Jobs []struct {
			Read struct {
				Clat struct {
					Bins map[string]int64 `json:"bins"`
				} `json:"clat_ns"`
			} `json:"read"`
		} `json:"jobs"`
	}
	if err := json.Unmarshal(ref, &doc); err != nil {
		t.Fatal(err)
	}
	bins := doc.Jobs[0].Read.Clat.Bins
	if len(bins) == 0 {
		t.Fatal("reference has no bins")
	}
	for k := range bins {
		v, _ := strconv.ParseInt(k, 10, 64)
		if got := fioPlatIdxToVal(fioPlatValToIdx(v)); got != v {
			t.Errorf("fio bin %d maps to %d", v, got)
		}
	}
	// Small values have a bucket each; 764 is fio's bucket 287 (512 + 31.5*8).
	if fioPlatValToIdx(100) != 100 || fioPlatValToIdx(764) != 287 || fioPlatValToIdx(767) != 287 || fioPlatValToIdx(768) != 288 {
		t.Error("fio bucket indexes")
	}
	// Re-bucketing keeps every count, and each value lands in its own fio bucket.
	h := NewHistogram()
	for _, v := range []int64{5, 5, 764, 767, 1_000_000, 3_000_000_000} {
		RecordClamped(h, v)
	}
	want := []FioBin{{5, 2}, {764, 2}, {fioPlatIdxToVal(fioPlatValToIdx(1_000_000)), 1}, {fioPlatIdxToVal(fioPlatValToIdx(3_000_000_000)), 1}}
	if got := FioBins(h); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("FioBins %v, want %v", got, want)
	}
}

// TestFioJSONPlusWithFiosClat2CSV feeds our json+ to fio's own fio_jsonplus_clat2csv and
// checks that its CSVs count every I/O, then has it validate them against the JSON.
func TestFioJSONPlusWithFiosClat2CSV(t *testing.T) {
	script, err := exec.LookPath("fio_jsonplus_clat2csv")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("CI needs fio_jsonplus_clat2csv (scripts/deps.sh installs the fio package)")
		}
		t.Skip("fio_jsonplus_clat2csv not installed (it comes with the fio package)")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "plus.json")
	f, err := os.Create(src)
	if err != nil {
		t.Fatal(err)
	}
	runs := append([]*Run{sampleRun()}, jobFileRuns()...)
	if err := WriteFioJSONPlus(f, runs); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Jobs []struct {
			Read, Write fioDirOut
		} `json:"jobs"`
	}
	data, _ := os.ReadFile(src)
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(script, src, filepath.Join(dir, "lat.csv")).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	if len(doc.Jobs) != 5 {
		t.Fatalf("%d jobs in our json+, want 5", len(doc.Jobs))
	}
	for i, j := range doc.Jobs {
		name := filepath.Join(dir, fmt.Sprintf("lat_job%d.csv", i))
		rows, sums := readClatCSV(t, name)
		if rows == 0 {
			t.Errorf("%s: no data rows", name)
		}
		if sums["read"] != j.Read.TotalIOs || sums["write"] != j.Write.TotalIOs {
			t.Errorf("%s: counts read %d write %d, want %d %d", name, sums["read"], sums["write"], j.Read.TotalIOs, j.Write.TotalIOs)
		}
	}
	if out, err := exec.Command(script, "--validate", src, filepath.Join(dir, "lat.csv")).CombinedOutput(); err != nil {
		t.Errorf("%s --validate: %v\n%s", script, err, out)
	}
}

// readClatCSV reads a fio_jsonplus_clat2csv CSV: its data rows and the sum of the
// clat_ns counts per direction.
func readClatCSV(t *testing.T, name string) (rows int, sums map[string]int64) {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.TrimLeadingSpace = true
	records, err := r.ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	sums = map[string]int64{}
	header := records[0]
	for _, rec := range records[1:] {
		rows++
		for i, col := range header {
			dir, ok := strings.CutSuffix(col, "_clat_ns_count")
			if !ok || i >= len(rec) || rec[i] == "" {
				continue
			}
			n, err := strconv.ParseInt(rec[i], 10, 64)
			if err != nil {
				t.Fatalf("%s: %s = %q", name, col, rec[i])
			}
			sums[dir] += n
		}
	}
	return rows, sums
}

// TestFioJSONGlobalOptionsFromGlobalSection: with the job file's [global] recorded, the
// global options are exactly those of its options that every job has with the same value,
// even for a single job, and options the jobs merely share stay with each job.
func TestFioJSONGlobalOptionsFromGlobalSection(t *testing.T) {
	for _, c := range []struct {
		name string
		runs []*Run
		want []string // keys of "global options"
	}{
		{"one job without [global]", jobFileRuns()[1:2], nil},
		{"one job with [global]", jobFileRuns()[1:2], []string{"rw"}},
		{"several jobs with [global]", jobFileRuns(), []string{"rw"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, r := range c.runs {
				r.Job.Global = c.want
			}
			var buf bytes.Buffer
			if err := WriteFioJSON(&buf, c.runs); err != nil {
				t.Fatal(err)
			}
			var doc struct {
				Global map[string]string `json:"global options"`
				Jobs   []struct {
					JobOptions map[string]string `json:"job options"`
				} `json:"jobs"`
			}
			if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
				t.Fatal(err)
			}
			var keys []string
			for k := range doc.Global {
				keys = append(keys, k)
			}
			if fmt.Sprint(keys) != fmt.Sprint(c.want) && !(len(keys) == 0 && len(c.want) == 0) {
				t.Errorf("global options %v, want keys %v", doc.Global, c.want)
			}
			for _, j := range doc.Jobs {
				if _, dup := j.JobOptions["rw"]; dup == (len(c.want) > 0) {
					t.Errorf("job options %v with global %v", j.JobOptions, doc.Global)
				}
				if j.JobOptions["filename"] == "" {
					t.Errorf("filename hoisted though [global] did not set it: %v", j.JobOptions)
				}
			}
		})
	}
}
