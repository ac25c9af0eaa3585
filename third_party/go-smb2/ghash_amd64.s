// Added in vmstorbench's patched copy (see README.md): GHASH (NIST SP 800-38D) with
// VPCLMULQDQ on 512-bit registers, 16 blocks per iteration, for AES-128-GMAC signing. Go's
// crypto/cipher runs GHASH with 128-bit PCLMULQDQ, 8 blocks at a time (~7 GB/s here); this
// loop multiplies four blocks per instruction and keeps the accumulator's dependency chain
// to one multiplication and one reduction per 256 bytes. The arithmetic is Go's own
// (crypto/internal/fips140/aes/gcm/gcm_amd64.s): blocks byte-reversed, the hash key
// doubled ("H * 2") so that products of reflected operands need no shift, the same
// two-round reduction by 0xc2...01.

//go:build amd64 && !purego

#include "textflag.h"

DATA ghashBswapMask<>+0(SB)/8, $0x08090a0b0c0d0e0f
DATA ghashBswapMask<>+8(SB)/8, $0x0001020304050607
GLOBL ghashBswapMask<>(SB), RODATA|NOPTR, $16

DATA ghashPoly<>+0(SB)/8, $0x0000000000000001
DATA ghashPoly<>+8(SB)/8, $0xc200000000000000
GLOBL ghashPoly<>(SB), RODATA|NOPTR, $16

// func avx512CryptoSupported() bool
// AVX-512 F, BW and VL, VPCLMULQDQ, VAES and AES-NI, and an OS that saves the ZMM state.
TEXT ·avx512CryptoSupported(SB), NOSPLIT, $0-1
	XORL  AX, AX
	XORL  CX, CX
	CPUID
	CMPL  AX, $7
	JB    no
	MOVL  $1, AX
	XORL  CX, CX
	CPUID
	BTL   $27, CX // OSXSAVE
	JCC   no
	XORL  CX, CX
	XGETBV
	ANDL  $0xe6, AX // SSE, AVX, opmask, ZMM0-15 upper halves, ZMM16-31
	CMPL  AX, $0xe6
	JNE   no
	MOVL  $7, AX
	XORL  CX, CX
	CPUID
	ANDL  $0xc0010000, BX // AVX512F (16), AVX512BW (30), AVX512VL (31)
	CMPL  BX, $0xc0010000
	JNE   no
	BTL   $10, CX // VPCLMULQDQ
	JCC   no
	BTL   $9, CX // VAES
	JCC   no
	MOVL  $1, AX
	XORL  CX, CX
	CPUID
	BTL   $25, CX // AES-NI
	JCC   no
	MOVB  $1, ret+0(FP)
	RET
no:
	MOVB  $0, ret+0(FP)
	RET

// mulReduce sets X8 to X0·H (H doubled, in X12), both byte-reversed, reduced. Clobbers
// X4-X7.
#define mulReduce \
	VPCLMULQDQ $0x00, X12, X0, X4 \
	VPCLMULQDQ $0x11, X12, X0, X5 \
	VPCLMULQDQ $0x01, X12, X0, X6 \
	VPCLMULQDQ $0x10, X12, X0, X7 \
	VPXOR      X7, X6, X6         \
	VPSLLDQ    $8, X6, X7         \
	VPSRLDQ    $8, X6, X6         \
	VPXOR      X7, X4, X4         \
	VPXOR      X6, X5, X5         \
	VPCLMULQDQ $0x01, X4, X14, X7 \
	VPSHUFD    $0x4e, X4, X4      \
	VPXOR      X7, X4, X4         \
	VPCLMULQDQ $0x01, X4, X14, X7 \
	VPSHUFD    $0x4e, X4, X4      \
	VPXOR      X7, X4, X4         \
	VPXOR      X5, X4, X8

// func ghashInitAVX512(tbl *[256]byte, h *[16]byte)
// tbl gets H^16, H^15, ..., H^1 (each doubled and byte-reversed), 16 bytes each, for the
// four lanes of the four registers that hold 16 blocks.
TEXT ·ghashInitAVX512(SB), NOSPLIT, $0-16
	MOVQ    tbl+0(FP), DI
	MOVQ    h+8(FP), SI
	VMOVDQU ghashBswapMask<>(SB), X15
	VMOVDQU ghashPoly<>(SB), X14
	VMOVDQU (SI), X0
	VPSHUFB X15, X0, X0

	// H * 2
	VPSHUFD $0xff, X0, X1
	VPSRAD  $31, X1, X1
	VPAND   X14, X1, X1
	VPSRLD  $31, X0, X2
	VPSLLDQ $4, X2, X2
	VPSLLD  $1, X0, X0
	VPXOR   X1, X0, X0
	VPXOR   X2, X0, X0

	VMOVDQU X0, X12
	VMOVDQU X0, 240(DI)
	MOVQ    $15, AX
	LEAQ    224(DI), DI

initLoop:
	mulReduce
	VMOVDQU X8, (DI)
	VMOVDQU X8, X0
	LEAQ    -16(DI), DI
	DECQ    AX
	JNE     initLoop
	VZEROUPPER
	RET

// func ghashBlocksAVX512(tbl *[256]byte, acc *[16]byte, data []byte)
// Folds the whole 16-byte blocks of data into acc (a GHASH state in the spec's byte order).
TEXT ·ghashBlocksAVX512(SB), NOSPLIT, $0-40
	MOVQ    tbl+0(FP), DI
	MOVQ    acc+8(FP), CX
	MOVQ    data_base+16(FP), SI
	MOVQ    data_len+24(FP), DX
	VMOVDQU ghashBswapMask<>(SB), X15
	VMOVDQU ghashPoly<>(SB), X14
	VMOVDQU (CX), X8
	VPSHUFB X15, X8, X8
	CMPQ    DX, $256
	JB      singles

	VBROADCASTI32X4 ghashBswapMask<>(SB), Z15
	VMOVDQU64       (DI), Z16
	VMOVDQU64       64(DI), Z17
	VMOVDQU64       128(DI), Z18
	VMOVDQU64       192(DI), Z19
	VMOVDQU         (DI), X13 // H^16, for the accumulator

loop16:
	VMOVDQU64 (SI), Z0
	VMOVDQU64 64(SI), Z1
	VMOVDQU64 128(SI), Z2
	VMOVDQU64 192(SI), Z3
	VPSHUFB   Z15, Z0, Z0
	VPSHUFB   Z15, Z1, Z1
	VPSHUFB   Z15, Z2, Z2
	VPSHUFB   Z15, Z3, Z3

	// Products of the 16 blocks with H^16..H^1, lane by lane: low halves into Z4, high
	// halves into Z5, middle terms into Z6.
	VPCLMULQDQ $0x00, Z16, Z0, Z4
	VPCLMULQDQ $0x11, Z16, Z0, Z5
	VPCLMULQDQ $0x01, Z16, Z0, Z6
	VPCLMULQDQ $0x10, Z16, Z0, Z7
	VPXORQ     Z7, Z6, Z6

	VPCLMULQDQ $0x00, Z17, Z1, Z9
	VPCLMULQDQ $0x11, Z17, Z1, Z10
	VPCLMULQDQ $0x01, Z17, Z1, Z11
	VPCLMULQDQ $0x10, Z17, Z1, Z7
	VPXORQ     Z9, Z4, Z4
	VPXORQ     Z10, Z5, Z5
	VPTERNLOGQ $0x96, Z11, Z7, Z6

	VPCLMULQDQ $0x00, Z18, Z2, Z9
	VPCLMULQDQ $0x11, Z18, Z2, Z10
	VPCLMULQDQ $0x01, Z18, Z2, Z11
	VPCLMULQDQ $0x10, Z18, Z2, Z7
	VPXORQ     Z9, Z4, Z4
	VPXORQ     Z10, Z5, Z5
	VPTERNLOGQ $0x96, Z11, Z7, Z6

	VPCLMULQDQ $0x00, Z19, Z3, Z9
	VPCLMULQDQ $0x11, Z19, Z3, Z10
	VPCLMULQDQ $0x01, Z19, Z3, Z11
	VPCLMULQDQ $0x10, Z19, Z3, Z7
	VPXORQ     Z9, Z4, Z4
	VPXORQ     Z10, Z5, Z5
	VPTERNLOGQ $0x96, Z11, Z7, Z6

	// Sum the four lanes of each.
	VEXTRACTI64X4 $1, Z4, Y7
	VPXORQ        Y7, Y4, Y4
	VEXTRACTI128  $1, Y4, X7
	VPXOR         X7, X4, X4
	VEXTRACTI64X4 $1, Z5, Y7
	VPXORQ        Y7, Y5, Y5
	VEXTRACTI128  $1, Y5, X7
	VPXOR         X7, X5, X5
	VEXTRACTI64X4 $1, Z6, Y7
	VPXORQ        Y7, Y6, Y6
	VEXTRACTI128  $1, Y6, X7
	VPXOR         X7, X6, X6

	// Plus the accumulator times H^16: the only link between iterations.
	VPCLMULQDQ $0x00, X13, X8, X9
	VPCLMULQDQ $0x11, X13, X8, X10
	VPCLMULQDQ $0x01, X13, X8, X11
	VPCLMULQDQ $0x10, X13, X8, X7
	VPXOR      X9, X4, X4
	VPXOR      X10, X5, X5
	VPTERNLOGQ $0x96, X11, X7, X6

	VPSLLDQ    $8, X6, X7
	VPSRLDQ    $8, X6, X6
	VPXOR      X7, X4, X4
	VPXOR      X6, X5, X5
	VPCLMULQDQ $0x01, X4, X14, X7
	VPSHUFD    $0x4e, X4, X4
	VPXOR      X7, X4, X4
	VPCLMULQDQ $0x01, X4, X14, X7
	VPSHUFD    $0x4e, X4, X4
	VPXOR      X7, X4, X4
	VPXOR      X5, X4, X8

	ADDQ $256, SI
	SUBQ $256, DX
	CMPQ DX, $256
	JAE  loop16

singles:
	VMOVDQU 240(DI), X12 // H^1

singlesLoop:
	CMPQ    DX, $16
	JB      done
	VMOVDQU (SI), X0
	VPSHUFB X15, X0, X0
	VPXOR   X8, X0, X0
	mulReduce
	ADDQ    $16, SI
	SUBQ    $16, DX
	JMP     singlesLoop

done:
	VPSHUFB X15, X8, X8
	VMOVDQU X8, (CX)
	VZEROUPPER
	RET

// AES-128 key expansion step (Go's _expand_key_128, crypto/internal/fips140/aes): X0 the
// previous round key, X1 AESKEYGENASSIST's output, X4 zero on the first use; stores the
// next round key at (BX) and advances BX.
#define expandKey128(rcon) \
	AESKEYGENASSIST $rcon, X0, X1 \
	PSHUFD $0xff, X1, X1          \
	SHUFPS $0x10, X0, X4          \
	PXOR   X4, X0                 \
	SHUFPS $0x8c, X0, X4          \
	PXOR   X4, X0                 \
	PXOR   X1, X0                 \
	MOVUPS X0, (BX)               \
	ADDQ   $16, BX

// func aes128ExpandKey(rk *[176]byte, key *[16]byte)
TEXT ·aes128ExpandKey(SB), NOSPLIT, $0-16
	MOVQ   rk+0(FP), BX
	MOVQ   key+8(FP), AX
	MOVUPS (AX), X0
	MOVUPS X0, (BX)
	ADDQ   $16, BX
	PXOR   X4, X4
	expandKey128(0x01)
	expandKey128(0x02)
	expandKey128(0x04)
	expandKey128(0x08)
	expandKey128(0x10)
	expandKey128(0x20)
	expandKey128(0x40)
	expandKey128(0x80)
	expandKey128(0x1b)
	expandKey128(0x36)
	RET

// func aes128EncryptBlock(rk *[176]byte, dst, src *[16]byte)
TEXT ·aes128EncryptBlock(SB), NOSPLIT, $0-24
	MOVQ       rk+0(FP), DI
	MOVQ       dst+8(FP), DX
	MOVQ       src+16(FP), SI
	VMOVDQU    (SI), X0
	VPXOR      (DI), X0, X0
	VAESENC    16(DI), X0, X0
	VAESENC    32(DI), X0, X0
	VAESENC    48(DI), X0, X0
	VAESENC    64(DI), X0, X0
	VAESENC    80(DI), X0, X0
	VAESENC    96(DI), X0, X0
	VAESENC    112(DI), X0, X0
	VAESENC    128(DI), X0, X0
	VAESENC    144(DI), X0, X0
	VAESENCLAST 160(DI), X0, X0
	VMOVDQU    X0, (DX)
	VZEROUPPER
	RET

DATA ctrLanes<>+0(SB)/8, $0
DATA ctrLanes<>+8(SB)/8, $0
DATA ctrLanes<>+16(SB)/8, $1
DATA ctrLanes<>+24(SB)/8, $0
DATA ctrLanes<>+32(SB)/8, $2
DATA ctrLanes<>+40(SB)/8, $0
DATA ctrLanes<>+48(SB)/8, $3
DATA ctrLanes<>+56(SB)/8, $0
GLOBL ctrLanes<>(SB), RODATA|NOPTR, $64

DATA ctrFour<>+0(SB)/8, $4
DATA ctrFour<>+8(SB)/8, $0
GLOBL ctrFour<>(SB), RODATA|NOPTR, $16

// aesRound applies one AES round with key k to Z4-Z7.
#define aesRound(k) \
	VAESENC k, Z4, Z4 \
	VAESENC k, Z5, Z5 \
	VAESENC k, Z6, Z6 \
	VAESENC k, Z7, Z7

// func aes128CTRAVX512(rk *[176]byte, ctr *[16]byte, dst, src []byte)
// GCM's counter mode (the last 32 bits of the counter block count, big-endian, and wrap)
// over the first len(src)&^255 bytes of src, 16 blocks per iteration with VAES; *ctr is
// the first block's counter on entry and the next one on return.
TEXT ·aes128CTRAVX512(SB), NOSPLIT, $0-64
	MOVQ rk+0(FP), DI
	MOVQ ctr+8(FP), CX
	MOVQ dst_base+16(FP), DX
	MOVQ src_base+40(FP), SI
	MOVQ src_len+48(FP), BX
	ANDQ $-256, BX
	JZ   ctrDone

	VBROADCASTI32X4 ghashBswapMask<>(SB), Z31
	VBROADCASTI32X4 (DI), Z20
	VBROADCASTI32X4 16(DI), Z21
	VBROADCASTI32X4 32(DI), Z22
	VBROADCASTI32X4 48(DI), Z23
	VBROADCASTI32X4 64(DI), Z24
	VBROADCASTI32X4 80(DI), Z25
	VBROADCASTI32X4 96(DI), Z26
	VBROADCASTI32X4 112(DI), Z27
	VBROADCASTI32X4 128(DI), Z28
	VBROADCASTI32X4 144(DI), Z29
	VBROADCASTI32X4 160(DI), Z30
	VBROADCASTI32X4 ctrFour<>(SB), Z2

	// Counter blocks byte-reversed, so that the counter is the low dword of each lane:
	// Z8 holds counters c, c+1, c+2, c+3.
	VBROADCASTI32X4 (CX), Z8
	VPSHUFB         Z31, Z8, Z8
	VPADDD          ctrLanes<>(SB), Z8, Z8

ctrLoop:
	VPADDD  Z2, Z8, Z9
	VPADDD  Z2, Z9, Z10
	VPADDD  Z2, Z10, Z11
	VPSHUFB Z31, Z8, Z4
	VPSHUFB Z31, Z9, Z5
	VPSHUFB Z31, Z10, Z6
	VPSHUFB Z31, Z11, Z7
	VPADDD  Z2, Z11, Z8
	VPXORQ  Z20, Z4, Z4
	VPXORQ  Z20, Z5, Z5
	VPXORQ  Z20, Z6, Z6
	VPXORQ  Z20, Z7, Z7
	aesRound(Z21)
	aesRound(Z22)
	aesRound(Z23)
	aesRound(Z24)
	aesRound(Z25)
	aesRound(Z26)
	aesRound(Z27)
	aesRound(Z28)
	aesRound(Z29)
	VAESENCLAST Z30, Z4, Z4
	VAESENCLAST Z30, Z5, Z5
	VAESENCLAST Z30, Z6, Z6
	VAESENCLAST Z30, Z7, Z7
	VPXORQ      (SI), Z4, Z4
	VPXORQ      64(SI), Z5, Z5
	VPXORQ      128(SI), Z6, Z6
	VPXORQ      192(SI), Z7, Z7
	VMOVDQU64   Z4, (DX)
	VMOVDQU64   Z5, 64(DX)
	VMOVDQU64   Z6, 128(DX)
	VMOVDQU64   Z7, 192(DX)
	ADDQ        $256, SI
	ADDQ        $256, DX
	SUBQ        $256, BX
	JNZ         ctrLoop

	VPSHUFB X31, X8, X8
	VMOVDQU X8, (CX)
	VZEROUPPER

ctrDone:
	RET
