package initiator

import (
	"encoding/hex"
	"reflect"
	"strings"
	"testing"
)

func TestText(t *testing.T) {
	kvs := []kv{{"InitiatorName", "iqn.x"}, {"AuthMethod", "None"}, {"Empty", ""}}
	wire := encodeText(nil, kvs)
	if string(wire) != "InitiatorName=iqn.x\x00AuthMethod=None\x00Empty=\x00" {
		t.Fatalf("encodeText: %q", wire)
	}
	got, err := parseText(append(wire, 0, 0)) // extra NULs are padding some targets send
	if err != nil || !reflect.DeepEqual(got, kvs) {
		t.Fatalf("parseText: %v, %v", got, err)
	}
	if got, err := parseText([]byte("A=1")); err != nil || len(got) != 1 {
		t.Errorf("missing final NUL: %v, %v", got, err)
	}
	for _, bad := range []string{"novalue\x00", "=x\x00", strings.Repeat("k", 64) + "=v\x00"} {
		if _, err := parseText([]byte(bad)); err == nil {
			t.Errorf("parseText(%q): no error", bad)
		}
	}
}

func TestDecodeBinary(t *testing.T) {
	for in, want := range map[string]string{
		"0x0102ff": "0102ff",
		"0X102":    "0102", // odd length: leading zero implied
		"0bAQL/":   "0102ff",
	} {
		got, err := decodeBinary(in)
		if err != nil || hex.EncodeToString(got) != want {
			t.Errorf("decodeBinary(%q) = %x, %v; want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "0x", "12", "0xzz", "0b!!"} {
		if _, err := decodeBinary(bad); err == nil {
			t.Errorf("decodeBinary(%q): no error", bad)
		}
	}
}

func TestCHAPMD5(t *testing.T) {
	// MD5(0x01 || "secret" || 0x02 0x03), from printf '\x01secret\x02\x03' | md5sum.
	got := hex.EncodeToString(chapMD5(1, []byte("secret"), []byte{2, 3}))
	if got != "f506c24f35d1c70e450edb8fdf933478" {
		t.Fatalf("chapMD5 = %s", got)
	}
}

func TestNegotiationResult(t *testing.T) {
	for _, tc := range []struct {
		kind          keyKind
		ours, theirs  string
		want, wantErr string
	}{
		{kindAnd, "Yes", "No", "No", ""},
		{kindAnd, "Yes", "Yes", "Yes", ""},
		{kindOr, "No", "Yes", "Yes", ""},
		{kindOr, "No", "No", "No", ""},
		{kindMin, "262144", "65536", "65536", ""},
		{kindMin, "8192", "65536", "8192", ""},
		{kindMax, "0", "2", "2", ""},
		{kindAnd, "Yes", "maybe", "", "Yes or No"},
		{kindMin, "1", "x", "", "number"},
	} {
		got, err := result(tc.kind, tc.ours, tc.theirs)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("result(%v,%s,%s): error %v, want %q", tc.kind, tc.ours, tc.theirs, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("result(%v,%s,%s) = %q, %v; want %q", tc.kind, tc.ours, tc.theirs, got, err, tc.want)
		}
	}
}

// TestApply feeds the answers tgt gives (it declares no MaxRecvDataSegmentLength) and checks
// the parameters that result.
func TestApply(t *testing.T) {
	l := &loginConn{cfg: &Config{HeaderDigest: true}, params: defaultParams()}
	offers := l.offers()
	got := []kv{
		{"HeaderDigest", "CRC32C"}, {"DataDigest", "None"}, {"MaxConnections", "1"},
		{"InitialR2T", "Yes"}, {"ImmediateData", "Yes"}, {"MaxBurstLength", "262144"},
		{"FirstBurstLength", "65536"}, {"DefaultTime2Wait", "2"}, {"DefaultTime2Retain", "0"},
		{"MaxOutstandingR2T", "1"}, {"DataPDUInOrder", "Yes"}, {"DataSequenceInOrder", "Yes"},
		{"ErrorRecoveryLevel", "0"}, {"TargetAlias", "disk"},
	}
	if answers, err := l.negotiate(offers, got); err != nil || len(answers) != 0 {
		t.Fatalf("negotiate: %v, %v", answers, err)
	}
	if err := l.apply(offers, got); err != nil {
		t.Fatal(err)
	}
	p := l.params
	want := Params{
		HeaderDigest: true, MaxRecvDataSegmentLength: ourMaxRecvDataSegmentLength,
		MaxXmitDataSegmentLength: 8192, MaxBurstLength: 262144, FirstBurstLength: 65536,
		InitialR2T: true, ImmediateData: true, MaxOutstandingR2T: 1, DataPDUInOrder: true,
		DataSequenceInOrder: true, TargetAlias: "disk",
	}
	if p != want {
		t.Errorf("params\n got %+v\nwant %+v", p, want)
	}

	// A target offering keys of its own gets answers; a refused digest is an error.
	answers, err := l.negotiate(offers, []kv{{"IFMarker", "Yes"}, {"X-Vendor", "1"}, {"MaxRecvDataSegmentLength", "4096"}})
	if err != nil || !reflect.DeepEqual(answers, []kv{{"IFMarker", "No"}, {"X-Vendor", "NotUnderstood"}}) {
		t.Errorf("answers %v, %v", answers, err)
	}
	if err := l.apply(offers, []kv{{"HeaderDigest", "None"}}); err == nil || !strings.Contains(err.Error(), "HeaderDigest") {
		t.Errorf("refused digest: %v", err)
	}
	if err := l.apply(offers, []kv{{"HeaderDigest", "CRC32C"}, {"ErrorRecoveryLevel", "2"}}); err != nil {
		t.Errorf("ERL min(0,2) must be 0: %v", err)
	}
}

func TestLoginStatusText(t *testing.T) {
	e := &LoginError{Class: 2, Detail: 3, Stage: "security negotiation", msg: loginStatusText(2, 3)}
	if !e.NotFound() || e.AuthFailed() || !strings.Contains(e.Error(), "target name not found (status 0x0203)") {
		t.Errorf("%v", e)
	}
	r := &LoginError{Class: 1, Detail: 1, TargetAddress: "10.0.0.1:3260,1", msg: loginStatusText(1, 1)}
	if !strings.Contains(r.Error(), "redirects to 10.0.0.1:3260,1") {
		t.Errorf("%v", r)
	}
}
