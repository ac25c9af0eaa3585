package results

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/vmstorbench/vmstorbench/workloads"
)

// WriteFioJSON writes runs in fio 3.x's --output-format=json layout (checked against
// testdata/fio-3.33-randrw.json, a real fio output), so tools that read fio JSON read ours.
//
// Jobs are reported as fio reports them: one entry per job, and per numjobs clone when the
// run kept per-job figures (Run.Jobs); a job with group_reporting is summed into the entry
// before it in its reporting group (ReportUnits, MergeGroup). A run without per-job figures
// is one entry aggregated over its numjobs, marked group_reporting=1 in its options.
// "groupid" numbers the reporting groups in order; "global options" holds the options that
// every job of a job file has in common, as fio shows its [global] section. Mapping:
//   - clat_ns and lat_ns both carry our submission-to-completion latency (we do not split
//     submission latency, as with fio's synchronous engines; slat_ns is zero).
//   - bw_*/iops_* min/max/mean/dev come from the run's time series (one sample per interval);
//     numjobs clones have no series of their own, and no samples.
//   - latency_ns/us/ms are computed from the latency histograms (within their 0.1% resolution).
//   - job options.filename is the target's path (directory= for a directory target).
//   - Figures we do not measure are zero: short/drop ios, ctx, majf, minf, iodepth_*,
//     and trim (never used). "error" is 5 (EIO) when the run ended with an error.
func WriteFioJSON(w io.Writer, runs []*Run) error {
	return writeFio(w, runs, false)
}

// WriteFioJSONPlus is WriteFioJSON for fio's --output-format=json+: clat_ns and lat_ns also
// carry "bins", the latency histogram in fio's own buckets (FioBins), which fio's
// fio_jsonplus_clat2csv and other json+ readers take.
func WriteFioJSONPlus(w io.Writer, runs []*Run) error {
	return writeFio(w, runs, true)
}

func writeFio(w io.Writer, runs []*Run, plus bool) error {
	doc := fioDoc{Version: "vmstorbench-dev", GlobalOptions: object{}, Jobs: []fioJob{}, DiskUtil: []struct{}{}}
	end := time.Now()
	if len(runs) > 0 {
		end = time.Time{}
		if v := strings.TrimPrefix(runs[0].Tool.Version, "v"); v != "" {
			// fio says "fio-3.33": name, dash, version without a "v".
			doc.Version = "vmstorbench-" + v
		}
	}
	for _, r := range runs {
		if r.End.After(end) {
			end = r.End
		}
	}
	groupID, lastGroup := -1, ""
	for _, unit := range ReportUnits(runs) {
		first := unit[0]
		if key := groupKey(first); key == "" || key != lastGroup {
			groupID++
			lastGroup = key
		}
		r, err := MergeGroup(unit)
		if err != nil {
			return err
		}
		grouped := len(unit) > 1 || (first.Job != nil && first.Job.GroupReporting)
		if grouped || len(r.Jobs) == 0 {
			job, err := fioJobFrom(groupID, r, r.Read, r.Write, r.Sync, true, plus)
			if err != nil {
				return err
			}
			if grouped || r.Workload.NumJobs > 1 {
				// Figures of several jobs summed: what fio prints with group_reporting.
				job.JobOptions = append(job.JobOptions, field{"group_reporting", "1"})
			}
			doc.Jobs = append(doc.Jobs, job)
			continue
		}
		for _, js := range r.Jobs {
			job, err := fioJobFrom(groupID, r, js.Read, js.Write, js.Sync, false, plus)
			if err != nil {
				return err
			}
			doc.Jobs = append(doc.Jobs, job)
		}
	}
	doc.GlobalOptions = hoistGlobals(runs, doc.Jobs)
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

// groupKey identifies a run's reporting group; "" for a run outside a job file, which is a
// group of its own.
func groupKey(r *Run) string {
	if r.Job == nil {
		return ""
	}
	return r.Job.Set + "\x00" + strconv.Itoa(r.Job.Group)
}

// hoistGlobals moves options from the entries' job options to the global options, as fio
// shows a job file's [global] section: the options the file's [global] set (recorded in
// each run's JobInfo.Global), where every entry has the same value. Documents written
// before that was recorded fall back to the options that two or more different jobs of a
// job file share; a single job or workload without a [global] keeps all its options, as fio
// prints a command-line job.
func hoistGlobals(runs []*Run, jobs []fioJob) object {
	if len(jobs) == 0 {
		return object{}
	}
	distinct := map[[2]string]bool{}
	var fromFile map[string]bool
	for _, r := range runs {
		if r.Job == nil {
			return object{}
		}
		distinct[[2]string{r.Job.Set, strconv.Itoa(r.Job.Index)}] = true
		if r.Job.Global != nil {
			if fromFile == nil {
				fromFile = map[string]bool{}
			}
			for _, k := range r.Job.Global {
				fromFile[k] = true
			}
		}
	}
	if fromFile == nil && (len(distinct) < 2 || len(jobs) < 2) {
		return object{}
	}
	global := object{}
	for _, f := range jobs[0].JobOptions {
		if f.key == "name" || (fromFile != nil && !fromFile[f.key]) {
			continue
		}
		shared := true
		for _, j := range jobs[1:] {
			if v, ok := j.JobOptions.get(f.key); !ok || v != f.value {
				shared = false
				break
			}
		}
		if shared {
			global = append(global, f)
		}
	}
	for i := range jobs {
		var kept object
		for _, f := range jobs[i].JobOptions {
			if _, ok := global.get(f.key); !ok {
				kept = append(kept, f)
			}
		}
		jobs[i].JobOptions = kept
	}
	return global
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
	Bins       object  `json:"bins,omitempty"`       // json+ only, and not when N == 0
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

// get returns the value of key.
func (o object) get(key string) (any, bool) {
	for _, f := range o {
		if f.key == key {
			return f.value, true
		}
	}
	return nil, false
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

// fioJobFrom builds one fio job entry of run r in group groupID from the given direction
// figures (the run's totals or one numjobs job's); series says whether r's time series
// describes them, plus whether to add json+ bins.
func fioJobFrom(groupID int, r *Run, read, write, sync *DirStats, series, plus bool) (fioJob, error) {
	j := fioJob{
		JobName: jobName(r), GroupID: groupID, Elapsed: int64(math.Round(r.End.Sub(r.Start).Seconds())),
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
		s := read
		if d == workloads.Write {
			s = write
		}
		if s == nil {
			continue
		}
		fd := fioDir{
			IOBytes: s.Bytes, IOKBytes: s.Bytes / 1024, BWBytes: int64(s.BWBps), BW: int64(s.BWBps / 1024),
			IOPS: s.IOPS, Runtime: r.RuntimeNS / 1e6, TotalIOs: s.IOs,
		}
		var err error
		if fd.Clat, err = fioLatFrom(s.Lat, plus); err != nil {
			return fioJob{}, fmt.Errorf("results: fio JSON for run %s: %w", r.ID, err)
		}
		fd.Lat = fd.Clat
		if series {
			fillSeriesStats(&fd, r.Series, d)
		}
		if d == workloads.Write {
			j.Write = fd
		} else {
			j.Read = fd
		}
	}
	if sync != nil {
		l, err := fioLatFrom(sync.Lat, false) // fio keeps no bins for syncs
		if err != nil {
			return fioJob{}, fmt.Errorf("results: fio JSON for run %s: %w", r.ID, err)
		}
		j.Sync = fioSync{TotalIOs: sync.IOs, Lat: l}
	}
	var err error
	j.LatencyNS, j.LatencyUS, j.LatencyMS, err = latencyBuckets(read, write)
	if err != nil {
		return fioJob{}, fmt.Errorf("results: fio JSON for run %s: %w", r.ID, err)
	}
	return j, nil
}

func jobName(r *Run) string {
	if r.Job != nil && r.Job.Name != "" {
		return r.Job.Name
	}
	if r.Workload.Name != "" {
		return r.Workload.Name
	}
	return r.Workload.RW
}

func fioLatFrom(l Latency, plus bool) (fioLat, error) {
	f := fioLat{Min: l.Min, Max: l.Max, Mean: l.Mean, Stddev: l.Stddev, N: l.N}
	if l.N == 0 {
		return f, nil
	}
	for _, p := range FioPercentiles {
		k := PercentileKey(p)
		f.Percentile = append(f.Percentile, field{k, l.Percentiles[k]})
	}
	if plus && l.Histogram != "" {
		h, err := DecodeHistogram(l.Histogram)
		if err != nil {
			return fioLat{}, err
		}
		for _, b := range FioBins(h) {
			f.Bins = append(f.Bins, field{strconv.FormatInt(b.Value, 10), b.Count})
		}
	}
	return f, nil
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
func latencyBuckets(dirs ...*DirStats) (ns, us, ms object, err error) {
	counts := make([]int64, len(latBoundNS))
	var total int64
	for _, s := range dirs {
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
	}
	if key, path := fioFilename(r); path != "" {
		o = append(o, field{key, path})
	}
	return o
}

// fioFilename gives the target as fio names it: filename= with the path of a file or
// device, directory= for a directory in which the backend created its bench files. For a
// network target it is the path in the URL (the share's or export's file), as fio's
// network engines take a path within the share.
func fioFilename(r *Run) (key, path string) {
	if r.Target.URL == "" {
		return "filename", r.Workload.Filename
	}
	u, err := url.Parse(r.Target.URL)
	if err != nil || u.Path == "" {
		return "filename", r.Workload.Filename
	}
	if r.Target.Info["kind"] == "directory" { // as the file backend describes it
		return "directory", u.Path
	}
	return "filename", u.Path
}
