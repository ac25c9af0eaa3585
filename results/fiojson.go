package results

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/vmstorbench/vmstorbench/workloads"
)

// WriteFioJSON writes runs in fio 3.x's --output-format=json layout (checked against
// testdata/fio-3.33-randrw.json, a real fio output), so tools that read fio JSON read ours.
// Each run is one job in its own group, like a fio job with group_reporting=1: our figures
// are aggregated over numjobs. Mapping:
//   - clat_ns and lat_ns both carry our submission-to-completion latency (we do not split
//     submission latency, as with fio's synchronous engines; slat_ns is zero).
//   - bw_*/iops_* min/max/mean/dev come from the run's time series (one sample per interval).
//   - latency_ns/us/ms are computed from the latency histograms (within their 0.1% resolution).
//   - Figures we do not measure are zero: short/drop ios, ctx, majf, minf, iodepth_*,
//     and trim (never used). "error" is 5 (EIO) when the run ended with an error.
func WriteFioJSON(w io.Writer, runs []*Run) error {
	doc := fioDoc{Version: "vmstorbench", GlobalOptions: object{}, Jobs: []fioJob{}, DiskUtil: []struct{}{}}
	end := time.Now()
	if len(runs) > 0 {
		end = time.Time{}
		if v := runs[0].Tool.Version; v != "" {
			doc.Version += "-" + v
		}
	}
	for i, r := range runs {
		if r.End.After(end) {
			end = r.End
		}
		job, err := fioJobFrom(i, r)
		if err != nil {
			return err
		}
		doc.Jobs = append(doc.Jobs, job)
	}
	doc.Timestamp, doc.TimestampMS = end.Unix(), end.UnixMilli()
	doc.Time = end.Local().Format(time.ANSIC) // fio prints ctime(3)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("results: write fio JSON: %w", err)
	}
	return nil
}

type fioDoc struct {
	Version       string     `json:"fio version"`
	Timestamp     int64      `json:"timestamp"`
	TimestampMS   int64      `json:"timestamp_ms"`
	Time          string     `json:"time"`
	GlobalOptions object     `json:"global options"`
	Jobs          []fioJob   `json:"jobs"`
	DiskUtil      []struct{} `json:"disk_util"`
}

type fioJob struct {
	JobName           string  `json:"jobname"`
	GroupID           int     `json:"groupid"`
	Error             int     `json:"error"`
	ETA               int64   `json:"eta"`
	Elapsed           int64   `json:"elapsed"`
	JobOptions        object  `json:"job options"`
	Read              fioDir  `json:"read"`
	Write             fioDir  `json:"write"`
	Trim              fioDir  `json:"trim"`
	Sync              fioSync `json:"sync"`
	JobRuntime        int64   `json:"job_runtime"`
	UsrCPU            float64 `json:"usr_cpu"`
	SysCPU            float64 `json:"sys_cpu"`
	Ctx               int64   `json:"ctx"`
	Majf              int64   `json:"majf"`
	Minf              int64   `json:"minf"`
	IODepthLevel      object  `json:"iodepth_level"`
	IODepthSubmit     object  `json:"iodepth_submit"`
	IODepthComplete   object  `json:"iodepth_complete"`
	LatencyNS         object  `json:"latency_ns"`
	LatencyUS         object  `json:"latency_us"`
	LatencyMS         object  `json:"latency_ms"`
	LatencyDepth      int     `json:"latency_depth"`
	LatencyTarget     int64   `json:"latency_target"`
	LatencyPercentile float64 `json:"latency_percentile"`
	LatencyWindow     int64   `json:"latency_window"`
}

type fioDir struct {
	IOBytes     int64   `json:"io_bytes"`
	IOKBytes    int64   `json:"io_kbytes"`
	BWBytes     int64   `json:"bw_bytes"`
	BW          int64   `json:"bw"` // KiB/s
	IOPS        float64 `json:"iops"`
	Runtime     int64   `json:"runtime"` // ms
	TotalIOs    int64   `json:"total_ios"`
	ShortIOs    int64   `json:"short_ios"`
	DropIOs     int64   `json:"drop_ios"`
	Slat        fioLat  `json:"slat_ns"`
	Clat        fioLat  `json:"clat_ns"`
	Lat         fioLat  `json:"lat_ns"`
	BWMin       int64   `json:"bw_min"`
	BWMax       int64   `json:"bw_max"`
	BWAgg       float64 `json:"bw_agg"`
	BWMean      float64 `json:"bw_mean"`
	BWDev       float64 `json:"bw_dev"`
	BWSamples   int64   `json:"bw_samples"`
	IOPSMin     int64   `json:"iops_min"`
	IOPSMax     int64   `json:"iops_max"`
	IOPSMean    float64 `json:"iops_mean"`
	IOPSStddev  float64 `json:"iops_stddev"`
	IOPSSamples int64   `json:"iops_samples"`
}

type fioLat struct {
	Min        int64   `json:"min"`
	Max        int64   `json:"max"`
	Mean       float64 `json:"mean"`
	Stddev     float64 `json:"stddev"`
	N          int64   `json:"N"`
	Percentile object  `json:"percentile,omitempty"` // fio omits it when N == 0
}

type fioSync struct {
	TotalIOs int64  `json:"total_ios"`
	Lat      fioLat `json:"lat_ns"`
}

// object is a JSON object that keeps its keys in order, as fio prints them.
type object []field

type field struct {
	key   string
	value any
}

func (o object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(f.key)
		v, err := json.Marshal(f.value)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func fioJobFrom(i int, r *Run) (fioJob, error) {
	j := fioJob{
		JobName: jobName(r), GroupID: i, Elapsed: int64(math.Round(r.End.Sub(r.Start).Seconds())),
		JobOptions: fioJobOptions(r), JobRuntime: r.RuntimeNS / 1e6,
		UsrCPU: r.CPU.UsrPct, SysCPU: r.CPU.SysPct,
		IODepthLevel:    zeros("1", "2", "4", "8", "16", "32", ">=64"),
		IODepthSubmit:   zeros("0", "4", "8", "16", "32", "64", ">=64"),
		IODepthComplete: zeros("0", "4", "8", "16", "32", "64", ">=64"),
		LatencyDepth:    r.Workload.IODepth, LatencyPercentile: 100,
	}
	if r.Error != "" {
		j.Error = 5 // EIO: fio's error is an errno
	}
	for _, d := range []workloads.Direction{workloads.Read, workloads.Write} {
		s := r.Dir(d)
		if s == nil {
			continue
		}
		fd := fioDir{
			IOBytes: s.Bytes, IOKBytes: s.Bytes / 1024, BWBytes: int64(s.BWBps), BW: int64(s.BWBps / 1024),
			IOPS: s.IOPS, Runtime: r.RuntimeNS / 1e6, TotalIOs: s.IOs,
			Clat: fioLatFrom(s.Lat), Lat: fioLatFrom(s.Lat),
		}
		fillSeriesStats(&fd, r.Series, d)
		if d == workloads.Write {
			j.Write = fd
		} else {
			j.Read = fd
		}
	}
	if r.Sync != nil {
		j.Sync = fioSync{TotalIOs: r.Sync.IOs, Lat: fioLatFrom(r.Sync.Lat)}
	}
	var err error
	j.LatencyNS, j.LatencyUS, j.LatencyMS, err = latencyBuckets(r)
	if err != nil {
		return fioJob{}, fmt.Errorf("results: fio JSON for run %s: %w", r.ID, err)
	}
	return j, nil
}

func jobName(r *Run) string {
	if r.Workload.Name != "" {
		return r.Workload.Name
	}
	return r.Workload.RW
}

func fioLatFrom(l Latency) fioLat {
	f := fioLat{Min: l.Min, Max: l.Max, Mean: l.Mean, Stddev: l.Stddev, N: l.N}
	if l.N > 0 {
		for _, p := range FioPercentiles {
			k := PercentileKey(p)
			f.Percentile = append(f.Percentile, field{k, l.Percentiles[k]})
		}
	}
	return f
}

// fillSeriesStats computes fio's per-sample bandwidth (KiB/s) and IOPS statistics from the
// intervals in which direction d was active. fio's deviations are sample deviations (n-1).
func fillSeriesStats(fd *fioDir, s Series, d workloads.Direction) {
	var bw, iops []float64
	for _, p := range s.Points {
		ps := p.Read
		if d == workloads.Write {
			ps = p.Write
		}
		if ps != nil {
			bw = append(bw, ps.BWBps/1024)
			iops = append(iops, ps.IOPS)
		}
	}
	if len(bw) == 0 {
		return
	}
	var bwMin, bwMax, bwMean, bwDev float64
	bwMin, bwMax, bwMean, bwDev = sampleStats(bw)
	fd.BWMin, fd.BWMax, fd.BWMean, fd.BWDev = int64(bwMin), int64(bwMax), bwMean, bwDev
	fd.BWAgg, fd.BWSamples = 100, int64(len(bw)) // one job per group: it is the whole group
	var ioMin, ioMax float64
	ioMin, ioMax, fd.IOPSMean, fd.IOPSStddev = sampleStats(iops)
	fd.IOPSMin, fd.IOPSMax, fd.IOPSSamples = int64(ioMin), int64(ioMax), int64(len(iops))
}

func sampleStats(xs []float64) (lo, hi, mean, dev float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, x := range xs {
		lo, hi = min(lo, x), max(hi, x)
		mean += x
	}
	mean /= float64(len(xs))
	if len(xs) > 1 {
		var ss float64
		for _, x := range xs {
			ss += (x - mean) * (x - mean)
		}
		dev = math.Sqrt(ss / float64(len(xs)-1))
	}
	return lo, hi, mean, dev
}

func zeros(keys ...string) object {
	o := make(object, len(keys))
	for i, k := range keys {
		o[i] = field{k, 0.0}
	}
	return o
}

// fio's latency buckets: each key is the exclusive upper bound of its bucket in that unit,
// the lower bound is the previous key (0 ns for the first, 1000 ns/µs for the first µs/ms
// one); ">=2000" ms takes the rest.
var (
	latKeys    = []string{"2", "4", "10", "20", "50", "100", "250", "500", "750", "1000"}
	latMSKeys  = append(append([]string{}, latKeys...), "2000", ">=2000")
	latBoundNS = func() []int64 {
		var b []int64
		for _, unit := range []int64{1, 1e3, 1e6} {
			keys := latKeys
			if unit == 1e6 {
				keys = latMSKeys[:len(latMSKeys)-1]
			}
			for _, k := range keys {
				n, _ := strconv.ParseInt(k, 10, 64)
				b = append(b, n*unit)
			}
		}
		return append(b, math.MaxInt64)
	}()
)

// latencyBuckets gives the share (percent) of all I/Os in each fio latency bucket.
func latencyBuckets(r *Run) (ns, us, ms object, err error) {
	counts := make([]int64, len(latBoundNS))
	var total int64
	for _, s := range []*DirStats{r.Read, r.Write} {
		if s == nil || s.Lat.N == 0 || s.Lat.Histogram == "" {
			continue
		}
		h, err := DecodeHistogram(s.Lat.Histogram)
		if err != nil {
			return nil, nil, nil, err
		}
		i := 0
		for _, bar := range h.Distribution() {
			if bar.Count == 0 {
				continue
			}
			for bar.From >= latBoundNS[i] {
				i++
			}
			counts[i] += bar.Count
			total += bar.Count
		}
	}
	share := func(c int64) float64 {
		if total == 0 {
			return 0
		}
		return float64(c) * 100 / float64(total)
	}
	n := len(latKeys)
	for i, k := range latKeys {
		ns = append(ns, field{k, share(counts[i])})
		us = append(us, field{k, share(counts[n+i])})
	}
	for i, k := range latMSKeys {
		ms = append(ms, field{k, share(counts[2*n+i])})
	}
	return ns, us, ms, nil
}

// fioJobOptions spells the workload as fio job options (fio prints every value as a string).
func fioJobOptions(r *Run) object {
	w := r.Workload
	o := object{{"name", jobName(r)}}
	for _, opt := range w.FioOptions() {
		o = append(o, field{opt.Name, opt.Value})
		if opt.Name == "numjobs" && w.NumJobs > 1 {
			o = append(o, field{"group_reporting", "1"})
		}
	}
	if r.Target.URL != "" {
		o = append(o, field{"filename", r.Target.URL})
	} else if w.Filename != "" {
		o = append(o, field{"filename", w.Filename})
	}
	return o
}
