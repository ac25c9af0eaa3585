package bench

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"sync/atomic"
)

// Every block written with verify carries a 32-byte header; the rest is a pseudo-random
// pattern derived from the header, so the CRC covers data no other block could have.
//
//	0  magic   "VMSBVRF1"
//	8  offset  where the block was written
//	16 seed    the workload's randseed
//	24 gen     the block's write generation in this run (1, 2, ...)
//	28 crc32c  of the whole block except these 4 bytes
const (
	verifyHeaderLen = 32
	verifyMagic     = 0x3146525642534d56 // "VMSBVRF1" little-endian
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// fillVerifyBlock writes the header and pattern of a block into b.
func fillVerifyBlock(b []byte, off int64, seed uint64, gen uint32) {
	binary.LittleEndian.PutUint64(b[0:], verifyMagic)
	binary.LittleEndian.PutUint64(b[8:], uint64(off))
	binary.LittleEndian.PutUint64(b[16:], seed)
	binary.LittleEndian.PutUint32(b[24:], gen)
	x := mix64(seed ^ uint64(off)*0x9e3779b97f4a7c15 ^ uint64(gen))
	i := verifyHeaderLen
	for ; i+8 <= len(b); i += 8 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		binary.LittleEndian.PutUint64(b[i:], x)
	}
	for ; i < len(b); i++ {
		b[i] = byte(x >> (8 * (i % 8)))
	}
	binary.LittleEndian.PutUint32(b[28:], blockCRC(b))
}

func blockCRC(b []byte) uint32 {
	c := crc32.Update(0, castagnoli, b[:28])
	return crc32.Update(c, castagnoli, b[verifyHeaderLen:])
}

// checkVerifyBlock checks a block read at off. wantGen is the generation this run last wrote
// there, or 0 when this run has not written it: then a block without a header is not an
// error (never written), but a header must still be self-consistent. checked reports whether
// the block counted as verified.
func checkVerifyBlock(b []byte, off int64, wantGen uint32) (checked bool, problem string) {
	magic := binary.LittleEndian.Uint64(b[0:])
	if magic != verifyMagic {
		if wantGen == 0 {
			return false, ""
		}
		return true, fmt.Sprintf("no verify header (expected generation %d)", wantGen)
	}
	if got := binary.LittleEndian.Uint64(b[8:]); int64(got) != off {
		return true, fmt.Sprintf("block holds data written at offset %d", got)
	}
	if got, want := binary.LittleEndian.Uint32(b[28:]), blockCRC(b); got != want {
		return true, fmt.Sprintf("crc32c mismatch: header %08x, data %08x", got, want)
	}
	if gen := binary.LittleEndian.Uint32(b[24:]); wantGen != 0 && gen != wantGen {
		return true, fmt.Sprintf("stale data: generation %d, expected %d", gen, wantGen)
	}
	return true, ""
}

// blockMap tracks, per verify block of a job's region, the generation last written (low 31
// bits) and whether an I/O is in flight on it (top bit), so concurrent workers never read a
// block while it is being rewritten.
type blockMap struct {
	bs  int64
	gen []atomic.Uint32
}

const blockBusy = 1 << 31

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
