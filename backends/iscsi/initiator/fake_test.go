package initiator

import (
	"context"
	"encoding/binary"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeTarget speaks just enough iSCSI on one end of a net.Pipe to drive the session through
// paths the real targets of the integration tests do not take (a tiny command window, several
// R2Ts outstanding per write, unsolicited Data-Out, Reject, silence). It is a test peer for
// protocol corner cases, not a substitute for tgt and gotgt.
type fakeTarget struct {
	t    testing.TB
	conn net.Conn
	rd   pduReader
	wmu  sync.Mutex

	// What the fake negotiates.
	window        uint32 // MaxCmdSN = ExpCmdSN + window - 1
	maxBurst      int
	firstBurst    int
	initialR2T    bool
	immediateData bool
	maxR2T        int
	maxRecv       int // declared: limit of the initiator's data segments
	dataInChunk   int

	disk     []byte
	snMu     sync.Mutex
	expCmdSN uint32
	statSN   uint32
	nextTTT  uint32
	writes   map[uint32]*fakeWrite

	// hook, if set, may answer a SCSI command itself (returns true) before the default.
	hook   func(f *fakeTarget, h *header, cdb []byte) bool
	silent atomic.Bool
	// smallBuffers shrinks the TCP socket buffers of dialTCP.
	smallBuffers bool
	nopOuts      chan [2]uint32 // ITT, TTT of every NOP-Out
	commands     atomic.Int32
}

type fakeWrite struct {
	itt, lba    uint32
	buf         []byte
	received    int
	nextOffset  int
	outstanding int
	unsolicited bool
}

func newFakeTarget(t testing.TB) *fakeTarget {
	return &fakeTarget{
		t: t, window: 32, maxBurst: 16384, firstBurst: 8192, initialR2T: false, immediateData: true,
		maxR2T: 2, maxRecv: 4096, dataInChunk: 4096,
		disk: make([]byte, 1<<20), writes: map[uint32]*fakeWrite{}, nopOuts: make(chan [2]uint32, 64),
		expCmdSN: 1, nextTTT: 100,
	}
}

// dial starts the fake on a pipe and logs a session in to it.
func (f *fakeTarget) dial(cfg Config) (*Session, error) {
	client, server := net.Pipe()
	return f.start(cfg, client, server)
}

// dialTCP is dial over a loopback TCP connection, so that the session uses its blocking-socket
// transport and real socket buffers.
func (f *fakeTarget) dialTCP(cfg Config) (*Session, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer l.Close()
	client, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		return nil, err
	}
	server, err := l.Accept()
	if err != nil {
		client.Close()
		return nil, err
	}
	if f.smallBuffers {
		// Small socket buffers (without autotuning) make 1 MiB transfers fill them.
		_ = client.(*net.TCPConn).SetWriteBuffer(128 << 10)
		_ = client.(*net.TCPConn).SetReadBuffer(128 << 10)
		_ = server.(*net.TCPConn).SetWriteBuffer(128 << 10)
		_ = server.(*net.TCPConn).SetReadBuffer(128 << 10)
	}
	return f.start(cfg, client, server)
}

func (f *fakeTarget) start(cfg Config, client, server net.Conn) (*Session, error) {
	f.conn = server
	f.rd = pduReader{r: server, maxData: 1 << 20}
	go f.serve()
	f.t.Cleanup(func() { server.Close() })
	cfg.Addr, cfg.TargetName, cfg.InitiatorName = "fake", "iqn.test:fake", "iqn.test:init"
	cfg.Dial = func(context.Context, string) (net.Conn, error) { return client, nil }
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return Dial(ctx, cfg)
}

func (f *fakeTarget) send(h *header, data []byte) {
	f.wmu.Lock()
	defer f.wmu.Unlock()
	h.setDataLen(len(data))
	out := append(append([]byte(nil), h[:]...), data...)
	out = append(out, make([]byte, pad4(len(data)))...)
	_, _ = f.conn.Write(out)
}

// window fields and StatSN of a response; status says whether it consumes a StatSN.
func (f *fakeTarget) stamp(h *header, status bool) {
	f.snMu.Lock()
	defer f.snMu.Unlock()
	h.put32(24, f.statSN)
	if status {
		f.statSN++
	}
	h.put32(28, f.expCmdSN)
	h.put32(32, f.expCmdSN+f.window-1)
}

func (f *fakeTarget) serve() {
	for {
		var h header
		if err := f.rd.readHeader(&h); err != nil {
			return
		}
		data := make([]byte, h.dataLen())
		if err := f.rd.readData(data); err != nil {
			return
		}
		switch h.opcode() {
		case opLoginReq:
			f.login(&h, data)
		case opSCSICmd:
			if h[0]&flagImmediate == 0 {
				f.snMu.Lock()
				f.expCmdSN = h.u32(24) + 1
				f.snMu.Unlock()
			}
			f.commands.Add(1)
			if !f.silent.Load() {
				f.command(&h, data)
			}
		case opDataOut:
			f.dataOut(&h, data)
		case opNopOut:
			f.nopOuts <- [2]uint32{h.itt(), h.ttt()}
			if h.itt() != reservedTag && !f.silent.Load() {
				var r header
				r[0], r[1] = opNopIn, flagFinal
				r.put32(16, h.itt())
				r.put32(20, reservedTag)
				f.stamp(&r, true)
				f.send(&r, nil)
			}
		case opLogoutReq:
			var r header
			r[0], r[1] = opLogoutRsp, flagFinal
			r.put32(16, h.itt())
			f.stamp(&r, true)
			f.send(&r, nil)
			f.conn.Close()
			return
		}
	}
}

func (f *fakeTarget) login(h *header, data []byte) {
	kvs, _ := parseText(data)
	var ans []kv
	for _, p := range kvs {
		v := p.value
		switch p.key {
		case "InitiatorName", "TargetName", "SessionType":
			continue
		case "InitialR2T":
			v = yesNo(f.initialR2T || v == "Yes")
		case "ImmediateData":
			v = yesNo(f.immediateData && v == "Yes")
		case "MaxBurstLength":
			v = strconv.Itoa(f.maxBurst)
		case "FirstBurstLength":
			v = strconv.Itoa(f.firstBurst)
		case "MaxOutstandingR2T":
			v = strconv.Itoa(f.maxR2T)
		case "MaxRecvDataSegmentLength":
			continue
		}
		ans = append(ans, kv{p.key, v})
	}
	csg, nsg := (h[1]>>2)&3, h[1]&3
	if csg == 1 {
		ans = append(ans, kv{"MaxRecvDataSegmentLength", strconv.Itoa(f.maxRecv)})
	}
	var r header
	r[0] = opLoginRsp
	r[1] = h[1] & (flagTransit | 0x0f)
	_ = nsg
	copy(r[8:14], h[8:14])
	r[14], r[15] = 0, 1 // TSIH
	r.put32(16, h.itt())
	f.stamp(&r, true)
	f.send(&r, encodeText(nil, ans))
}

func yesNo(b bool) string {
	if b {
		return "Yes"
	}
	return "No"
}

func (f *fakeTarget) respond(itt uint32, status byte, sense []byte) {
	var r header
	r[0], r[1], r[3] = opSCSIResp, flagFinal, status
	r.put32(16, itt)
	f.stamp(&r, true)
	var data []byte
	if len(sense) > 0 {
		data = append([]byte{byte(len(sense) >> 8), byte(len(sense))}, sense...)
	}
	f.send(&r, data)
}

func (f *fakeTarget) command(h *header, imm []byte) {
	cdb := h[32:48]
	if f.hook != nil && f.hook(f, h, cdb) {
		return
	}
	itt := h.itt()
	switch cdb[0] {
	case opRead16:
		lba, n := binary.BigEndian.Uint64(cdb[2:10]), int(be32(cdb[10:14]))*512
		src := f.disk[lba*512 : int(lba*512)+n]
		for off := 0; off < n; off += f.dataInChunk {
			k := min(f.dataInChunk, n-off)
			var r header
			r[0] = opDataIn
			last := off+k == n
			r.put32(16, itt)
			r.put32(20, reservedTag)
			r.put32(40, uint32(off))
			if last {
				r[1] = flagFinal | flagStatus
				f.stamp(&r, true)
			} else {
				f.stamp(&r, false)
			}
			f.send(&r, src[off:off+k])
		}
	case opWrite16:
		lba, n := binary.BigEndian.Uint64(cdb[2:10]), int(be32(cdb[10:14]))*512
		w := &fakeWrite{itt: itt, lba: uint32(lba), buf: f.disk[lba*512 : int(lba*512)+n]}
		w.received = copy(w.buf, imm)
		w.nextOffset = len(imm)
		f.writes[itt] = w
		if h[1]&flagFinal == 0 {
			w.unsolicited = true // Data-Out with TTT 0xffffffff follows
			w.nextOffset = min(n, f.firstBurst)
			return
		}
		f.progress(w)
	default:
		f.respond(itt, StatusGood, nil)
	}
}

func (f *fakeTarget) dataOut(h *header, data []byte) {
	w := f.writes[h.itt()]
	if w == nil {
		f.t.Errorf("fake: Data-Out for unknown ITT %#x", h.itt())
		return
	}
	off := int(h.u32(40))
	w.received += copy(w.buf[off:], data)
	if h[1]&flagFinal != 0 {
		if h.ttt() == reservedTag {
			w.unsolicited = false
		} else {
			w.outstanding--
		}
		f.progress(w)
	}
}

// progress sends R2Ts up to MaxOutstandingR2T, or the response once all data is in.
func (f *fakeTarget) progress(w *fakeWrite) {
	if w.received == len(w.buf) {
		delete(f.writes, w.itt)
		f.respond(w.itt, StatusGood, nil)
		return
	}
	for w.outstanding < f.maxR2T && w.nextOffset < len(w.buf) {
		n := min(f.maxBurst, len(w.buf)-w.nextOffset)
		var r header
		r[0], r[1] = opR2T, flagFinal
		r.put32(16, w.itt)
		r.put32(20, f.nextTTT)
		f.nextTTT++
		r.put32(40, uint32(w.nextOffset))
		r.put32(44, uint32(n))
		f.stamp(&r, false)
		f.send(&r, nil)
		w.nextOffset += n
		w.outstanding++
	}
}
