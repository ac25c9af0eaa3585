package workloads

import (
	"strconv"
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
	add("rw", w.RW)
	if w.IsMixed() {
		add("rwmixread", strconv.Itoa(w.RWMixRead))
	}
	rd, wr := w.BS[Read], w.BS[Write]
	if rd.Min == rd.Max && wr.Min == wr.Max {
		add("bs", perDir(FioSize(rd.Min), FioSize(wr.Min)))
	} else {
		add("bsrange", perDir(FioSize(rd.Min)+"-"+FioSize(rd.Max), FioSize(wr.Min)+"-"+FioSize(wr.Max)))
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
	return o
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
	}
	return strconv.FormatInt(int64(d/time.Microsecond), 10) + "us"
}
