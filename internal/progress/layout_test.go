package progress

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestLayout(t *testing.T) {
	var tty bytes.Buffer
	l := &Layout{w: &tty, tty: true, start: time.Now(), lastPct: -1}
	for done := int64(0); done <= 1<<30; done += 1 << 20 {
		l.Update(done, 1<<30)
	}
	l.Finish()
	out := tty.String()
	for _, want := range []string{"laying out 1.0 GiB: 0%", "laying out 1.0 GiB: 42%", "laying out 1.0 GiB: 100%"} {
		if !strings.Contains(out, want) {
			t.Errorf("terminal output lacks %q", want)
		}
	}
	if n := strings.Count(out, "\r"); n > 105 {
		t.Errorf("%d redraws for 1024 updates: not throttled", n)
	}
	if !strings.HasSuffix(out, "\r\033[K") {
		t.Error("line not cleared at the end")
	}

	var log bytes.Buffer
	l = &Layout{w: &log, start: time.Now()}
	l.Update(0, 8<<20)
	l.Update(8<<20, 8<<20)
	l.Finish()
	if got := log.String(); !strings.HasPrefix(got, "laid out 8.0 MiB in ") || strings.Count(got, "\n") != 1 {
		t.Errorf("log output %q", got)
	}
	// Nothing laid out: nothing said.
	var none bytes.Buffer
	(&Layout{w: &none}).Finish()
	if none.Len() != 0 {
		t.Errorf("output without layout: %q", none.String())
	}
}
