package agent

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	_ "github.com/vmstorbench/vmstorbench/backends/file"
	"github.com/vmstorbench/vmstorbench/bench"
	"github.com/vmstorbench/vmstorbench/workloads"
)

func TestBatchRoundTrip(t *testing.T) {
	b := &Batch{Task: 3, Seq: 7, FlushNS: 123456789, Dropped: 2, Records: []Record{
		{EndNS: 1, LatNS: 2, Bytes: 4096, Job: 0, Dir: workloads.Read},
		{EndNS: 1 << 40, LatNS: 1 << 33, Bytes: 1 << 20, Job: 65535, Dir: workloads.Write, Err: true},
	}}
	got, err := DecodeBatch(AppendBatch(nil, b))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, b) {
		t.Fatalf("got %+v, want %+v", got, b)
	}
	empty, err := DecodeBatch(AppendBatch(nil, &Batch{Task: -1}))
	if err != nil || empty.Task != -1 || len(empty.Records) != 0 {
		t.Fatalf("empty batch: %+v %v", empty, err)
	}
}

func TestDecodeBatchRejectsBadInput(t *testing.T) {
	good := AppendBatch(nil, &Batch{Records: []Record{{EndNS: 5}}})
	for name, p := range map[string][]byte{
		"short header":   good[:10],
		"short records":  good[:len(good)-1],
		"extra bytes":    append(append([]byte{}, good...), 0),
		"count too high": func() []byte { b := append([]byte{}, good...); b[16] = 9; return b }(),
	} {
		if _, err := DecodeBatch(p); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestFrames(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteFrame(&buf, FrameLog, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := WriteFrame(&buf, FrameQuit, nil); err != nil {
		t.Fatal(err)
	}
	typ, p, err := ReadFrame(&buf)
	if err != nil || typ != FrameLog || string(p) != "hello" {
		t.Fatalf("%q %q %v", typ, p, err)
	}
	typ, p, err = ReadFrame(&buf)
	if err != nil || typ != FrameQuit || len(p) != 0 {
		t.Fatalf("%q %q %v", typ, p, err)
	}
	// A corrupt length must not allocate gigabytes.
	if _, _, err := ReadFrame(bytes.NewReader([]byte{'C', 0xff, 0xff, 0xff, 0xff})); err == nil {
		t.Fatal("huge frame accepted")
	}
	if _, _, err := ReadFrame(bytes.NewReader([]byte{'C', 10, 0, 0, 0, 1, 2})); err == nil {
		t.Fatal("truncated frame accepted")
	}
}

// TestAgentOverSocket runs the agent's serving loop natively on one end of a unix socket and
// the host's Conn on the other: a workload on a file is streamed back record by record, a
// stop ends it gracefully (a complete run, with the verify pass), and quit ends the agent.
func TestAgentOverSocket(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "a.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	agentErr := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			agentErr <- err
			return
		}
		defer c.Close()
		agentErr <- serveOn(ctx, c, time.Now(), 5*time.Millisecond, Hello{Version: "test", Port: "p"})
	}()
	msgs := make(chan Message, 1024)
	conn, err := Dial(ctx, "test", sock, msgs)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	next := func() Message {
		t.Helper()
		select {
		case m := <-msgs:
			if m.Err != nil {
				t.Fatalf("connection ended: %v", m.Err)
			}
			return m
		case <-ctx.Done():
			t.Fatal("timed out")
		}
		return Message{}
	}
	if m := next(); m.Hello == nil || m.Hello.Version != "test" {
		t.Fatalf("first message %+v", m)
	}
	img := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(img, make([]byte, 4<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	w := workloads.Workload{RW: workloads.RandWrite, BS: [2]workloads.BlockSize{workloads.Fixed(4096), workloads.Fixed(4096)},
		IODepth: 2, TimeBased: true, Runtime: time.Minute, Verify: "crc32c"}
	if err := conn.SendTask(Task{ID: 1, Target: "file://" + img, Workload: w, Interval: time.Second, Stream: true}); err != nil {
		t.Fatal(err)
	}
	var records int
	var lastSeq uint32
	var result *Result
	stopped := false
	for result == nil {
		m := next()
		switch {
		case m.Batch != nil:
			if records > 0 && m.Batch.Seq != lastSeq+1 {
				t.Fatalf("batch sequence jumped from %d to %d", lastSeq, m.Batch.Seq)
			}
			lastSeq = m.Batch.Seq
			for _, r := range m.Batch.Records {
				if r.Dir != workloads.Write || r.Bytes != 4096 || r.EndNS > m.Batch.FlushNS || r.Err {
					t.Fatalf("bad record %+v (flush %d)", r, m.Batch.FlushNS)
				}
			}
			records += len(m.Batch.Records)
			if records > 200 && !stopped {
				if err := conn.StopTask(1); err != nil {
					t.Fatal(err)
				}
				stopped = true
			}
		case m.Result != nil:
			result = m.Result
		}
	}
	if !result.Stopped || result.Run == nil || result.Run.Write == nil {
		t.Fatalf("result %+v", result)
	}
	// A stop is a graceful end: the run is complete and the engine's verify pass ran.
	if r := result.Run; !r.Complete || r.Verify == nil || r.Verify.Checked == 0 || r.Verify.Mismatches != 0 {
		t.Fatalf("stopped run: complete %v (%s), verify %+v", r.Complete, r.Error, r.Verify)
	}
	if got := result.Run.Write.IOs; got != int64(records) {
		t.Errorf("engine counted %d writes, %d were streamed", got, records)
	}
	if err := conn.Quit(); err != nil {
		t.Fatal(err)
	}
	if err := <-agentErr; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("agent: %v", err)
	}
}

// BenchmarkObserve is the agent's cost per completion on the I/O path: the guest pays it
// for every I/O it streams.
func BenchmarkObserve(b *testing.B) {
	a := &guestAgent{port: discard{}, t0: time.Now(), flushEvery: 10 * time.Millisecond}
	s := newStreamer(a, 1, 0)
	go s.run()
	defer s.close()
	c := bench.Completion{Bytes: 4096, Start: time.Millisecond, End: 2 * time.Millisecond}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.Observe(c)
		}
	})
}

type discard struct{}

func (discard) Read(p []byte) (int, error)  { select {} }
func (discard) Write(p []byte) (int, error) { return len(p), nil }
