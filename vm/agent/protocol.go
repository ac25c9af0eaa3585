// Package agent is the in-guest agent and its host side. The agent runs inside the guest
// (`vmstorbench agent`, started by the guest's /init), receives tasks (a workload against the
// guest's disk) from the host over a virtio-serial port, runs them with the bench engine and
// streams every completion back in small batches. The host timestamps each batch as it
// arrives: the guest's own clock stops or stretches while it is paused for migration, so
// only host time shows how long the guest's I/O really stalled.
//
// Wire format, both directions: frames of [type byte][length uint32 LE][payload]. Payloads
// are JSON except completion batches, which are binary to keep the guest's cost per I/O low
// (TCG runs the agent's code slowly too).
package agent

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/vmstorbench/vmstorbench/results"
	"github.com/vmstorbench/vmstorbench/workloads"
)

// Frame types.
const (
	// Guest to host.
	FrameHello       byte = 'H' // JSON Hello
	FrameCompletions byte = 'C' // binary batch
	FramePhase       byte = 'P' // JSON Phase
	FrameResult      byte = 'R' // JSON Result
	FrameLog         byte = 'L' // text
	// Host to guest.
	FrameTask byte = 'T' // JSON Task
	FrameStop byte = 'S' // JSON StopTask
	FrameQuit byte = 'Q' // empty: power off
)

// maxFrame bounds a frame so a corrupt length cannot make either side allocate gigabytes.
const maxFrame = 64 << 20

// Hello is the agent's first frame.
type Hello struct {
	Version string `json:"version"`
	Kernel  string `json:"kernel"`
	// StartNS is the guest's uptime when the agent's own code started (the kernel's boot,
	// the Go runtime's start and package initialisation before it), UptimeNS when the agent
	// was ready: modules loaded, port open. Both on the guest clock, which lags the real
	// time: it counts timer ticks until the kernel switches to the TSC, midway through its
	// boot, and under TCG ticks get lost.
	StartNS  int64 `json:"start_ns"`
	UptimeNS int64 `json:"uptime_ns"`
	// ModulesNS is how long loading the kernel modules took.
	ModulesNS int64  `json:"modules_ns"`
	Port      string `json:"port"`
}

// Task is a workload for the agent to run.
type Task struct {
	ID       int                `json:"id"`
	Target   string             `json:"target"`
	Workload workloads.Workload `json:"workload"`
	Interval time.Duration      `json:"interval_ns"`
	// Stream asks for every completion to be streamed back, in batches sent every
	// FlushEvery (0: the agent's default, 10 ms).
	Stream     bool          `json:"stream"`
	FlushEvery time.Duration `json:"flush_every_ns,omitempty"`
	// StallTimeout and Grace are the engine's (0: its defaults, 60 s and 10 s). They run on
	// the guest's clock, which under TCG on a loaded host can run many times faster than the
	// host's (measured: 6m26s of guest uptime in 11.8 s): a host that watches the guest's disk
	// on its own clock gives long ones, so that only it decides that I/O has stopped.
	StallTimeout time.Duration `json:"stall_timeout_ns,omitempty"`
	Grace        time.Duration `json:"grace_ns,omitempty"`
}

// StopTask ends a running task early and gracefully: the engine stops issuing I/O, runs its
// verify pass, and the task's Result carries a complete run.
type StopTask struct {
	ID int `json:"id"`
}

// Phase reports what the agent is doing.
type Phase struct {
	Task  int    `json:"task"`
	Phase string `json:"phase"` // "running", "ramp", "verify", "done"
}

// Result is a finished task.
type Result struct {
	Task  int          `json:"task"`
	Run   *results.Run `json:"run,omitempty"`
	Error string       `json:"error,omitempty"`
	// Stopped is true when the host ended the task (StopTask) before its runtime; the run
	// is still complete, with its verify pass.
	Stopped bool `json:"stopped,omitempty"`
	// Dropped counts completions that were not streamed because the host did not read fast
	// enough (the batch buffer was full).
	Dropped int64 `json:"dropped,omitempty"`
}

// Record is one completion as streamed. EndNS is on the agent's clock (since the agent
// started); LatNS is the I/O's latency as the guest measured it.
type Record struct {
	EndNS int64
	LatNS int64
	Bytes uint32
	Job   uint16
	Dir   workloads.Direction
	Err   bool
}

// recordLen is a Record's size on the wire.
const recordLen = 24

// batchHeaderLen: task int32, seq uint32, flush time int64, count uint32, dropped uint32.
const batchHeaderLen = 24

// Batch is one completions frame.
type Batch struct {
	Task int
	Seq  uint32
	// FlushNS is the agent's clock when the batch was sent; the host anchors the records'
	// times to its own arrival time with it.
	FlushNS int64
	// Dropped is the running count of completions dropped so far.
	Dropped uint32
	Records []Record
}

// AppendBatch encodes b onto buf (the payload only).
func AppendBatch(buf []byte, b *Batch) []byte {
	buf = binary.LittleEndian.AppendUint32(buf, uint32(int32(b.Task)))
	buf = binary.LittleEndian.AppendUint32(buf, b.Seq)
	buf = binary.LittleEndian.AppendUint64(buf, uint64(b.FlushNS))
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(b.Records)))
	buf = binary.LittleEndian.AppendUint32(buf, b.Dropped)
	for _, r := range b.Records {
		buf = binary.LittleEndian.AppendUint64(buf, uint64(r.EndNS))
		buf = binary.LittleEndian.AppendUint64(buf, uint64(r.LatNS))
		buf = binary.LittleEndian.AppendUint32(buf, r.Bytes)
		buf = binary.LittleEndian.AppendUint16(buf, r.Job)
		var flags byte
		if r.Dir == workloads.Write {
			flags |= 1
		}
		if r.Err {
			flags |= 2
		}
		buf = append(buf, flags, 0)
	}
	return buf
}

// DecodeBatch decodes a completions payload.
func DecodeBatch(p []byte) (*Batch, error) {
	if len(p) < batchHeaderLen {
		return nil, errors.New("agent: short completions frame")
	}
	b := &Batch{
		Task:    int(int32(binary.LittleEndian.Uint32(p[0:]))),
		Seq:     binary.LittleEndian.Uint32(p[4:]),
		FlushNS: int64(binary.LittleEndian.Uint64(p[8:])),
		Dropped: binary.LittleEndian.Uint32(p[20:]),
	}
	n := int(binary.LittleEndian.Uint32(p[16:]))
	p = p[batchHeaderLen:]
	if len(p) != n*recordLen {
		return nil, fmt.Errorf("agent: completions frame holds %d bytes for %d records", len(p), n)
	}
	b.Records = make([]Record, n)
	for i := range b.Records {
		q := p[i*recordLen:]
		r := &b.Records[i]
		r.EndNS = int64(binary.LittleEndian.Uint64(q[0:]))
		r.LatNS = int64(binary.LittleEndian.Uint64(q[8:]))
		r.Bytes = binary.LittleEndian.Uint32(q[16:])
		r.Job = binary.LittleEndian.Uint16(q[20:])
		if q[22]&1 != 0 {
			r.Dir = workloads.Write
		}
		r.Err = q[22]&2 != 0
	}
	return b, nil
}

// WriteFrame writes one frame. It is not safe for concurrent use: callers serialise.
func WriteFrame(w io.Writer, typ byte, payload []byte) error {
	if len(payload) > maxFrame {
		return fmt.Errorf("agent: frame of %d bytes is too large", len(payload))
	}
	hdr := [5]byte{typ}
	binary.LittleEndian.PutUint32(hdr[1:], uint32(len(payload)))
	// One write per frame: the virtio-serial port and the socket keep frames whole.
	buf := make([]byte, 0, 5+len(payload))
	buf = append(append(buf, hdr[:]...), payload...)
	_, err := w.Write(buf)
	return err
}

// ReadFrame reads one frame.
func ReadFrame(r io.Reader) (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.LittleEndian.Uint32(hdr[1:])
	if n > maxFrame {
		return 0, nil, fmt.Errorf("agent: frame type %q of %d bytes is too large (corrupt stream?)", hdr[0], n)
	}
	p, err := readPayload(r, int(n))
	if err != nil {
		return 0, nil, fmt.Errorf("agent: truncated frame: %w", err)
	}
	return hdr[0], p, nil
}

// frameChunk is the most ReadFrame allocates before the bytes have arrived.
const frameChunk = 64 << 10

// readPayload reads n bytes. A frame larger than frameChunk is read into a buffer that
// grows with what actually arrives: a hostile or corrupt length followed by nothing would
// otherwise cost maxFrame (64 MiB) per frame header of 5 bytes.
func readPayload(r io.Reader, n int) ([]byte, error) {
	if n <= frameChunk {
		p := make([]byte, n)
		_, err := io.ReadFull(r, p)
		return p, err
	}
	var b bytes.Buffer
	b.Grow(frameChunk)
	if _, err := io.CopyN(&b, r, int64(n)); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return b.Bytes(), nil
}
