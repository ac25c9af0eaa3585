package bench

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"sync/atomic"
)

// Every piece of a block written with verify (the whole block, or each verify_interval of
// it, as fio does) starts with a header; the rest of the piece is data: a pseudo-random
// pattern derived from the header (so no other piece could hold it), or verify_pattern.
//
//	0  magic   "VMSBVRF2"
//	8  offset  where the piece was written
//	16 seed    the workload's randseed
//	24 gen     the block's write generation in this run (1, 2, ...)
//	28 kind    the algorithm (verifyKind); 29..31 zero
//	32 length  of the piece
//	36 hdrcrc  crc32c of bytes 0..35, so that "meta" (no data hash) still catches a header
//	           damaged in place
//	40 hash    of the data after the header: crc32c 4 bytes, md5 16, sha256 32, meta none
//
// verify=pattern writes no header: the block is verify_pattern repeated and is compared
// with it; it cannot tell stale or misplaced data from fresh (the pattern is the same).
const (
	verifyMagic       = 0x3246525642534d56 // "VMSBVRF2" little-endian
	verifyFixedHeader = 40
	// verifyMaxHeader is the longest header (sha256): the smallest verify_interval.
	verifyMaxHeader = verifyFixedHeader + sha256.Size
)

// verifyKind is the algorithm of verify=; its value is stored in the header.
type verifyKind uint8

const (
	verifyCRC32C verifyKind = iota + 1
	verifyMD5
	verifySHA256
	verifyMeta
	verifyPattern
)

var verifyKinds = map[string]verifyKind{
	"crc32c": verifyCRC32C, "md5": verifyMD5, "sha256": verifySHA256, "meta": verifyMeta, "pattern": verifyPattern,
}

func (k verifyKind) String() string {
	for name, v := range verifyKinds {
		if v == k {
			return name
		}
	}
	return fmt.Sprintf("kind %d", uint8(k))
}

// hashLen is the size of the data hash in the header.
func (k verifyKind) hashLen() int {
	switch k {
	case verifyCRC32C:
		return crc32.Size
	case verifyMD5:
		return md5.Size
	case verifySHA256:
		return sha256.Size
	}
	return 0
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// verifier writes and checks verify blocks of one run. It is immutable once built, so all
// workers share it; its methods allocate nothing.
type verifier struct {
	kind     verifyKind
	seed     uint64
	interval int64  // bytes per header; 0 = the whole block
	pattern  []byte // verify_pattern: the data of every piece (after its header)
	hdrLen   int
}

// newVerifier checks the verify options against the block size bs; nil, nil means verify is
// off. The errors name the fio option, for hand-built workloads the parser did not check.
func newVerifier(name string, seed uint64, bs, interval int64, pattern []byte) (*verifier, error) {
	if name == "" {
		return nil, nil
	}
	k, ok := verifyKinds[name]
	if !ok {
		return nil, fmt.Errorf("verify=%q: must be one of crc32c, md5, sha256, meta, pattern", name)
	}
	v := &verifier{kind: k, seed: seed, pattern: pattern}
	if k == verifyPattern {
		if len(pattern) == 0 {
			return nil, errors.New("verify=pattern: needs verify_pattern")
		}
		return v, nil // no header: interval does not matter
	}
	v.hdrLen = verifyFixedHeader + k.hashLen()
	switch {
	case interval < 0:
		return nil, fmt.Errorf("verify_interval=%d: must not be negative", interval)
	case interval == 0 || interval == bs:
	case interval < int64(v.hdrLen) || interval > bs || bs%interval != 0:
		return nil, fmt.Errorf("verify_interval=%d: must divide bs=%d and be at least the %d-byte verify=%s header", interval, bs, v.hdrLen, name)
	default:
		v.interval = interval
	}
	if bs < int64(v.hdrLen) {
		return nil, fmt.Errorf("verify=%s: bs=%d is smaller than its %d-byte header", name, bs, v.hdrLen)
	}
	return v, nil
}

// pieceLen is the length of each headed piece of a block of n bytes.
func (v *verifier) pieceLen(n int) int {
	if v.interval > 0 && int(v.interval) < n {
		return int(v.interval)
	}
	return n
}

// fill writes block b, written at off as generation gen: verify data overrides any other
// buffer option (as in fio, where the verify fill replaces the buffer's content).
func (v *verifier) fill(b []byte, off int64, gen uint32) {
	if len(v.pattern) > 0 {
		fillPattern(b, v.pattern, 0)
	}
	if v.kind == verifyPattern {
		return
	}
	pl := v.pieceLen(len(b))
	for p := 0; p+pl <= len(b); p += pl {
		v.fillPiece(b[p:p+pl], off+int64(p), gen)
	}
}

func (v *verifier) fillPiece(b []byte, off int64, gen uint32) {
	binary.LittleEndian.PutUint64(b[0:], verifyMagic)
	binary.LittleEndian.PutUint64(b[8:], uint64(off))
	binary.LittleEndian.PutUint64(b[16:], v.seed)
	binary.LittleEndian.PutUint32(b[24:], gen)
	binary.LittleEndian.PutUint32(b[28:], uint32(v.kind))
	binary.LittleEndian.PutUint32(b[32:], uint32(len(b)))
	binary.LittleEndian.PutUint32(b[36:], crc32.Checksum(b[:36], castagnoli))
	data := b[v.hdrLen:]
	if len(v.pattern) == 0 {
		fillStream(data, v.seed^uint64(off)*0x9e3779b97f4a7c15^uint64(gen))
	}
	v.putHash(b[verifyFixedHeader:v.hdrLen], data)
}

// putHash writes the data hash into dst (sized for the kind). The hash functions return
// arrays, so nothing escapes to the heap.
func (v *verifier) putHash(dst, data []byte) {
	switch v.kind {
	case verifyCRC32C:
		binary.LittleEndian.PutUint32(dst, crc32.Checksum(data, castagnoli))
	case verifyMD5:
		h := md5.Sum(data)
		copy(dst, h[:])
	case verifySHA256:
		h := sha256.Sum256(data)
		copy(dst, h[:])
	}
}

// check checks a block read at off. wantGen is the generation this run last wrote there, or
// 0 when this run has not written it: then a piece without a header is not an error (never
// written), but a header must still be self-consistent. checked reports whether the block
// counted as verified; problem names the first bad piece.
func (v *verifier) check(b []byte, off int64, wantGen uint32) (checked bool, problem string) {
	if v.kind == verifyPattern {
		if wantGen == 0 {
			return false, "" // nothing tells this run's pattern from what was there before
		}
		if i := patternMismatch(b, v.pattern, 0); i >= 0 {
			return true, fmt.Sprintf("pattern mismatch at byte %d: %#02x, expected %#02x", i, b[i], v.pattern[i%len(v.pattern)])
		}
		return true, ""
	}
	pl := v.pieceLen(len(b))
	for p := 0; p+pl <= len(b); p += pl {
		c, problem := v.checkPiece(b[p:p+pl], off+int64(p), wantGen, p)
		checked = checked || c
		if problem != "" {
			if pl < len(b) {
				problem = fmt.Sprintf("verify_interval piece at +%d: %s", p, problem)
			}
			return true, problem
		}
	}
	return checked, ""
}

// checkPiece checks one headed piece; at is its position in the block (for the pattern).
func (v *verifier) checkPiece(b []byte, off int64, wantGen uint32, at int) (checked bool, problem string) {
	if binary.LittleEndian.Uint64(b[0:]) != verifyMagic {
		if wantGen == 0 {
			return false, ""
		}
		return true, fmt.Sprintf("no verify header (expected generation %d)", wantGen)
	}
	if got, want := binary.LittleEndian.Uint32(b[36:]), crc32.Checksum(b[:36], castagnoli); got != want {
		return true, fmt.Sprintf("header checksum mismatch: stored %08x, computed %08x", got, want)
	}
	if k := verifyKind(binary.LittleEndian.Uint32(b[28:])); k != v.kind {
		return true, fmt.Sprintf("block written with verify=%s, expected %s", k, v.kind)
	}
	if n := binary.LittleEndian.Uint32(b[32:]); int(n) != len(b) {
		return true, fmt.Sprintf("header of a %d-byte piece, expected %d bytes", n, len(b))
	}
	if got := binary.LittleEndian.Uint64(b[8:]); int64(got) != off {
		return true, fmt.Sprintf("block holds data written at offset %d", got)
	}
	if wantGen != 0 {
		if s := binary.LittleEndian.Uint64(b[16:]); s != v.seed {
			return true, fmt.Sprintf("block written with randseed %d, expected %d", s, v.seed)
		}
	}
	data := b[v.hdrLen:]
	if n := v.kind.hashLen(); n > 0 {
		var buf [sha256.Size]byte
		v.putHash(buf[:n], data)
		if stored := b[verifyFixedHeader:v.hdrLen]; !bytes.Equal(stored, buf[:n]) {
			// Clone keeps buf on the stack: passed to Sprintf itself it would escape, and
			// cost an allocation on every check.
			return true, fmt.Sprintf("%s mismatch: header %x, data %x", v.kind, stored, bytes.Clone(buf[:n]))
		}
	} else if len(v.pattern) > 0 {
		// meta with verify_pattern checks the data against the pattern (fio does too).
		if i := patternMismatch(data, v.pattern, at+v.hdrLen); i >= 0 {
			return true, fmt.Sprintf("pattern mismatch at byte %d: %#02x, expected %#02x", at+v.hdrLen+i, data[i], v.pattern[(at+v.hdrLen+i)%len(v.pattern)])
		}
	}
	if gen := binary.LittleEndian.Uint32(b[24:]); wantGen != 0 && gen != wantGen {
		return true, fmt.Sprintf("stale data: generation %d, expected %d", gen, wantGen)
	}
	return true, ""
}

// patternMismatch returns the index of the first byte of b that differs from pattern
// repeated from phase, or -1.
func patternMismatch(b, pattern []byte, phase int) int {
	pl := len(pattern)
	phase %= pl
	for i := 0; i < len(b); {
		// Compare a run up to the pattern's end at once.
		p := (phase + i) % pl
		n := min(pl-p, len(b)-i)
		if !bytes.Equal(b[i:i+n], pattern[p:p+n]) {
			for j := range n {
				if b[i+j] != pattern[p+j] {
					return i + j
				}
			}
		}
		i += n
	}
	return -1
}

// blockMap tracks, per verify block of a job's region, the generation last written (low 31
// bits) and whether an I/O is in flight on it (top bit), so concurrent workers never read a
// block while it is being rewritten.
type blockMap struct {
	bs  int64
	gen []atomic.Uint32
}

const blockBusy = 1 << 31

// nextGen is the generation of the next write to a block that holds gen.
func nextGen(gen uint32) uint32 { return (gen&^blockBusy)%(blockBusy-1) + 1 }

// maxVerifyBlocks bounds the map's memory (4 bytes a block).
const maxVerifyBlocks = 1 << 28

func newBlockMap(region, bs int64) (*blockMap, error) {
	n := region / bs
	if n > maxVerifyBlocks {
		return nil, fmt.Errorf("verify: region of %d blocks of %d bytes is too large to track (max %d blocks)", n, bs, maxVerifyBlocks)
	}
	return &blockMap{bs: bs, gen: make([]atomic.Uint32, n)}, nil
}

// acquire marks block idx busy and returns its generation, or false if it is busy.
func (m *blockMap) acquire(idx int64) (uint32, bool) {
	g := &m.gen[idx]
	old := g.Load()
	if old&blockBusy != 0 || !g.CompareAndSwap(old, old|blockBusy) {
		return 0, false
	}
	return old, true
}

// release stores gen and clears busy.
func (m *blockMap) release(idx int64, gen uint32) { m.gen[idx].Store(gen &^ blockBusy) }
