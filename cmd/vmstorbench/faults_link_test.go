package main

import (
	"strings"
	"testing"
	"time"
)

// The migration link cut during a pre-copy migration (`--link lan,cut=4s`: the link fails 4 s
// after it comes up, with the workload's start; the migration starts 1 s in and, held to
// 20 MB/s, is still under way): the migration fails, the guest runs on on the source and its
// workload ends intact — exit 4, the link named as the cause on stderr and in the document,
// nothing left behind.
func TestIntegrationFaultLinkCut(t *testing.T) {
	fr := migrateWithFault(t, func(*testing.T, string) {}, "--target", "file://"+t.TempDir(),
		"--link", "lan,cut=4s", "--max-bandwidth", "20m")
	if code := exitCode(fr.err); code != exitMigration {
		t.Errorf("exit %d (%v), want %d; stderr:\n%s", code, fr.err, exitMigration, fr.stderr)
	}
	m := fr.doc.Migration
	if m.Outcome != "failed" || !fr.doc.Complete {
		t.Errorf("outcome %q, complete %v (%s), want failed and complete", m.Outcome, fr.doc.Complete, fr.doc.Error)
	}
	if !strings.HasPrefix(m.Failure, "link: ram link lan: went down at ") || !strings.Contains(m.Failure, "cut=4s") {
		t.Errorf("failure %q: want the link named", m.Failure)
	}
	if !strings.Contains(fr.stderr, "the workload went on running on the source: link: ram link lan: went down") {
		t.Errorf("stderr does not name the link:\n%s", fr.stderr)
	}
	if v := fr.doc.Verify; v == nil || v.Mismatches != 0 || v.Checked == 0 {
		t.Errorf("verify %+v: want blocks checked, 0 mismatches", v)
	}
	// From the migration's start: the cut (~3 s later), then the second of workload after,
	// the verify pass and the read-back.
	if fr.toExit > 20*time.Second {
		t.Errorf("%s from the migration's start to the exit", fr.toExit)
	}
}
