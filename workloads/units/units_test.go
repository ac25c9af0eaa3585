package units

import (
	"strings"
	"testing"
	"time"
)

func TestParseSizeBase(t *testing.T) {
	tests := []struct {
		in     string
		kbBase int
		want   int64
	}{
		{"0", 1024, 0},
		{"512", 1024, 512},
		{"  8k  ", 1024, 8192},
		{"1b", 1024, 1},
		{"1B", 1000, 1},
		// kb_base=1024, fio's default compatibility mode: SI-looking units are powers of two...
		{"4k", 1024, 4096},
		{"4K", 1024, 4096},
		{"4kb", 1024, 4096},
		{"4KB", 1024, 4096},
		{"1m", 1024, 1 << 20},
		{"1g", 1024, 1 << 30},
		{"1t", 1024, 1 << 40},
		{"1p", 1024, 1 << 50},
		// ...and IEC units are powers of ten (fio's documented, inverted quirk).
		{"4KiB", 1024, 4000},
		{"4ki", 1024, 4000},
		{"1MiB", 1024, 1000000},
		{"1GiB", 1024, 1000000000},
		// kb_base=1000 follows SI and IEC.
		{"4k", 1000, 4000},
		{"4KB", 1000, 4000},
		{"4KiB", 1000, 4096},
		{"1MiB", 1000, 1 << 20},
		{"1g", 1000, 1000000000},
		// Fractions.
		{"1.5k", 1024, 1536},
		{".5m", 1024, 512 << 10},
	}
	for _, tt := range tests {
		got, err := ParseSizeBase(tt.in, tt.kbBase)
		if err != nil || got != tt.want {
			t.Errorf("ParseSizeBase(%q, %d) = %d, %v; want %d", tt.in, tt.kbBase, got, err, tt.want)
		}
	}
	if got, err := ParseSize("4k"); got != 4096 || err != nil {
		t.Errorf("ParseSize(4k) = %d, %v; want the kb_base=1024 meaning", got, err)
	}
}

func TestParseSizeErrors(t *testing.T) {
	tests := map[string]string{
		"":                         "empty value",
		"   ":                      "empty value",
		"k":                        `"k" is not a number`,
		"-1":                       `"-1" is not a number`,
		"4q":                       `unknown size unit "q"`,
		"4kk":                      `unknown size unit "kk"`,
		"4kib2":                    `unknown size unit "kib2"`,
		"1e3":                      `unknown size unit "e3"`,
		"1.2.3":                    `"1.2.3" is not a number`,
		"50%":                      `unknown size unit "%"`,
		"100000000000000000000000": "out of range",
		"100000000p":               "out of range",
	}
	for in, want := range tests {
		_, err := ParseSize(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseSize(%q): error %v, want %q", in, err, want)
		}
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		def  time.Duration
		want time.Duration
	}{
		{"10", time.Second, 10 * time.Second},
		{"1.5", time.Second, 1500 * time.Millisecond},
		{"250", time.Microsecond, 250 * time.Microsecond},
		{"7ns", time.Second, 7},
		{"3us", time.Second, 3 * time.Microsecond},
		{"3usec", time.Second, 3 * time.Microsecond},
		{"100ms", time.Second, 100 * time.Millisecond},
		{"100msec", time.Second, 100 * time.Millisecond},
		{"10s", time.Minute, 10 * time.Second},
		{"10sec", time.Minute, 10 * time.Second},
		{"5m", time.Second, 5 * time.Minute}, // m is minutes for times, as in fio
		{"5min", time.Second, 5 * time.Minute},
		{"2h", time.Second, 2 * time.Hour},
		{"2hr", time.Second, 2 * time.Hour},
		{"1d", time.Second, 24 * time.Hour},
		{"10S", time.Second, 10 * time.Second},
		{" 30 ", time.Second, 30 * time.Second},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in, tt.def)
		if err != nil || got != tt.want {
			t.Errorf("ParseDuration(%q, %v) = %v, %v; want %v", tt.in, tt.def, got, err, tt.want)
		}
	}
}

func TestParseDurationErrors(t *testing.T) {
	tests := map[string]string{
		"":              "empty value",
		"s":             `"s" is not a number`,
		"1w":            `unknown time unit "w" in "1w"`,
		"-5":            `"-5" is not a number`,
		"300000000000h": "out of range",
	}
	for in, want := range tests {
		_, err := ParseDuration(in, time.Second)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseDuration(%q): error %v, want %q", in, err, want)
		}
	}
}

func TestFormatSize(t *testing.T) {
	tests := map[int64]string{
		0:             "0B",
		1:             "1B",
		512:           "512B",
		1000:          "1000B",
		4096:          "4KiB",
		6144:          "6KiB",
		1 << 20:       "1MiB",
		1536 << 10:    "1536KiB",
		256 << 20:     "256MiB",
		1 << 30:       "1GiB",
		1 << 40:       "1TiB",
		1 << 50:       "1PiB",
		1 << 60:       "1024PiB",
		4096 + 1:      "4097B",
		1<<20 + 1<<10: "1025KiB",
	}
	for n, want := range tests {
		if got := FormatSize(n); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", n, got, want)
		}
	}
	// FormatSize's output parses back to the same number (IEC units are powers of two
	// with kb_base=1000).
	for n := range tests {
		if got, err := ParseSizeBase(FormatSize(n), 1000); err != nil || got != n {
			t.Errorf("round trip %d: %s -> %d, %v", n, FormatSize(n), got, err)
		}
	}
}
