package workloads

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vmstorbench/vmstorbench/internal/suggest"
	"github.com/vmstorbench/vmstorbench/workloads/units"
)

// parseRW parses rw= with fio's optional offset modifier: "read:-8k" adds -8 KiB to the
// offset after each I/O, "randread:8" issues 8 I/Os from each generated offset.
func (s *scope) parseRW(v string) (string, int64, error) {
	pat, mod, hasMod := strings.Cut(v, ":")
	var rw string
	switch pat {
	case SeqRead, SeqWrite, RandRead, RandWrite, SeqMixed, RandMixed:
		rw = pat
	case "readwrite":
		rw = SeqMixed
	case "trim", "randtrim", "trimwrite", "randtrimwrite":
		return "", 0, errors.New("trim workloads are not supported")
	default:
		return "", 0, errors.New("must be one of read, write, randread, randwrite, rw (readwrite), randrw, with an optional :offset modifier")
	}
	if !hasMod {
		return rw, 0, nil
	}
	mod = strings.TrimSpace(mod)
	if rw == RandRead || rw == RandWrite || rw == RandMixed {
		n, err := strconv.Atoi(mod)
		if err != nil || n < 0 {
			return "", 0, fmt.Errorf("offset modifier %q: for a random pattern a number of I/Os per random offset", mod)
		}
		return rw, int64(n), nil
	}
	neg := strings.HasPrefix(mod, "-")
	n, err := s.bytes(strings.TrimPrefix(mod, "-"))
	if err != nil {
		return "", 0, fmt.Errorf("offset modifier %q: %w", mod, err)
	}
	if neg {
		n = -n
	}
	return rw, n, nil
}

// positive parses a size that fio refuses as 0 (bs, blockalign, filesize: "min value 1").
func (s *scope) positive(v string) (int64, error) {
	n, err := s.bytes(v)
	if err == nil && n == 0 {
		err = errors.New("must be positive (fio: min value 1)")
	}
	return n, err
}

// positiveInt parses a count that fio refuses as 0 (iodepth, numjobs).
func (s *scope) positiveInt(v string) (int, error) {
	n, err := s.int(v)
	if err == nil && n == 0 {
		err = errors.New("must be at least 1")
	}
	return n, err
}

// b0 reports whether a size range has a zero end.
func b0(b BlockSize) bool { return b.Min == 0 || b.Max == 0 }

// sizeOrRange parses a size or a range of sizes ("4k", "1k-4k", "1k:4k").
func (s *scope) sizeOrRange(v string) (BlockSize, error) {
	if strings.ContainsAny(v, "-:") {
		return s.blockRange(v)
	}
	n, err := s.bytes(v)
	return Fixed(n), err
}

// maxBSSplit and maxZones are fio's limits.
const (
	maxBSSplit = 64
	maxZones   = 256
)

// parseBSSplit parses one direction of bssplit: "4k/10:64k/50:32k/40". Entries without a
// percentage share what the others leave evenly, as in fio; the rounding remainder goes
// to the last of them so that the shares add up to 100.
func (s *scope) parseBSSplit(v string) ([]BSSplitEntry, error) {
	parts := strings.Split(v, ":")
	if len(parts) > maxBSSplit {
		return nil, fmt.Errorf("more than %d block sizes", maxBSSplit)
	}
	out := make([]BSSplitEntry, len(parts))
	var missing []int
	sum := 0
	for i, p := range parts {
		bs, pct, _ := strings.Cut(p, "/")
		n, err := s.positive(strings.TrimSpace(bs))
		if err != nil {
			return nil, fmt.Errorf("block size %q: %w", bs, err)
		}
		out[i].BS = n
		if pct = strings.TrimSpace(pct); pct == "" {
			missing = append(missing, i)
			continue
		}
		if out[i].Pct, err = s.percent(pct); err != nil {
			return nil, fmt.Errorf("percentage %q: %w", pct, err)
		}
		sum += out[i].Pct
	}
	if err := fillShares(sum, missing, func(i, pct int) { out[i].Pct = pct }); err != nil {
		return nil, err
	}
	return out, nil
}

// fillShares gives the entries without a percentage (missing) an even share of what the
// given ones (adding up to sum) leave.
func fillShares(sum int, missing []int, set func(i, pct int)) error {
	if sum > 100 {
		return fmt.Errorf("percentages add up to %d, more than 100", sum)
	}
	if len(missing) == 0 {
		return nil
	}
	share := (100 - sum) / len(missing)
	for k, i := range missing {
		if k == len(missing)-1 {
			share += (100 - sum) - share*len(missing)
		}
		set(i, share)
	}
	return nil
}

// splitRange is the smallest and largest block size of a bssplit.
func splitRange(sp []BSSplitEntry) BlockSize {
	b := Fixed(sp[0].BS)
	for _, e := range sp[1:] {
		b.Min, b.Max = min(b.Min, e.BS), max(b.Max, e.BS)
	}
	return b
}

// parseDistribution parses random_distribution. zipf, pareto and normal take one value for
// all directions (as fio does); zoned and zoned_abs take zones per direction like bssplit.
func (s *scope) parseDistribution(v string, prev [2]Distribution) ([2]Distribution, error) {
	kind, rest, hasParam := strings.Cut(v, ":")
	switch kind {
	case "random":
		if hasParam {
			return prev, errors.New("random takes no value")
		}
		return [2]Distribution{}, nil
	case "zipf", "pareto", "normal":
		if !hasParam {
			return prev, fmt.Errorf("%s needs a value, e.g. %s:0.5", kind, kind)
		}
		if strings.Contains(rest, ",") {
			return prev, fmt.Errorf("%s takes one value for all directions (fio has per-direction values for zoned and zoned_abs only)", kind)
		}
		if _, _, center := strings.Cut(rest, ":"); center {
			return prev, errors.New("a second value (where the distribution is centred) is not supported")
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return prev, fmt.Errorf("%q is not a number", rest)
		}
		d := Distribution{Kind: kind, Param: f}
		if err := d.check(); err != nil {
			return prev, err
		}
		return [2]Distribution{d, d}, nil
	case "zoned", "zoned_abs":
		if !hasParam {
			return prev, fmt.Errorf("%s needs zones, e.g. %s:60/10:40/90", kind, kind)
		}
		out := prev
		err := perDirection(rest, func(d Direction, p string) error {
			zones, err := s.parseZones(p, kind == "zoned_abs")
			if err != nil {
				return err
			}
			out[d] = Distribution{Kind: kind, Zones: zones}
			return out[d].check()
		})
		if err != nil {
			return prev, err
		}
		return out, nil
	}
	return prev, errors.New("must be random, zipf:theta, pareto:h, normal:deviation, zoned:access%/size%:... or zoned_abs:access%/size:...")
}

// parseZones parses "60/10:30/20:10/" (zoned: sizes in percent, a missing one shares what
// is left) or "60/20g:40/100g" (zoned_abs: sizes in bytes).
func (s *scope) parseZones(v string, abs bool) ([]Zone, error) {
	parts := strings.Split(v, ":")
	if len(parts) > maxZones {
		return nil, fmt.Errorf("more than %d zones", maxZones)
	}
	zones := make([]Zone, len(parts))
	var missing []int
	sum := 0
	for i, p := range parts {
		acc, size, _ := strings.Cut(p, "/")
		var err error
		if zones[i].AccessPct, err = s.percent(strings.TrimSpace(acc)); err != nil {
			return nil, fmt.Errorf("zone %q: access percentage: %w", p, err)
		}
		switch size = strings.TrimSpace(size); {
		case size == "" && abs:
			return nil, fmt.Errorf("zone %q: needs a size", p)
		case size == "":
			missing = append(missing, i)
		case abs:
			if zones[i].Size, err = s.positive(size); err != nil {
				return nil, fmt.Errorf("zone %q: size: %w", p, err)
			}
		default:
			pct, err := s.percent(size)
			if err != nil {
				return nil, fmt.Errorf("zone %q: size percentage: %w", p, err)
			}
			zones[i].Size = int64(pct)
			sum += pct
		}
	}
	if !abs {
		if err := fillShares(sum, missing, func(i, pct int) { zones[i].Size = int64(pct) }); err != nil {
			return nil, fmt.Errorf("zone sizes: %w", err)
		}
	}
	return zones, nil
}

// parsePathList takes one file or directory name. fio separates several with ':' and
// writes a ':' inside a name as '\:'.
func parsePathList(v, what string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		switch {
		case v[i] == '\\' && i+1 < len(v) && v[i+1] == ':':
			b.WriteByte(':')
			i++
		case v[i] == ':':
			return "", fmt.Errorf(`several %s (':'-separated) are not supported; write a ':' in a name as '\:'`, what)
		default:
			b.WriteByte(v[i])
		}
	}
	return b.String(), nil
}

// micros parses a time whose bare number is microseconds (fio's thinktime).
func micros(v string) (time.Duration, error) {
	d, err := units.ParseDuration(v, time.Microsecond)
	if err == nil && d < 0 {
		err = errors.New("out of range")
	}
	return d, err
}

// onlyDefault accepts an option only at fio's default value, which is what vmstorbench does.
func onlyDefault(v, def, what string) error {
	if v != def {
		return fmt.Errorf("only %s, fio's default, is supported: %s", def, what)
	}
	return nil
}

// maxPattern is fio's limit on buffer_pattern and verify_pattern (MAX_PATTERN_SIZE).
const maxPattern = 512

// minVerifyInterval is fio's minimum verify_interval.
const minVerifyInterval = 80

// parsePattern parses fio's pattern syntax (buffer_pattern, verify_pattern): 0x-prefixed
// hex bytes as written ("0x123" is 01 23), a decimal number from -2^31 to 2^31-1 as its
// least bytes of the 32-bit value, low byte first ("256" is 00 01, "-12" is f4 ff ff ff),
// and "text" in double quotes, in any combination: 0xdeadface"abcd"-12. fio's 'file' and
// verify_pattern's %o (the block offset) are not supported.
func parsePattern(v string, verify bool) ([]byte, error) {
	var out []byte
	for i := 0; i < len(v); {
		c := v[i]
		switch {
		case c == '"':
			j := strings.IndexByte(v[i+1:], '"')
			if j < 0 {
				return nil, errors.New("unterminated \"string\"")
			}
			out = append(out, v[i+1:i+1+j]...)
			i += j + 2
		case c == '\'':
			return nil, errors.New("a pattern read from a 'file' is not supported: write the bytes as 0x... or \"text\"")
		case c == '%' && verify:
			return nil, errors.New("%o (the block offset in the pattern) is not supported")
		case c == '0' && i+1 < len(v) && (v[i+1] == 'x' || v[i+1] == 'X'):
			j := i + 2
			for j < len(v) && isHex(v[j]) {
				j++
			}
			digits := v[i+2 : j]
			if digits == "" {
				return nil, fmt.Errorf("0x at %d without hex digits", i)
			}
			if len(digits)%2 == 1 {
				digits = "0" + digits
			}
			b, _ := hex.DecodeString(digits)
			out = append(out, b...)
			i = j
		case c == '-' || (c >= '0' && c <= '9'):
			j := i + 1
			for j < len(v) && v[j] >= '0' && v[j] <= '9' {
				j++
			}
			n, err := strconv.ParseInt(v[i:j], 10, 64)
			if err != nil || n < math.MinInt32 || n > math.MaxInt32 {
				return nil, fmt.Errorf("%q: a decimal number must fit in 32 bits (use 0x for longer patterns)", v[i:j])
			}
			u := uint32(int32(n))
			out = append(out, byte(u))
			for u >>= 8; u != 0; u >>= 8 {
				out = append(out, byte(u))
			}
			i = j
		default:
			return nil, fmt.Errorf("unexpected %q at %d: a pattern is 0x hex digits, decimal numbers and \"text\", in any combination", c, i)
		}
		if len(out) > maxPattern {
			return nil, fmt.Errorf("longer than %d bytes (fio's limit)", maxPattern)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("empty pattern")
	}
	return out, nil
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// parseVerify parses verify=: the checksums vmstorbench implements, meta (header only) and
// pattern.
func parseVerify(v string) (string, error) {
	switch v {
	case "0", "none":
		return "", nil
	case "crc32c", "crc32c-intel": // the same checksum; -intel only asks fio for hardware help
		return "crc32c", nil
	case "md5", "sha256", "meta", "pattern":
		return v, nil
	}
	return "", errors.New("must be md5, sha256, crc32c, meta or pattern (0 turns verification off)")
}

// unsupportedOption is the error for an option not in the table: why, when fio has it, or
// the nearest supported name, when it is not a fio option.
func unsupportedOption(key string) string {
	msg := fmt.Sprintf("unsupported fio option %q", key)
	if why, ok := refusedOptions[key]; ok {
		return msg + ": " + why
	}
	if eng, ok := engineOptions[key]; ok {
		return msg + ": an option of fio's ioengine=" + eng + "; vmstorbench's backends replace fio's I/O engines"
	}
	if slices.Contains(fioOptionNames, key) {
		return msg + ": vmstorbench does not implement it"
	}
	if s := suggest.Nearest(key, supportedNames); s != "" {
		return msg + fmt.Sprintf(" (not a fio option; did you mean %q?)", s)
	}
	return msg + " (not a fio option)"
}

// OptionNames returns the names (aliases included) of every fio option vmstorbench takes,
// for did-you-mean lists elsewhere (suites).
func OptionNames() []string { return slices.Clone(supportedNames) }

// supportedNames are the names (aliases included) of the options in the table.
var supportedNames = func() []string {
	var n []string
	for _, o := range options {
		n = append(n, o.names...)
	}
	return n
}()
