// Package workloads describes what the engine does, in fio's vocabulary: the Workload model
// with its defaults and validation, named profiles for VM-image patterns, and a parser for
// fio job files.
package workloads

import (
	"errors"
	"fmt"
	"time"

	"github.com/vmstorbench/vmstorbench/workloads/units"
)

// Direction is read or write.
type Direction int

const (
	Read Direction = iota
	Write
)

func (d Direction) String() string {
	if d == Write {
		return "write"
	}
	return "read"
}

// Pattern values for Workload.RW, as fio spells them.
const (
	SeqRead   = "read"
	SeqWrite  = "write"
	RandRead  = "randread"
	RandWrite = "randwrite"
	SeqMixed  = "rw" // fio also accepts "readwrite"
	RandMixed = "randrw"
)

// BlockSize is a fixed block size (Min == Max) or a range fio picks from in multiples of Min.
type BlockSize struct {
	Min int64 `json:"min"`
	Max int64 `json:"max"`
}

// Fixed returns a BlockSize of n bytes.
func Fixed(n int64) BlockSize { return BlockSize{Min: n, Max: n} }

func (b BlockSize) String() string {
	if b.Min == b.Max {
		return units.FormatSize(b.Min)
	}
	return units.FormatSize(b.Min) + "-" + units.FormatSize(b.Max)
}

// Workload is one fio job: what each of NumJobs jobs does to its Target. Zero values mean
// fio's defaults (see Defaults). Per-direction fields are indexed by Direction.
type Workload struct {
	Name      string       `json:"name"`
	RW        string       `json:"rw"`
	RWMixRead int          `json:"rwmixread"`
	BS        [2]BlockSize `json:"bs"`
	// Size is the region each job works on, starting at Offset.
	Size   int64 `json:"size"`
	Offset int64 `json:"offset,omitempty"`
	// IOSize is how many bytes a job transfers before it stops when not TimeBased
	// (fio io_size; default Size).
	IOSize    int64         `json:"io_size,omitempty"`
	IODepth   int           `json:"iodepth"`
	NumJobs   int           `json:"numjobs"`
	Runtime   time.Duration `json:"runtime_ns,omitempty"`
	TimeBased bool          `json:"time_based,omitempty"`
	RampTime  time.Duration `json:"ramp_time_ns,omitempty"`
	// Rate caps bytes/s per job and direction; RateIOPS caps I/Os per second. 0 = no cap.
	Rate     [2]int64 `json:"rate,omitempty"`
	RateIOPS [2]int64 `json:"rate_iops,omitempty"`
	// RandSeed fixes the random offsets: the same seed gives the same offsets.
	RandSeed uint64 `json:"randseed"`
	Direct   bool   `json:"direct,omitempty"`
	// Fsync syncs the target after every Fsync writes (per job). 0 = never.
	Fsync int `json:"fsync,omitempty"`
	// Verify is "" (off), "crc32c", "md5", "sha256", "meta" (header only) or "pattern"
	// (VerifyPattern).
	Verify string `json:"verify,omitempty"`
	// Filename is a fio job file's filename=; the CLI uses it as a file:// target when no
	// --target is given.
	Filename string `json:"filename,omitempty"`

	// The fields below are fio options beyond the basic set. Zero values mean fio's default.

	// BSSplit (fio bssplit) gives each direction a weighted list of block sizes; when set for
	// a direction it overrides BS there (BS then holds the smallest and largest size).
	BSSplit [2][]BSSplitEntry `json:"bssplit,omitempty"`
	// BlockAlign (fio blockalign) aligns random offsets per direction; 0 = the minimum block
	// size of the direction.
	BlockAlign [2]int64 `json:"blockalign,omitempty"`
	// RandomDist (fio random_distribution) spreads random offsets per direction; a zero
	// Distribution is uniform ("random").
	RandomDist [2]Distribution `json:"random_distribution,omitempty"`
	// RWModifier is fio's rw offset modifier (rw=read:8k, rw=randread:8): for sequential
	// patterns bytes added to the offset after each I/O (negative: backwards); for random
	// patterns the number of I/Os issued from one generated offset before a new one.
	RWModifier int64 `json:"rw_modifier,omitempty"`
	// RWSequencer is fio's rw_sequencer ("sequential", the default, or "identical").
	RWSequencer string `json:"rw_sequencer,omitempty"`
	// Loops (fio loops) repeats a job that is not time_based; 0 = 1.
	Loops int `json:"loops,omitempty"`
	// NumberIOs (fio number_ios) ends a job after this many I/Os; 0 = no limit.
	NumberIOs int64 `json:"number_ios,omitempty"`
	// StartDelay (fio startdelay) delays the job's start.
	StartDelay time.Duration `json:"startdelay_ns,omitempty"`
	// ThinkTime (fio thinktime) is a pause after every ThinkTimeBlocks I/Os (default 1), of
	// which the first ThinkTimeSpin is spent spinning.
	ThinkTime       time.Duration `json:"thinktime_ns,omitempty"`
	ThinkTimeSpin   time.Duration `json:"thinktime_spin_ns,omitempty"`
	ThinkTimeBlocks int           `json:"thinktime_blocks,omitempty"`
	// RateProcess (fio rate_process) is "" / "linear" or "poisson".
	RateProcess string `json:"rate_process,omitempty"`
	// Data written (fio buffer_pattern, buffer_compress_percentage, buffer_compress_chunk,
	// dedupe_percentage): default non-compressible, non-dedupable.
	BufferPattern       []byte `json:"buffer_pattern,omitempty"`
	BufferCompressPct   int    `json:"buffer_compress_percentage,omitempty"`
	BufferCompressChunk int64  `json:"buffer_compress_chunk,omitempty"`
	DedupePct           int    `json:"dedupe_percentage,omitempty"`
	// SyncIO (fio sync) opens files for synchronous writes: "" (off), "sync" (O_SYNC) or
	// "dsync" (O_DSYNC). Fdatasync (fio fdatasync) syncs data every Fdatasync writes.
	SyncIO    string `json:"sync,omitempty"`
	Fdatasync int    `json:"fdatasync,omitempty"`
	// VerifyPattern (fio verify_pattern) is the data verify=pattern writes and checks;
	// VerifyInterval (fio verify_interval) is the size of each verified piece of a block
	// (0 = the block size).
	VerifyPattern  []byte `json:"verify_pattern,omitempty"`
	VerifyInterval int64  `json:"verify_interval,omitempty"`
	// NoInvalidate is fio's invalidate=0: keep the target's cached pages before the job.
	// fio's default (invalidate=1) drops them, so the zero value does.
	NoInvalidate bool `json:"invalidate_off,omitempty"`
	// Files (fio nrfiles, filesize, directory, filename_format): a job works on NrFiles files
	// (default 1) of FileSize each (a range picks per file; default size/nrfiles), named by
	// FilenameFormat ($jobname, $jobnum, $filenum) inside Directory.
	NrFiles        int       `json:"nrfiles,omitempty"`
	FileSize       BlockSize `json:"filesize,omitempty"`
	Directory      string    `json:"directory,omitempty"`
	FilenameFormat string    `json:"filename_format,omitempty"`
}

// BSSplitEntry is one block size of fio's bssplit and the share of the direction's I/Os
// that use it. A direction's entries add up to 100.
type BSSplitEntry struct {
	BS  int64 `json:"bs"`
	Pct int   `json:"pct"`
}

// Distribution is fio's random_distribution for one direction.
type Distribution struct {
	// Kind is "" or "random" (uniform), "zipf", "pareto", "normal", "zoned", "zoned_abs".
	Kind string `json:"kind,omitempty"`
	// Param is zipf's theta, pareto's power, normal's deviation in percent of the region.
	Param float64 `json:"param,omitempty"`
	// Zones, for zoned and zoned_abs, from the start of the region: AccessPct percent of the
	// I/Os go to a zone of Size (percent of the region for zoned, bytes for zoned_abs).
	Zones []Zone `json:"zones,omitempty"`
}

// Zone is one zone of a zoned random distribution.
type Zone struct {
	AccessPct int   `json:"access_pct"`
	Size      int64 `json:"size"`
}

// DefaultSize is the region size when neither the workload nor the target gives one.
const DefaultSize = 1 << 30

// DefaultRandSeed is fio's default randseed.
const DefaultRandSeed = 0x89

// Defaults returns w with fio's defaults filled into zero fields.
func (w Workload) Defaults() Workload {
	if w.RW == "" {
		w.RW = SeqRead
	}
	if w.RW == "readwrite" {
		w.RW = SeqMixed
	}
	if w.RWMixRead == 0 && w.IsMixed() {
		w.RWMixRead = 50
	}
	for d := range w.BS {
		if w.BS[d].Min == 0 && len(w.BSSplit[d]) > 0 {
			w.BS[d] = splitRange(w.BSSplit[d])
		}
		if w.BS[d].Min == 0 {
			w.BS[d] = Fixed(4096)
		}
		if w.BS[d].Max == 0 {
			w.BS[d].Max = w.BS[d].Min
		}
	}
	if w.Size == 0 {
		w.Size = DefaultSize
	}
	if w.IODepth == 0 {
		w.IODepth = 1
	}
	if w.NumJobs == 0 {
		w.NumJobs = 1
	}
	if w.RandSeed == 0 {
		w.RandSeed = DefaultRandSeed
	}
	return w
}

// IsRandom reports whether offsets are random.
func (w Workload) IsRandom() bool {
	return w.RW == RandRead || w.RW == RandWrite || w.RW == RandMixed
}

// IsMixed reports whether the workload both reads and writes.
func (w Workload) IsMixed() bool { return w.RW == SeqMixed || w.RW == RandMixed || w.RW == "readwrite" }

// Does reports whether the workload issues I/O in direction d.
func (w Workload) Does(d Direction) bool {
	switch w.RW {
	case SeqRead, RandRead:
		return d == Read
	case SeqWrite, RandWrite:
		return d == Write
	}
	return true
}

// Writes reports whether the workload writes.
func (w Workload) Writes() bool { return w.Does(Write) }

// ReadFraction is the share of I/Os that are reads, 0..1.
func (w Workload) ReadFraction() float64 {
	switch {
	case !w.Does(Write):
		return 1
	case !w.Does(Read):
		return 0
	}
	return float64(w.RWMixRead) / 100
}

// Validate checks a workload after Defaults; the error names the offending option.
func (w Workload) Validate() error {
	switch w.RW {
	case SeqRead, SeqWrite, RandRead, RandWrite, SeqMixed, RandMixed:
	default:
		return fmt.Errorf("rw=%q: must be one of read, write, randread, randwrite, rw, randrw", w.RW)
	}
	if w.RWMixRead < 0 || w.RWMixRead > 100 {
		return fmt.Errorf("rwmixread=%d: must be 0..100", w.RWMixRead)
	}
	for d := Read; d <= Write; d++ {
		b := w.BS[d]
		if b.Min <= 0 || b.Max < b.Min {
			return fmt.Errorf("bs (%s)=%s: block size must be positive and min <= max", d, b)
		}
		if b.Max > 64<<20 {
			return fmt.Errorf("bs (%s)=%s: larger than 64MiB", d, b)
		}
		if w.Does(d) && b.Max > w.Size {
			return fmt.Errorf("bs (%s)=%s is larger than size=%s", d, b, units.FormatSize(w.Size))
		}
		if w.Direct && (b.Min%512 != 0 || b.Max%512 != 0) {
			return fmt.Errorf("bs (%s)=%s: direct=1 needs multiples of 512 bytes", d, b)
		}
		if w.Rate[d] < 0 || w.RateIOPS[d] < 0 {
			return fmt.Errorf("rate (%s): must not be negative", d)
		}
	}
	if w.Size <= 0 {
		return errors.New("size: must be positive")
	}
	if w.Offset < 0 {
		return errors.New("offset: must not be negative")
	}
	if w.Direct && w.Offset%512 != 0 {
		return fmt.Errorf("offset=%d: direct=1 needs a multiple of 512", w.Offset)
	}
	if w.IOSize < 0 {
		return errors.New("io_size: must not be negative")
	}
	if w.IODepth < 1 || w.IODepth > 4096 {
		return fmt.Errorf("iodepth=%d: must be 1..4096", w.IODepth)
	}
	if w.NumJobs < 1 || w.NumJobs > 1024 {
		return fmt.Errorf("numjobs=%d: must be 1..1024", w.NumJobs)
	}
	if w.Runtime < 0 || w.RampTime < 0 {
		return errors.New("runtime and ramp_time: must not be negative")
	}
	if w.TimeBased && w.Runtime == 0 {
		return errors.New("time_based: needs runtime")
	}
	if w.Fsync < 0 {
		return fmt.Errorf("fsync=%d: must not be negative", w.Fsync)
	}
	switch w.Verify {
	case "", "crc32c", "md5", "sha256", "meta", "pattern":
	default:
		return fmt.Errorf("verify=%q: must be md5, sha256, crc32c, meta or pattern", w.Verify)
	}
	if w.Verify != "" {
		if w.BS[Read] != w.BS[Write] || w.BS[Read].Min != w.BS[Read].Max {
			return fmt.Errorf("verify=%s: needs one fixed block size for reads and writes (bs=%s,%s)", w.Verify, w.BS[Read], w.BS[Write])
		}
		if w.BS[Read].Min < 512 {
			return fmt.Errorf("verify=%s: needs bs >= 512", w.Verify)
		}
	}
	return w.validateMore()
}

// validateMore checks the options beyond the basic set.
func (w Workload) validateMore() error {
	for d := Read; d <= Write; d++ {
		if err := w.validateSplit(d); err != nil {
			return err
		}
		if w.BlockAlign[d] < 0 {
			return fmt.Errorf("blockalign (%s)=%d: must not be negative", d, w.BlockAlign[d])
		}
		if err := w.RandomDist[d].check(); err != nil {
			return fmt.Errorf("random_distribution (%s): %w", d, err)
		}
	}
	switch {
	case w.IsRandom() && w.RWModifier < 0:
		return fmt.Errorf("rw=%s:%d: the offset modifier of a random pattern (I/Os per offset) must not be negative", w.RW, w.RWModifier)
	case w.RWSequencer != "" && w.RWSequencer != "sequential" && w.RWSequencer != "identical":
		return fmt.Errorf("rw_sequencer=%q: must be sequential or identical", w.RWSequencer)
	case w.Loops < 0:
		return fmt.Errorf("loops=%d: must not be negative", w.Loops)
	case w.NumberIOs < 0:
		return fmt.Errorf("number_ios=%d: must not be negative", w.NumberIOs)
	case w.StartDelay < 0:
		return errors.New("startdelay: must not be negative")
	case w.ThinkTime < 0 || w.ThinkTimeSpin < 0:
		return errors.New("thinktime, thinktime_spin: must not be negative")
	case w.ThinkTime > 0 && w.ThinkTimeSpin > w.ThinkTime:
		return fmt.Errorf("thinktime_spin=%s: longer than thinktime=%s", w.ThinkTimeSpin, w.ThinkTime)
	case w.ThinkTimeBlocks < 0:
		return fmt.Errorf("thinktime_blocks=%d: must not be negative", w.ThinkTimeBlocks)
	case w.RateProcess != "" && w.RateProcess != "linear" && w.RateProcess != "poisson":
		return fmt.Errorf("rate_process=%q: must be linear or poisson", w.RateProcess)
	case len(w.BufferPattern) > maxPattern:
		return fmt.Errorf("buffer_pattern: longer than %d bytes", maxPattern)
	case w.BufferCompressPct < 0 || w.BufferCompressPct > 100:
		return fmt.Errorf("buffer_compress_percentage=%d: must be 0..100", w.BufferCompressPct)
	case w.BufferCompressChunk < 0:
		return fmt.Errorf("buffer_compress_chunk=%d: must not be negative", w.BufferCompressChunk)
	case w.DedupePct < 0 || w.DedupePct > 100:
		return fmt.Errorf("dedupe_percentage=%d: must be 0..100", w.DedupePct)
	case w.SyncIO != "" && w.SyncIO != "sync" && w.SyncIO != "dsync":
		return fmt.Errorf("sync=%q: must be none, sync or dsync", w.SyncIO)
	case w.Fdatasync < 0:
		return fmt.Errorf("fdatasync=%d: must not be negative", w.Fdatasync)
	case w.Verify == "pattern" && len(w.VerifyPattern) == 0:
		return errors.New("verify=pattern: needs verify_pattern")
	case len(w.VerifyPattern) > maxPattern:
		return fmt.Errorf("verify_pattern: longer than %d bytes", maxPattern)
	case w.VerifyInterval != 0 && w.VerifyInterval < minVerifyInterval:
		return fmt.Errorf("verify_interval=%d: must be at least %d", w.VerifyInterval, minVerifyInterval)
	case w.VerifyInterval != 0 && w.Verify != "" && w.BS[Write].Min%w.VerifyInterval != 0:
		return fmt.Errorf("verify_interval=%s: must divide bs=%s", units.FormatSize(w.VerifyInterval), w.BS[Write])
	case w.NrFiles < 0:
		return fmt.Errorf("nrfiles=%d: must not be negative", w.NrFiles)
	case w.FileSize.Min < 0 || w.FileSize.Max < w.FileSize.Min || (w.FileSize.Min == 0) != (w.FileSize.Max == 0):
		return fmt.Errorf("filesize=%s: must be positive and min <= max", w.FileSize)
	}
	return nil
}

// validateSplit checks the bssplit of direction d: at most 64 sizes, shares adding up to
// 100, and BS spanning the smallest to the largest size.
func (w Workload) validateSplit(d Direction) error {
	sp := w.BSSplit[d]
	if len(sp) == 0 {
		return nil
	}
	if len(sp) > maxBSSplit {
		return fmt.Errorf("bssplit (%s): more than %d block sizes", d, maxBSSplit)
	}
	sum := 0
	for _, e := range sp {
		switch {
		case e.BS <= 0 || e.BS > 64<<20:
			return fmt.Errorf("bssplit (%s): block size %d must be 1 byte to 64MiB", d, e.BS)
		case e.Pct < 0 || e.Pct > 100:
			return fmt.Errorf("bssplit (%s): %s/%d: percentage must be 0..100", d, units.FormatSize(e.BS), e.Pct)
		case w.Direct && e.BS%512 != 0:
			return fmt.Errorf("bssplit (%s): %s: direct=1 needs multiples of 512 bytes", d, units.FormatSize(e.BS))
		}
		sum += e.Pct
	}
	if sum != 100 {
		return fmt.Errorf("bssplit (%s): percentages add up to %d, not 100", d, sum)
	}
	if r := splitRange(sp); w.BS[d] != r {
		return fmt.Errorf("bssplit (%s): bs is %s but the split spans %s", d, w.BS[d], r)
	}
	return nil
}

// check validates one direction's distribution with fio's limits.
func (d Distribution) check() error {
	switch d.Kind {
	case "", "random":
		if d.Param != 0 || len(d.Zones) > 0 {
			return errors.New("random takes no value")
		}
		return nil
	case "zipf":
		if !(d.Param > 0) || d.Param == 1 {
			return fmt.Errorf("zipf:%g: theta must be positive and not 1", d.Param)
		}
	case "pareto":
		if !(d.Param > 0 && d.Param < 1) {
			return fmt.Errorf("pareto:%g: power must be between 0 and 1", d.Param)
		}
	case "normal":
		if !(d.Param >= 0 && d.Param < 100) {
			return fmt.Errorf("normal:%g: deviation must be 0 to less than 100", d.Param)
		}
	case "zoned", "zoned_abs":
		return d.checkZones()
	default:
		return fmt.Errorf("%q: must be random, zipf, pareto, normal, zoned or zoned_abs", d.Kind)
	}
	if len(d.Zones) > 0 {
		return fmt.Errorf("%s takes no zones", d.Kind)
	}
	return nil
}

func (d Distribution) checkZones() error {
	if d.Param != 0 {
		return fmt.Errorf("%s takes zones, not a value", d.Kind)
	}
	if len(d.Zones) == 0 || len(d.Zones) > maxZones {
		return fmt.Errorf("%s: needs 1 to %d zones", d.Kind, maxZones)
	}
	acc, size := 0, int64(0)
	for _, z := range d.Zones {
		if z.AccessPct < 0 || z.AccessPct > 100 {
			return fmt.Errorf("%s: access percentage %d must be 0..100", d.Kind, z.AccessPct)
		}
		if z.Size < 0 || (d.Kind == "zoned_abs" && z.Size == 0) {
			return fmt.Errorf("%s: zone size %d must be positive", d.Kind, z.Size)
		}
		acc += z.AccessPct
		size += z.Size
		if size < 0 {
			return fmt.Errorf("%s: zone sizes overflow", d.Kind)
		}
	}
	if acc != 100 {
		return fmt.Errorf("%s: access percentages add up to %d, not 100", d.Kind, acc)
	}
	if d.Kind == "zoned" && size > 100 {
		return fmt.Errorf("zoned: zone sizes add up to %d%%, more than 100%%", size)
	}
	return nil
}

// Describe is a one-line summary, e.g. "randread bs=4KiB iodepth=32 numjobs=1".
func (w Workload) Describe() string {
	s := w.RW
	if w.RWModifier != 0 {
		s = w.FioOptions()[0].Value // rw with its offset modifier
	}
	if w.IsMixed() {
		s += fmt.Sprintf(" rwmixread=%d", w.RWMixRead)
	}
	switch {
	case w.BSSplit[Read] != nil || w.BSSplit[Write] != nil:
		s += " bssplit=" + perDir(fioSplit(w.BSSplit[Read]), fioSplit(w.BSSplit[Write]))
	case w.BS[Read] == w.BS[Write]:
		s += " bs=" + w.BS[Read].String()
	default:
		s += " bs=" + w.BS[Read].String() + "," + w.BS[Write].String()
	}
	if d := fioDistribution(w.RandomDist); d != "" && w.IsRandom() {
		s += " random_distribution=" + d
	}
	s += fmt.Sprintf(" iodepth=%d numjobs=%d", w.IODepth, w.NumJobs)
	if w.Fsync > 0 {
		s += fmt.Sprintf(" fsync=%d", w.Fsync)
	}
	if w.Verify != "" {
		s += " verify=" + w.Verify
	}
	if w.SyncIO != "" {
		s += " sync=" + w.SyncIO
	}
	if w.Direct {
		s += " direct=1"
	}
	return s
}
