package agent

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/vmstorbench/vmstorbench/results"
	"github.com/vmstorbench/vmstorbench/workloads"
)

// The fuzz target plays a hostile guest: whatever its agent sends, the host's reader must
// deliver messages, end with exactly one message carrying the error, never panic, and never
// allocate in proportion to a length field rather than to the bytes that arrived. `go test`
// runs the seeds below and testdata/fuzz/FuzzHostRead; `go test -run '^$' -fuzz
// FuzzHostRead ./vm/agent` searches further.

// guestConn is a net.Conn whose guest sends the fuzz input, then closes.
type guestConn struct {
	net.Conn
	r io.Reader
}

func (c *guestConn) Read(b []byte) (int, error)       { return c.r.Read(b) }
func (c *guestConn) Write(b []byte) (int, error)      { return len(b), nil }
func (c *guestConn) Close() error                     { return nil }
func (c *guestConn) SetDeadline(time.Time) error      { return nil }
func (c *guestConn) SetReadDeadline(time.Time) error  { return nil }
func (c *guestConn) SetWriteDeadline(time.Time) error { return nil }

// hostSeeds is a guest's stream as the agent writes it: hello, phases, completion batches,
// a log line and a result.
func hostSeeds(t testing.TB) [][]byte {
	var b bytes.Buffer
	frame := func(typ byte, v any) {
		var p []byte
		switch v := v.(type) {
		case []byte:
			p = v
		default:
			var err error
			if p, err = json.Marshal(v); err != nil {
				t.Fatal(err)
			}
		}
		if err := WriteFrame(&b, typ, p); err != nil {
			t.Fatal(err)
		}
	}
	frame(FrameHello, Hello{Version: "v1.0.0", Kernel: "6.12.0", StartNS: 1e9, UptimeNS: 2e9, ModulesNS: 3e8, Port: "vmstorbench"})
	frame(FramePhase, Phase{Task: 1, Phase: "running"})
	frame(FrameCompletions, AppendBatch(nil, &Batch{Task: 1, Seq: 0, FlushNS: 5e9, Records: []Record{
		{EndNS: 4e9, LatNS: 1e5, Bytes: 4096, Dir: workloads.Read},
		{EndNS: 4.5e9, LatNS: 2e5, Bytes: 4096, Job: 1, Dir: workloads.Write, Err: true},
	}}))
	frame(FrameLog, []byte("agent: hello from the guest\n"))
	frame(FramePhase, Phase{Task: 1, Phase: "done"})
	run := &results.Run{Schema: results.SchemaVersion, Complete: true, RuntimeNS: 1e9,
		Read: &results.DirStats{IOs: 2, Bytes: 8192, IOPS: 2, Lat: results.Latency{N: 2, Min: 1e5, Max: 2e5, Mean: 1.5e5}}}
	frame(FrameResult, Result{Task: 1, Run: run, Dropped: 3})
	whole := b.Bytes()
	// One stream whole, one cut mid-frame, one with an unknown frame type and bad JSON.
	bad := append([]byte{'X', 1, 0, 0, 0, 'x'}, FramePhase, 3, 0, 0, 0)
	bad = append(bad, "{]}"...)
	return [][]byte{whole, whole[:len(whole)-7], bad}
}

// FuzzHostRead runs the host's reader over input.
func FuzzHostRead(f *testing.F) {
	for _, s := range hostSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		msgs := hostRead(t, input)
		runtime.ReadMemStats(&after)
		// The reader's buffer is 256 KiB; the rest must follow the input's size.
		if grew, limit := after.TotalAlloc-before.TotalAlloc, uint64(1<<20+64*len(input)); grew > limit {
			t.Fatalf("reading %d bytes allocated %d bytes", len(input), grew)
		}
		records := 0
		for i, m := range msgs {
			if (m.Err != nil) != (i == len(msgs)-1) {
				t.Fatalf("message %d of %d: error %v", i, len(msgs), m.Err)
			}
			if m.Batch != nil {
				records += len(m.Batch.Records)
			}
		}
		if records*recordLen > len(input) {
			t.Fatalf("%d records from %d bytes", records, len(input))
		}
		if len(msgs)-1 > len(input)/5 {
			t.Fatalf("%d messages from %d bytes", len(msgs), len(input))
		}
	})
}

// hostRead runs Conn.read over input and returns every message it delivered.
func hostRead(t *testing.T, input []byte) []Message {
	c := &Conn{Name: "fuzz", c: &guestConn{r: bytes.NewReader(input)}, closing: make(chan struct{}), done: make(chan struct{})}
	out := make(chan Message)
	go c.read(out)
	var msgs []Message
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m := <-out:
			msgs = append(msgs, m)
			if m.Err != nil {
				<-c.done
				return msgs
			}
		case <-timeout:
			t.Fatalf("the reader did not end on %d bytes of input", len(input))
		}
	}
}

func TestHostSeedsAreValid(t *testing.T) {
	msgs := hostRead(t, hostSeeds(t)[0])
	if len(msgs) != 7 {
		t.Fatalf("%d messages, want 6 and the end", len(msgs))
	}
	for _, m := range msgs[:6] {
		if m.Type == FrameLog && m.Log != "agent: hello from the guest\n" {
			t.Errorf("bad frame: %s", m.Log)
		}
	}
	if r := msgs[5].Result; r == nil || r.Run == nil || r.Run.Read.IOs != 2 {
		t.Fatalf("result: %+v", msgs[5])
	}
}

// TestReadFrameAllocatesWhatArrives: a frame header announcing the largest frame, followed
// by a few bytes, used to cost a 64 MiB allocation before the first payload byte arrived.
func TestReadFrameAllocatesWhatArrives(t *testing.T) {
	for _, tc := range []struct {
		name    string
		n       uint32
		payload int
	}{
		{"largest frame, 10 bytes sent", maxFrame, 10},
		{"1 MiB frame, 100 KiB sent", 1 << 20, 100 << 10},
	} {
		in := append([]byte{FrameLog}, binary.LittleEndian.AppendUint32(nil, tc.n)...)
		in = append(in, make([]byte, tc.payload)...)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, _, err := ReadFrame(bytes.NewReader(in))
		runtime.ReadMemStats(&after)
		if err == nil {
			t.Errorf("%s: a truncated frame was accepted", tc.name)
		}
		if grew := after.TotalAlloc - before.TotalAlloc; grew > uint64(4*tc.payload+256<<10) {
			t.Errorf("%s: allocated %d bytes", tc.name, grew)
		}
	}
	// A large frame that does arrive whole still reads.
	p := bytes.Repeat([]byte{7}, 3<<20)
	var b bytes.Buffer
	if err := WriteFrame(&b, FrameLog, p); err != nil {
		t.Fatal(err)
	}
	if typ, got, err := ReadFrame(&b); err != nil || typ != FrameLog || !bytes.Equal(got, p) {
		t.Fatalf("3 MiB frame: %q, %d bytes, %v", typ, len(got), err)
	}
}
