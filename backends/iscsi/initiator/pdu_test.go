package initiator

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestCRC32C(t *testing.T) {
	// RFC 3720 §B.4 test vectors; the digest goes on the wire little-endian.
	inc := make([]byte, 32)
	dec := make([]byte, 32)
	for i := range inc {
		inc[i] = byte(i)
		dec[i] = byte(31 - i)
	}
	for _, tc := range []struct {
		name string
		in   []byte
		want uint32
	}{
		{"zeros", make([]byte, 32), 0x8a9136aa},
		{"ones", bytes.Repeat([]byte{0xff}, 32), 0x62a8ab43},
		{"incrementing", inc, 0x46dd794e},
		{"decrementing", dec, 0x113fdb5c},
	} {
		if got := crc32c(tc.in); got != tc.want {
			t.Errorf("%s: crc32c = 0x%08x, want 0x%08x", tc.name, got, tc.want)
		}
	}
}

func TestLUNEncoding(t *testing.T) {
	for _, tc := range []struct {
		lun  uint64
		want [8]byte
	}{
		{0, [8]byte{}},
		{1, [8]byte{0, 1}},
		{255, [8]byte{0, 255}},
		{256, [8]byte{0x41, 0}},
		{16383, [8]byte{0x7f, 0xff}},
	} {
		got := encodeLUN(tc.lun)
		if got != tc.want {
			t.Errorf("encodeLUN(%d) = % x, want % x", tc.lun, got, tc.want)
		}
		back, ok := decodeLUN(got[:])
		if !ok || back != tc.lun {
			t.Errorf("decodeLUN(% x) = %d, %v", got, back, ok)
		}
	}
	if _, ok := decodeLUN([]byte{0xc0, 0, 0, 0, 0, 0, 0, 0}); ok {
		t.Error("extended addressing decoded")
	}
	if _, ok := decodeLUN([]byte{0, 1, 0, 0, 0, 0, 0, 1}); ok {
		t.Error("multi-level LUN decoded")
	}
}

func TestSerialArithmetic(t *testing.T) {
	for _, tc := range []struct {
		a, b uint32
		less bool
	}{
		{1, 2, true},
		{2, 1, false},
		{1, 1, false},
		{0xffffffff, 0, true}, // wraps
		{0, 0xffffffff, false},
		{0x7fffffff, 0x80000000, true},
	} {
		if got := serialLess(tc.a, tc.b); got != tc.less {
			t.Errorf("serialLess(%#x, %#x) = %v", tc.a, tc.b, got)
		}
	}
	if !serialLessEq(5, 5) || serialLessEq(6, 5) {
		t.Error("serialLessEq")
	}
}

// pdu builds one PDU as a target would send it.
func pdu(h header, data []byte, hdrDigest, dataDigest bool) []byte {
	h.setDataLen(len(data))
	out := append([]byte(nil), h[:]...)
	if hdrDigest {
		out = putDigestBytes(out, crc32c(h[:]))
	}
	out = append(out, data...)
	out = append(out, make([]byte, pad4(len(data)))...)
	if dataDigest && len(data) > 0 {
		padded := append(append([]byte(nil), data...), make([]byte, pad4(len(data)))...)
		out = putDigestBytes(out, crc32c(padded))
	}
	return out
}

func putDigestBytes(b []byte, sum uint32) []byte {
	var d [4]byte
	putDigest(d[:], sum)
	return append(b, d[:]...)
}

func TestPDUReader(t *testing.T) {
	var h header
	h[0] = opNopIn
	h[1] = flagFinal
	data := []byte("hello")
	for _, tc := range []struct {
		name    string
		wire    []byte
		hd, dd  bool
		maxData int
		wantErr string
	}{
		{"plain", pdu(h, data, false, false), false, false, 64, ""},
		{"digests", pdu(h, data, true, true), true, true, 64, ""},
		{"too long", pdu(h, data, false, false), false, false, 4, "5-byte data segment"},
		{"truncated header", pdu(h, data, false, false)[:20], false, false, 64, "unexpected EOF"},
		{"truncated data", pdu(h, data, false, false)[:50], false, false, 64, "unexpected EOF"},
		{"bad header digest", corrupt(pdu(h, data, true, false), 3), true, false, 64, "header digest mismatch"},
		{"bad data digest", corrupt(pdu(h, data, false, true), 49), false, true, 64, "data digest mismatch"},
		{"reserved bit", corrupt(pdu(h, data, false, false), 0), false, false, 64, "reserved bit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rd := pduReader{r: bytes.NewReader(tc.wire), hdrDigest: tc.hd, dataDigest: tc.dd, maxData: tc.maxData}
			var got header
			err := rd.readHeader(&got)
			if err == nil {
				buf := make([]byte, got.dataLen())
				err = rd.readData(buf)
				if err == nil && string(buf) != string(data) {
					t.Errorf("data %q", buf)
				}
			}
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("error %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func corrupt(b []byte, i int) []byte {
	b = append([]byte(nil), b...)
	b[i] ^= 0x80
	return b
}

func TestDiscardData(t *testing.T) {
	var h header
	h[0] = opAsync
	data := bytes.Repeat([]byte{7}, 1500)
	rd := pduReader{r: bytes.NewReader(pdu(h, data, false, true)), dataDigest: true, maxData: 4096}
	var got header
	if err := rd.readHeader(&got); err != nil {
		t.Fatal(err)
	}
	if err := rd.discardData(got.dataLen()); err != nil {
		t.Fatal(err)
	}
	if err := rd.readHeader(&got); !errors.Is(err, io.EOF) {
		t.Fatalf("after the PDU: %v, want EOF", err)
	}
}
