package bench

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/vmstorbench/vmstorbench/workloads"
)

// What writes carry. A storage system that compresses or deduplicates (most NAS do) is
// measured on the data it gets, so the content of write buffers follows fio's options:
//
//   - verify=: the verify block (header and data, see verify.go). Verify overrides every
//     buffer option, as in fio, where the verify fill replaces the buffer's content.
//   - buffer_compress_percentage or dedupe_percentage: every write is regenerated (fio's
//     refill_buffers, which these options imply). Each buffer_compress_chunk (default 512
//     bytes) is random for (100-pct)% and then zeros or buffer_pattern, so it compresses by
//     about pct%; dedupe_percentage% of the writes repeat the previous unique write exactly.
//   - buffer_pattern, or buffer_compress_percentage=100 (zeros, as fio turns it into
//     zero_buffers): every write is exactly the pattern. fio's buffer_pattern turns
//     scramble_buffers off, and compression turns scrambling off too.
//   - otherwise (the default): the buffer is filled once with random data and every write
//     stamps each 512-byte sector with its offset and a write counter. That is fio's default
//     scramble_buffers=1, and what makes dedupe_percentage=0 mean no dedupe: no two sectors
//     written are the same, at the cost of two stores per sector rather than regenerating the
//     block. As with fio, the blocks share the rest of their bytes: each compresses alone no
//     better than random data, but a compressor that sees several at once (a 128 KiB record
//     of 4 KiB writes) finds the repeats.

const (
	defaultCompressChunk = 512 // fio's buffer_compress_chunk default
	scrambleSector       = 512
)

type bufMode uint8

const (
	bufScramble bufMode = iota // random once, stamp each write
	bufFixed                   // pattern or zeros once, nothing per write
	bufRefill                  // regenerate each write (compress/dedupe)
	bufVerify                  // verify blocks
)

// dataPlan is the run's decision about written data, made once from the workload and
// shared by all workers.
type dataPlan struct {
	mode        bufMode
	pattern     []byte // buffer_pattern: the fill (fixed) or the fixed part of chunks (refill)
	compressPct int
	chunk       int
	dedupePct   int
	verify      *verifier // nil when verify is off
}

// newDataPlan checks the data and durability options (defensively: the parser checks them
// for job files, but a Workload can be built by hand) and decides how buffers are filled.
func newDataPlan(w workloads.Workload) (*dataPlan, error) {
	d := &dataPlan{
		pattern:     w.BufferPattern,
		compressPct: w.BufferCompressPct,
		chunk:       int(w.BufferCompressChunk),
		dedupePct:   w.DedupePct,
	}
	switch {
	case w.BufferCompressPct < 0 || w.BufferCompressPct > 100:
		return nil, fmt.Errorf("buffer_compress_percentage=%d: must be 0..100", w.BufferCompressPct)
	case w.DedupePct < 0 || w.DedupePct > 100:
		return nil, fmt.Errorf("dedupe_percentage=%d: must be 0..100", w.DedupePct)
	case w.BufferCompressChunk < 0 || w.BufferCompressChunk > 64<<20:
		return nil, fmt.Errorf("buffer_compress_chunk=%d: must be 0..64MiB", w.BufferCompressChunk)
	case w.Fdatasync < 0:
		return nil, fmt.Errorf("fdatasync=%d: must not be negative", w.Fdatasync)
	}
	switch w.SyncIO {
	case "", "sync", "dsync":
	default:
		return nil, fmt.Errorf("sync=%q: must be none, sync or dsync", w.SyncIO)
	}
	if len(w.VerifyPattern) > 0 && w.Verify == "" {
		return nil, errors.New("verify_pattern: needs verify (verify=pattern, or a checksum with the pattern as data)")
	}
	if d.chunk == 0 {
		d.chunk = defaultCompressChunk
	}
	v, err := newVerifier(w.Verify, w.RandSeed, w.BS[workloads.Write].Min, w.VerifyInterval, w.VerifyPattern)
	if err != nil {
		return nil, err
	}
	switch {
	case v != nil:
		d.mode, d.verify = bufVerify, v
	case w.DedupePct > 0 || (w.BufferCompressPct > 0 && w.BufferCompressPct < 100):
		d.mode = bufRefill
	case len(w.BufferPattern) > 0 || w.BufferCompressPct == 100:
		d.mode = bufFixed
	}
	return d, nil
}

// writeData is one worker's write-buffer state; it runs on the worker's hot path.
type writeData struct {
	plan *dataPlan
	seed uint64 // this worker's content seed
	tag  uint64 // worker id in the top bits of the scramble counter
	n    uint64 // writes so far
	// refill: the content id of the last unique write (the one dedupes repeat) and the id and
	// length the buffer holds now, so that a repeat does not regenerate it.
	lastUnique uint64
	haveUnique bool
	heldID     uint64
	heldLen    int
}

// newWriteData fills buf, the worker's write buffer, for plan's mode.
func newWriteData(plan *dataPlan, buf []byte, seed uint64, workerID int) *writeData {
	if plan == nil {
		plan = &dataPlan{} // a hand-built runState: fio's default content
	}
	wd := &writeData{plan: plan, seed: mix64(seed), tag: uint64(workerID) << 40, heldLen: -1}
	switch {
	case plan.mode == bufScramble:
		fillStream(buf, wd.seed)
	case plan.mode == bufFixed && len(plan.pattern) > 0:
		fillPattern(buf, plan.pattern, 0)
	}
	// bufFixed without a pattern: zeros, which a new buffer holds.
	return wd
}

// prepare makes buf the content of a write at off; gen is the verify generation (verify only).
func (wd *writeData) prepare(buf []byte, off int64, gen uint32) {
	wd.n++
	switch wd.plan.mode {
	case bufVerify:
		wd.plan.verify.fill(buf, off, gen)
	case bufRefill:
		wd.refill(buf)
	case bufScramble:
		scramble(buf, off, wd.tag|wd.n)
	}
}

// scramble stamps each 512-byte sector of b (or b itself when shorter) with its offset and
// the write's stamp, so that no two sectors written carry the same bytes.
func scramble(b []byte, off int64, stamp uint64) {
	if len(b) < 16 {
		return
	}
	for s := 0; s+16 <= len(b); s += scrambleSector {
		binary.LittleEndian.PutUint64(b[s:], uint64(off)+uint64(s))
		binary.LittleEndian.PutUint64(b[s+8:], stamp)
	}
}

// refill regenerates buf: with dedupe_percentage, a share of the writes repeat the previous
// unique write (fio's dedupe_mode=repeat); the draw is a hash of the write count, so a seed
// gives the same sequence.
func (wd *writeData) refill(buf []byte) {
	p := wd.plan
	id := mix64(wd.seed ^ wd.n*0x9e3779b97f4a7c15)
	if p.dedupePct > 0 && wd.haveUnique && (p.dedupePct == 100 || int(mix64(id^0x6a09e667f3bcc909)%100) < p.dedupePct) {
		id = wd.lastUnique
	} else {
		wd.lastUnique, wd.haveUnique = id, true
	}
	if id == wd.heldID && len(buf) == wd.heldLen {
		// The buffer holds this content already. Only at the same length: the last chunk's
		// split between random and fixed bytes depends on where the block ends.
		return
	}
	fillCompressible(buf, id, p.chunk, p.compressPct, p.pattern)
	wd.heldID, wd.heldLen = id, len(buf)
}

// fillCompressible fills b chunk by chunk: the first (100-pct)% of each chunk random (a
// stream of its own per chunk, so chunks do not match each other), the rest zeros or
// pattern. A compressor then saves about pct% (fio's fill_random_buf_percentage).
func fillCompressible(b []byte, id uint64, chunk, pct int, pattern []byte) {
	for c, i := 0, 0; c < len(b); c, i = c+chunk, i+1 {
		part := b[c:min(c+chunk, len(b))]
		r := len(part) * (100 - pct) / 100
		fillStream(part[:r], mix64(id+uint64(i)*0xbf58476d1ce4e5b9))
		if len(pattern) > 0 {
			fillPattern(part[r:], pattern, 0) // from the pattern's start, as fio's cpy_pattern
		} else {
			clear(part[r:])
		}
	}
}

// fillStream fills b with pseudo-random bytes from seed: fast, and incompressible. Four
// independent xorshift64 streams are interleaved because one is a chain of dependent
// shifts: four keep the CPU's ALUs busy, about 3 times faster on 4 KiB.
func fillStream(b []byte, seed uint64) {
	x0, x1, x2, x3 := mix64(seed)|1, mix64(seed+1)|1, mix64(seed+2)|1, mix64(seed+3)|1
	i := 0
	for ; i+32 <= len(b); i += 32 {
		x0 ^= x0 << 13
		x1 ^= x1 << 13
		x2 ^= x2 << 13
		x3 ^= x3 << 13
		x0 ^= x0 >> 7
		x1 ^= x1 >> 7
		x2 ^= x2 >> 7
		x3 ^= x3 >> 7
		x0 ^= x0 << 17
		x1 ^= x1 << 17
		x2 ^= x2 << 17
		x3 ^= x3 << 17
		q := b[i : i+32 : i+32]
		binary.LittleEndian.PutUint64(q[0:], x0)
		binary.LittleEndian.PutUint64(q[8:], x1)
		binary.LittleEndian.PutUint64(q[16:], x2)
		binary.LittleEndian.PutUint64(q[24:], x3)
	}
	for ; i+8 <= len(b); i += 8 {
		x0 ^= x0 << 13
		x0 ^= x0 >> 7
		x0 ^= x0 << 17
		binary.LittleEndian.PutUint64(b[i:], x0)
	}
	x1 ^= x1 << 13
	for ; i < len(b); i++ {
		b[i] = byte(x1 >> (8 * (i % 8)))
	}
}

// fillPattern fills b with pattern repeated, starting at pattern byte phase%len(pattern),
// by doubling copies.
func fillPattern(b, pattern []byte, phase int) {
	if len(b) == 0 || len(pattern) == 0 {
		return
	}
	phase %= len(pattern)
	n := copy(b, pattern[phase:])
	n += copy(b[n:], pattern[:phase])
	// b[:n] is one period (or all of b): double it until b is full.
	for n < len(b) {
		n += copy(b[n:], b[:n])
	}
}
