package results

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
	"testing"

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
			if strings.HasSuffix(path, "options") {
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
	ref, err := os.ReadFile("testdata/fio-3.33-randrw.json")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteFioJSON(&buf, []*Run{sampleRun()}); err != nil {
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
