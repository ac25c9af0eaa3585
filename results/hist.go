package results

import (
	"bytes"
	"compress/zlib"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram geometry for latencies in nanoseconds. 1 ns .. 100 s covers a loopback cache hit
// up to three times backends.DefaultIOTimeout; 3 significant figures keep every percentile
// within 0.1% of the true value. Such a histogram holds ~29k counters (~230 KiB in memory);
// its encoding is a few KiB (6.4 KiB for 100k exponentially spread samples, mean 210 µs).
const (
	HistLowestNS  = 1
	HistHighestNS = 100 * 1_000_000_000
	HistSigFigs   = 3
)

// NewHistogram returns an empty latency histogram (nanoseconds) with the geometry above.
func NewHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(HistLowestNS, HistHighestNS, HistSigFigs)
}

// RecordClamped records v into h, at h's highest trackable value when v is larger and at 0
// when negative, so no sample is ever lost from the counts. The caller tracks the true
// extremes itself and passes them to LatencyFrom.
func RecordClamped(h *hdrhistogram.Histogram, v int64) {
	if hi := h.HighestTrackableValue(); v > hi {
		v = hi
	} else if v < 0 {
		v = 0
	}
	_ = h.RecordValue(v) // cannot fail: v is in range
}

// LatencyFrom summarises h. trueMin and trueMax are the exact extremes the recorder saw
// (trueMax <= 0 means unknown: the histogram's own, rounded, extremes are used). Mean and
// Stddev come from the histogram (within its 0.1% resolution); percentiles are clamped to
// [Min, Max] so rounding up to a bucket's top never reports a value above the true maximum.
func LatencyFrom(h *hdrhistogram.Histogram, trueMin, trueMax int64) Latency {
	n := h.TotalCount()
	if n == 0 {
		return Latency{}
	}
	if trueMax <= 0 {
		trueMin, trueMax = h.Min(), h.Max()
	}
	l := Latency{N: n, Min: trueMin, Max: trueMax, Mean: h.Mean(), Stddev: h.StdDev()}
	vals := h.ValueAtPercentilesSlice(FioPercentiles)
	l.Percentiles = make(map[string]int64, len(vals))
	for i, p := range FioPercentiles {
		l.Percentiles[PercentileKey(p)] = min(max(vals[i], trueMin), trueMax)
	}
	enc, err := h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	if err == nil { // only fails on an unsupported version constant
		l.Histogram = string(enc)
	}
	return l
}

// DecodeHistogram decodes a Latency.Histogram string.
func DecodeHistogram(s string) (*hdrhistogram.Histogram, error) {
	if s == "" {
		return nil, errors.New("results: decode histogram: empty")
	}
	if err := checkHistogramHeader(s); err != nil {
		return nil, fmt.Errorf("results: decode histogram: %w", err)
	}
	h, err := hdrhistogram.Decode([]byte(s))
	if err != nil {
		return nil, fmt.Errorf("results: decode histogram: %w", err)
	}
	return h, nil
}

// checkHistogramHeader refuses a histogram whose header asks for more significant figures
// than this package writes (HistSigFigs), before hdrhistogram.Decode allocates its counts:
// their number follows the header's geometry, and 1..MaxInt64 at 5 figures is ~50 MiB from a
// string of ~60 bytes, in documents that report and compare read from anywhere. At 3 figures
// any range stays under 0.5 MiB. What this check cannot read is left to Decode to report.
func checkHistogramHeader(s string) error {
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(raw) < 8 {
		return nil
	}
	z, err := zlib.NewReader(bytes.NewReader(raw[8:]))
	if err != nil {
		return nil
	}
	defer z.Close()
	var h [16]byte // cookie, payload length, normalizing offset, significant figures
	if _, err := io.ReadFull(z, h[:]); err != nil {
		return nil
	}
	if sig := int32(binary.BigEndian.Uint32(h[12:])); sig > HistSigFigs {
		return fmt.Errorf("%d significant figures (this build writes %d, and reads no more)", sig, HistSigFigs)
	}
	return nil
}

// MergeLatency combines distributions of the same quantity (e.g. repeats) exactly: counts
// through the histograms, extremes as min/max, mean and standard deviation pooled from each
// part's N, Mean and Stddev. Empty parts (N == 0) are skipped; a non-empty part without a
// histogram is an error, since its percentiles cannot be merged.
func MergeLatency(ls []Latency) (Latency, error) {
	acc := NewHistogram()
	var out Latency
	var sum, sumSq float64 // Σ N·mean and Σ N·(stddev² + mean²)
	for i, l := range ls {
		if l.N == 0 {
			continue
		}
		h, err := DecodeHistogram(l.Histogram)
		if err != nil {
			return Latency{}, fmt.Errorf("results: merge latency %d: %w", i, err)
		}
		if h.TotalCount() != l.N {
			return Latency{}, fmt.Errorf("results: merge latency %d: histogram holds %d values, summary says %d", i, h.TotalCount(), l.N)
		}
		if dropped := acc.Merge(h); dropped > 0 {
			return Latency{}, fmt.Errorf("results: merge latency %d: %d values outside the histogram range", i, dropped)
		}
		if out.N == 0 || l.Min < out.Min {
			out.Min = l.Min
		}
		out.Max = max(out.Max, l.Max)
		out.N += l.N
		n := float64(l.N)
		sum += n * l.Mean
		sumSq += n * (l.Stddev*l.Stddev + l.Mean*l.Mean)
	}
	if out.N == 0 {
		return Latency{}, nil
	}
	merged := LatencyFrom(acc, out.Min, out.Max)
	n := float64(out.N)
	merged.Mean = sum / n
	merged.Stddev = math.Sqrt(max(0, sumSq/n-merged.Mean*merged.Mean))
	return merged, nil
}

// fio's latency histogram (stat.h): values below 2^(fioPlatBits+1) have a bucket each; above,
// each power of two is split into fioPlatVal buckets, over fioPlatGroups groups.
const (
	fioPlatBits   = 6
	fioPlatVal    = 1 << fioPlatBits
	fioPlatGroups = 29
	fioPlatNR     = fioPlatGroups * fioPlatVal
)

// FioBin is one bucket of fio's latency histogram as json+ prints it: Value is the
// bucket's midpoint in nanoseconds (fio's plat_idx_to_val), Count its I/Os.
type FioBin struct {
	Value int64
	Count int64
}

// FioBins re-buckets h into fio's latency histogram, non-empty buckets in ascending order.
// It is exact: an HDR bucket (3 significant figures, power-of-two aligned) never straddles
// a fio bucket (1/64 of a power of two), so each HDR bucket's count lands whole in the fio
// bucket of its lowest value. Values beyond fio's last bucket land in it, as in fio.
func FioBins(h *hdrhistogram.Histogram) []FioBin {
	var bins []FioBin
	for _, bar := range h.Distribution() {
		if bar.Count == 0 {
			continue
		}
		v := fioPlatIdxToVal(fioPlatValToIdx(bar.From))
		if n := len(bins); n > 0 && bins[n-1].Value == v {
			bins[n-1].Count += bar.Count
			continue
		}
		bins = append(bins, FioBin{Value: v, Count: bar.Count})
	}
	return bins
}

// fioPlatValToIdx is fio's plat_val_to_idx.
func fioPlatValToIdx(v int64) int {
	if v < 0 {
		v = 0
	}
	msb := bits.Len64(uint64(v)) - 1
	if msb <= fioPlatBits {
		return int(v)
	}
	errBits := msb - fioPlatBits
	base := (errBits + 1) << fioPlatBits
	idx := base + int((fioPlatVal-1)&(v>>errBits))
	return min(idx, fioPlatNR-1)
}

// fioPlatIdxToVal is fio's plat_idx_to_val: the bucket's midpoint (rounded down as fio's
// integer conversion does).
func fioPlatIdxToVal(idx int) int64 {
	if idx < fioPlatVal<<1 {
		return int64(idx)
	}
	errBits := (idx >> fioPlatBits) - 1
	base := int64(1) << (errBits + fioPlatBits)
	k := int64(idx % fioPlatVal)
	return base + int64((float64(k)+0.5)*float64(int64(1)<<errBits))
}
