package results

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestLatencyFrom(t *testing.T) {
	h := NewHistogram()
	for v := int64(1); v <= 1000; v++ {
		RecordClamped(h, v*1000) // 1 µs .. 1 ms, uniform
	}
	l := LatencyFrom(h, 1000, 1_000_000)
	if l.N != 1000 || l.Min != 1000 || l.Max != 1_000_000 {
		t.Fatalf("N/Min/Max = %d/%d/%d", l.N, l.Min, l.Max)
	}
	if math.Abs(l.Mean-500_500) > 500 {
		t.Errorf("Mean = %v, want ~500500", l.Mean)
	}
	if math.Abs(l.Stddev-288_675) > 500 {
		t.Errorf("Stddev = %v, want ~288675", l.Stddev)
	}
	if len(l.Percentiles) != len(FioPercentiles) {
		t.Fatalf("%d percentiles, want %d", len(l.Percentiles), len(FioPercentiles))
	}
	for key, want := range map[string]int64{"50.000000": 500_000, "99.000000": 990_000, "99.990000": 1_000_000} {
		got := l.Percentiles[key]
		if math.Abs(float64(got-want)) > float64(want)/1000 {
			t.Errorf("p%s = %d, want %d ±0.1%%", key, got, want)
		}
		if got > l.Max {
			t.Errorf("p%s = %d above max %d", key, got, l.Max)
		}
	}
	back, err := DecodeHistogram(l.Histogram)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Equals(h) {
		t.Error("decoded histogram differs from the recorded one")
	}
	if len(l.Histogram) > 4096 {
		t.Errorf("encoded histogram is %d bytes", len(l.Histogram))
	}
}

func TestLatencyFromEmptyAndUnknownExtremes(t *testing.T) {
	if l := LatencyFrom(NewHistogram(), 0, 0); l.N != 0 || l.Histogram != "" || l.Percentiles != nil {
		t.Errorf("empty histogram gave %+v", l)
	}
	h := NewHistogram()
	RecordClamped(h, 12345)
	l := LatencyFrom(h, 0, 0)
	if l.Min > 12345 || l.Max < 12345 || l.Max > 12360 {
		t.Errorf("Min/Max = %d/%d, want around 12345", l.Min, l.Max)
	}
}

func TestRecordClamped(t *testing.T) {
	h := NewHistogram()
	RecordClamped(h, HistHighestNS*10)
	RecordClamped(h, -5)
	if h.TotalCount() != 2 {
		t.Fatalf("TotalCount = %d, want 2 (nothing dropped)", h.TotalCount())
	}
	if h.Max() < HistHighestNS || h.Min() != 0 {
		t.Errorf("Min/Max = %d/%d", h.Min(), h.Max())
	}
}

func TestMergeLatency(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	all, a, b := NewHistogram(), NewHistogram(), NewHistogram()
	var parts [2]struct{ min, max int64 }
	for i := range 20000 {
		v := 1000 + rng.Int64N(5_000_000)
		if i%3 == 0 {
			v *= 10 // the second part is slower: pooled stats must reflect both
		}
		RecordClamped(all, v)
		k, part := 0, a
		if i%3 == 0 {
			k, part = 1, b
		}
		if parts[k].min == 0 || v < parts[k].min {
			parts[k].min = v
		}
		parts[k].max = max(parts[k].max, v)
		RecordClamped(part, v)
	}
	la := LatencyFrom(a, parts[0].min, parts[0].max)
	lb := LatencyFrom(b, parts[1].min, parts[1].max)
	m, err := MergeLatency([]Latency{la, {}, lb})
	if err != nil {
		t.Fatal(err)
	}
	want := LatencyFrom(all, min(parts[0].min, parts[1].min), max(parts[0].max, parts[1].max))
	if m.N != want.N || m.Min != want.Min || m.Max != want.Max {
		t.Errorf("N/Min/Max = %d/%d/%d, want %d/%d/%d", m.N, m.Min, m.Max, want.N, want.Min, want.Max)
	}
	for k, v := range want.Percentiles {
		if m.Percentiles[k] != v {
			t.Errorf("p%s = %d, want %d (exact merge)", k, m.Percentiles[k], v)
		}
	}
	if m.Histogram != want.Histogram {
		t.Error("merged histogram encoding differs from the single-histogram one")
	}
	if math.Abs(m.Mean-want.Mean)/want.Mean > 1e-9 || math.Abs(m.Stddev-want.Stddev)/want.Stddev > 1e-9 {
		t.Errorf("Mean/Stddev = %v/%v, want %v/%v", m.Mean, m.Stddev, want.Mean, want.Stddev)
	}
}

func TestMergeLatencyErrors(t *testing.T) {
	if m, err := MergeLatency(nil); err != nil || m.N != 0 {
		t.Errorf("MergeLatency(nil) = %+v, %v", m, err)
	}
	if _, err := MergeLatency([]Latency{{N: 3, Min: 1, Max: 2}}); err == nil {
		t.Error("merging a summary without histogram must fail")
	}
	h := NewHistogram()
	RecordClamped(h, 10)
	l := LatencyFrom(h, 10, 10)
	l.N = 5
	if _, err := MergeLatency([]Latency{l}); err == nil {
		t.Error("N disagreeing with the histogram must fail")
	}
	if _, err := DecodeHistogram("not base64!"); err == nil {
		t.Error("DecodeHistogram accepted garbage")
	}
}

func TestHistogramSize(t *testing.T) {
	if n := NewHistogram().ByteSize(); n > 300<<10 {
		t.Errorf("histogram is %d bytes", n)
	} else {
		t.Logf("histogram ByteSize = %d", n)
	}
}

func BenchmarkRecordClamped(b *testing.B) {
	h := NewHistogram()
	vals := make([]int64, 1024)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range vals {
		vals[i] = 10_000 + rng.Int64N(10_000_000)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		RecordClamped(h, vals[i&1023])
	}
}

func BenchmarkLatencyFrom(b *testing.B) {
	h := NewHistogram()
	rng := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		RecordClamped(h, 10_000+rng.Int64N(10_000_000))
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		LatencyFrom(h, 10_000, 10_010_000)
	}
}
