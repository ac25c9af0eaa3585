package workloads

import (
	"encoding/hex"
	"strconv"
	"strings"
	"time"
)

// Option is one fio job option, spelled as fio spells it.
type Option struct {
	Name, Value string
}

// FioOptions spells w as fio job options that fio, and vmstorbench's job-file parser, read
// back as the same workload: sizes exact in fio's kb_base=1024 units (4k is 4096 bytes),
// durations in the largest unit that divides them, every option that differs from the
// default, and randseed always, so that a run can be repeated. The name and filename are
// left to the caller.
func (w Workload) FioOptions() []Option {
	var o []Option
	add := func(k, v string) { o = append(o, Option{k, v}) }
	switch {
	case w.RWModifier != 0 && w.IsRandom():
		add("rw", w.RW+":"+strconv.FormatInt(w.RWModifier, 10))
	case w.RWModifier < 0:
		add("rw", w.RW+":-"+FioSize(-w.RWModifier))
	case w.RWModifier > 0:
		add("rw", w.RW+":"+FioSize(w.RWModifier))
	default:
		add("rw", w.RW)
	}
	if w.RWSequencer != "" {
		add("rw_sequencer", w.RWSequencer)
	}
	if w.IsMixed() {
		add("rwmixread", strconv.Itoa(w.RWMixRead))
	}
	rd, wr := w.BS[Read], w.BS[Write]
	if rd.Min == rd.Max && wr.Min == wr.Max {
		add("bs", perDir(FioSize(rd.Min), FioSize(wr.Min)))
	} else {
		add("bsrange", perDir(FioSize(rd.Min)+"-"+FioSize(rd.Max), FioSize(wr.Min)+"-"+FioSize(wr.Max)))
	}
	if w.BSSplit[Read] != nil || w.BSSplit[Write] != nil {
		add("bssplit", perDir(fioSplit(w.BSSplit[Read]), fioSplit(w.BSSplit[Write])))
	}
	if w.BlockAlign != [2]int64{} {
		add("blockalign", perDir(fioSizeOrEmpty(w.BlockAlign[Read]), fioSizeOrEmpty(w.BlockAlign[Write])))
	}
	if rd := fioDistribution(w.RandomDist); rd != "" {
		add("random_distribution", rd)
	}
	add("size", FioSize(w.Size))
	if w.Offset > 0 {
		add("offset", FioSize(w.Offset))
	}
	if w.IOSize > 0 {
		add("io_size", FioSize(w.IOSize))
	}
	add("iodepth", strconv.Itoa(w.IODepth))
	add("numjobs", strconv.Itoa(w.NumJobs))
	if w.Runtime > 0 {
		add("runtime", FioDuration(w.Runtime))
	}
	if w.TimeBased {
		add("time_based", "1")
	}
	if w.RampTime > 0 {
		add("ramp_time", FioDuration(w.RampTime))
	}
	if w.Rate != [2]int64{} {
		add("rate", perDir(FioSize(w.Rate[Read]), FioSize(w.Rate[Write])))
	}
	if w.RateIOPS != [2]int64{} {
		// Plain numbers: rate_iops takes size suffixes, so 1k would be 1024.
		add("rate_iops", perDir(strconv.FormatInt(w.RateIOPS[Read], 10), strconv.FormatInt(w.RateIOPS[Write], 10)))
	}
	add("randseed", strconv.FormatUint(w.RandSeed, 10))
	if w.Direct {
		add("direct", "1")
	}
	if w.Fsync > 0 {
		add("fsync", strconv.Itoa(w.Fsync))
	}
	if w.Verify != "" {
		add("verify", w.Verify)
	}
	if len(w.VerifyPattern) > 0 {
		add("verify_pattern", "0x"+hex.EncodeToString(w.VerifyPattern))
	}
	if w.VerifyInterval > 0 {
		add("verify_interval", FioSize(w.VerifyInterval))
	}
	if w.Loops > 0 {
		add("loops", strconv.Itoa(w.Loops))
	}
	if w.NumberIOs > 0 {
		add("number_ios", strconv.FormatInt(w.NumberIOs, 10))
	}
	if w.StartDelay > 0 {
		add("startdelay", FioDuration(w.StartDelay))
	}
	if w.ThinkTime > 0 {
		add("thinktime", FioDuration(w.ThinkTime))
	}
	if w.ThinkTimeSpin > 0 {
		add("thinktime_spin", FioDuration(w.ThinkTimeSpin))
	}
	if w.ThinkTimeBlocks > 0 {
		add("thinktime_blocks", strconv.Itoa(w.ThinkTimeBlocks))
	}
	if w.RateProcess != "" {
		add("rate_process", w.RateProcess)
	}
	if len(w.BufferPattern) > 0 {
		add("buffer_pattern", "0x"+hex.EncodeToString(w.BufferPattern))
	}
	if w.BufferCompressPct > 0 {
		add("buffer_compress_percentage", strconv.Itoa(w.BufferCompressPct))
	}
	if w.BufferCompressChunk > 0 {
		add("buffer_compress_chunk", FioSize(w.BufferCompressChunk))
	}
	if w.DedupePct > 0 {
		add("dedupe_percentage", strconv.Itoa(w.DedupePct))
	}
	if w.SyncIO != "" {
		add("sync", w.SyncIO)
	}
	if w.Fdatasync > 0 {
		add("fdatasync", strconv.Itoa(w.Fdatasync))
	}
	if w.NoInvalidate {
		add("invalidate", "0")
	}
	if w.NrFiles > 0 {
		add("nrfiles", strconv.Itoa(w.NrFiles))
	}
	if w.FileSize.Min > 0 {
		if w.FileSize.Min == w.FileSize.Max {
			add("filesize", FioSize(w.FileSize.Min))
		} else {
			add("filesize", FioSize(w.FileSize.Min)+"-"+FioSize(w.FileSize.Max))
		}
	}
	if w.Directory != "" {
		add("directory", strings.ReplaceAll(w.Directory, ":", `\:`))
	}
	if w.FilenameFormat != "" {
		add("filename_format", w.FilenameFormat)
	}
	return o
}

// fioSplit spells one direction of bssplit: "4k/10:64k/90".
func fioSplit(sp []BSSplitEntry) string {
	var parts []string
	for _, e := range sp {
		parts = append(parts, FioSize(e.BS)+"/"+strconv.Itoa(e.Pct))
	}
	return strings.Join(parts, ":")
}

// fioSizeOrEmpty spells 0 as an empty per-direction part (fio: keep the default).
func fioSizeOrEmpty(n int64) string {
	if n == 0 {
		return ""
	}
	return FioSize(n)
}

// fioDistribution spells random_distribution, "" for uniform in both directions. fio has
// per-direction values for zoned and zoned_abs only; other kinds are the same for both
// directions when the parser made them.
func fioDistribution(rd [2]Distribution) string {
	dir := func(d Distribution) string {
		var parts []string
		for _, z := range d.Zones {
			size := strconv.FormatInt(z.Size, 10)
			if d.Kind == "zoned_abs" {
				size = FioSize(z.Size)
			}
			parts = append(parts, strconv.Itoa(z.AccessPct)+"/"+size)
		}
		return strings.Join(parts, ":")
	}
	r, w := rd[Read], rd[Write]
	switch {
	case (r.Kind == "" || r.Kind == "random") && (w.Kind == "" || w.Kind == "random"):
		return ""
	case r.Kind == "zoned" || r.Kind == "zoned_abs":
		return r.Kind + ":" + perDir(dir(r), dir(w))
	case w.Kind == "zoned" || w.Kind == "zoned_abs":
		return w.Kind + ":," + dir(w)
	}
	return r.Kind + ":" + strconv.FormatFloat(r.Param, 'g', -1, 64)
}

// perDir is fio's "read,write" value, or one value when both are the same.
func perDir(r, w string) string {
	if r == w {
		return r
	}
	return r + "," + w
}

// FioSize spells n bytes as fio reads it with its default kb_base=1024, exactly: 4k, 1m,
// 2g, 4097. (Not units.FormatSize: fio reads "KiB" as 1000.)
func FioSize(n int64) string {
	suffix := []string{"", "k", "m", "g", "t", "p"}
	i := 0
	for n >= 1024 && n%1024 == 0 && i < len(suffix)-1 {
		n /= 1024
		i++
	}
	return strconv.FormatInt(n, 10) + suffix[i]
}

// FioDuration spells d exactly in the largest fio time unit that divides it.
func FioDuration(d time.Duration) string {
	switch {
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	case d%time.Millisecond == 0:
		return strconv.FormatInt(int64(d/time.Millisecond), 10) + "ms"
	case d%time.Microsecond == 0:
		return strconv.FormatInt(int64(d/time.Microsecond), 10) + "us"
	}
	return strconv.FormatInt(int64(d), 10) + "ns"
}
