// Package units parses fio's size and time syntax.
//
// Sizes follow fio's default kb_base=1024 compatibility mode: k/K/KB/m/MB/g/GB/t/TB/p/PB are
// powers of two and KiB/MiB/GiB/TiB/PiB are powers of ten (fio's documented, inverted
// convention). With kb_base=1000 the SI/IEC meanings apply. A bare number is bytes.
// Times take us/usec, ms/msec, s/sec, m/min, h/hr, d; a bare number uses the caller's unit.
package units

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// ParseSize parses a size with fio's default kb_base=1024.
func ParseSize(s string) (int64, error) { return ParseSizeBase(s, 1024) }

// ParseSizeBase parses a size with the given kb_base (1024 or 1000).
func ParseSizeBase(s string, kbBase int) (int64, error) {
	num, suffix, err := split(s)
	if err != nil {
		return 0, err
	}
	mult, err := sizeMultiplier(suffix, kbBase)
	if err != nil {
		return 0, err
	}
	v := num * float64(mult)
	if v < 0 || v >= math.MaxInt64 || math.IsNaN(v) {
		return 0, fmt.Errorf("size %q out of range", s)
	}
	return int64(v), nil
}

func sizeMultiplier(suffix string, kbBase int) (int64, error) {
	if suffix == "" {
		return 1, nil
	}
	low := strings.ToLower(suffix)
	if low == "b" {
		return 1, nil
	}
	exp := strings.IndexByte("kmgtp", low[0]) + 1
	if exp == 0 {
		return 0, fmt.Errorf("unknown size unit %q", suffix)
	}
	rest := low[1:]
	var iec bool // KiB-style
	switch rest {
	case "", "b":
	case "i", "ib":
		iec = true
	default:
		return 0, fmt.Errorf("unknown size unit %q", suffix)
	}
	pow2 := true
	switch {
	case kbBase == 1024 && iec:
		pow2 = false // fio compatibility mode: IEC prefixes mean powers of ten
	case kbBase == 1000 && !iec:
		pow2 = false
	}
	base := int64(1000)
	if pow2 {
		base = 1024
	}
	m := int64(1)
	for i := 0; i < exp; i++ {
		m *= base
	}
	return m, nil
}

// ParseDuration parses a time; a bare number is in units of def (fio: seconds for runtime,
// ramp_time; microseconds for some latency options).
func ParseDuration(s string, def time.Duration) (time.Duration, error) {
	num, suffix, err := split(s)
	if err != nil {
		return 0, err
	}
	var unit time.Duration
	switch strings.ToLower(suffix) {
	case "":
		unit = def
	case "ns", "nsec":
		unit = time.Nanosecond
	case "us", "usec":
		unit = time.Microsecond
	case "ms", "msec":
		unit = time.Millisecond
	case "s", "sec":
		unit = time.Second
	case "m", "min":
		unit = time.Minute
	case "h", "hr":
		unit = time.Hour
	case "d":
		unit = 24 * time.Hour
	default:
		return 0, fmt.Errorf("unknown time unit %q in %q", suffix, s)
	}
	v := num * float64(unit)
	if v < 0 || v >= math.MaxInt64 {
		return 0, fmt.Errorf("time %q out of range", s)
	}
	return time.Duration(v), nil
}

// split separates "4.5k" into 4.5 and "k".
func split(s string) (float64, string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, "", errors.New("empty value")
	}
	i := strings.IndexFunc(s, func(r rune) bool { return !(unicode.IsDigit(r) || r == '.') })
	if i == 0 {
		return 0, "", fmt.Errorf("%q is not a number", s)
	}
	numPart, suffix := s, ""
	if i > 0 {
		numPart, suffix = s[:i], strings.TrimSpace(s[i:])
	}
	num, err := strconv.ParseFloat(numPart, 64)
	if err != nil {
		return 0, "", fmt.Errorf("%q is not a number", s)
	}
	return num, suffix, nil
}

// FormatSize renders n bytes with a binary unit (4KiB, 1MiB), exact where possible.
func FormatSize(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	i := 0
	for n >= 1024 && n%1024 == 0 && i < len(units)-1 {
		n /= 1024
		i++
	}
	return strconv.FormatInt(n, 10) + units[i]
}
