package initiator

import (
	"strings"
	"testing"
)

func TestParseSense(t *testing.T) {
	fixed := make([]byte, 18)
	fixed[0], fixed[2], fixed[12], fixed[13] = 0x70, 0x05, 0x21, 0x00
	for _, tc := range []struct {
		name string
		in   []byte
		want Sense
		ok   bool
	}{
		{"fixed", fixed, Sense{Key: 5, ASC: 0x21}, true},
		{"fixed deferred, short", []byte{0x71, 0, 0x06}, Sense{Key: 6}, true},
		{"descriptor", []byte{0x72, 0x06, 0x29, 0x01, 0, 0, 0, 0}, Sense{Key: 6, ASC: 0x29, ASCQ: 1}, true},
		{"empty", nil, Sense{}, false},
		{"unknown format", []byte{0x7f, 1, 2, 3}, Sense{}, false},
		{"descriptor too short", []byte{0x72, 6}, Sense{}, false},
	} {
		got, ok := ParseSense(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: ParseSense = %+v, %v; want %+v, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

func TestSCSIErrorMessage(t *testing.T) {
	cdb := rw16(opRead16, 2048, 8)
	fixed := make([]byte, 18)
	fixed[0], fixed[2], fixed[12] = 0x70, 0x05, 0x21
	e := newSCSIError(describeCDB(cdb[:]), StatusCheckCondition, fixed)
	want := "iscsi: READ(16) LBA 2048, 8 blocks: CHECK CONDITION: ILLEGAL REQUEST, logical block address out of range (sense key 0x5, ASC/ASCQ 0x21/0x00)"
	if e.Error() != want {
		t.Errorf("got  %s\nwant %s", e, want)
	}
	if e.UnitAttention() {
		t.Error("UnitAttention on ILLEGAL REQUEST")
	}
	ua := newSCSIError("TEST UNIT READY", StatusCheckCondition, []byte{0x70, 0, 0x06, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x29, 0})
	if !ua.UnitAttention() || !strings.Contains(ua.Error(), "power on, reset") {
		t.Errorf("%v", ua)
	}
	if busy := newSCSIError("X", StatusBusy, nil); busy.Error() != "iscsi: X: BUSY" {
		t.Errorf("%v", busy)
	}
}

func TestCapacityCheck(t *testing.T) {
	for _, c := range []Capacity{{0, 512}, {1, 0}, {1, 3000}, {1 << 62, 4096}} {
		if c.check() == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	if err := (Capacity{524288, 512}).check(); err != nil {
		t.Error(err)
	}
}
