package initiator

import (
	"fmt"
	"strings"
)

// CommandError is a command that did not complete because the session failed (or could not
// take it): Err is the session's error.
type CommandError struct {
	Cmd string // e.g. "READ(16) LBA 2048, 8 blocks"
	Err error
}

func (e *CommandError) Error() string {
	return "iscsi: " + e.Cmd + ": " + strings.TrimPrefix(e.Err.Error(), "iscsi: ")
}

func (e *CommandError) Unwrap() error { return e.Err }

// zeros pads data segments to a multiple of 4 bytes.
var zeros [4]byte

// Result is the outcome of a SCSI command that reached the target.
type Result struct {
	// Status is the SCSI status byte.
	Status byte
	// N is the number of bytes transferred (Data-In received, or Data-Out accepted).
	N int
	// Sense is the sense data of a CHECK CONDITION (valid until the next command).
	Sense []byte
}

// Execute runs one SCSI command on lun: cdb (at most 16 bytes), with data read into buf
// (write=false) or written from buf (write=true). A transport failure is returned as an
// error; a SCSI status other than GOOD is returned as a *SCSIError. buf is not retained after
// Execute returns, even on error.
func (s *Session) Execute(lun uint64, cdb []byte, buf []byte, write bool) (Result, error) {
	if len(cdb) == 0 || len(cdb) > 16 {
		return Result{}, fmt.Errorf("iscsi: CDB of %d bytes (1 to 16 supported)", len(cdb))
	}
	t, err := s.acquire(kindCommand, s.cfg.Timeout, cdb)
	if err != nil {
		return Result{}, &CommandError{Cmd: describeCDB(cdb), Err: err}
	}
	// Set under the mutex lookup takes, so the reader that looks the task up when its
	// response or R2T arrives sees them (the network round trip is no Go synchronisation).
	s.mu.Lock()
	t.lun = encodeLUN(lun)
	t.buf = buf
	t.write = write && len(buf) > 0
	s.mu.Unlock()
	if err := s.start(t, cdb); err != nil {
		// The task is registered: the drain fails it too; wait for that so that buf is free.
		for !s.wait(t).final {
		}
		s.release(t)
		return Result{}, &CommandError{Cmd: describeCDB(cdb), Err: err}
	}
	var final event
	for {
		ev := s.wait(t)
		if ev.final {
			final = ev
			break
		}
		if final.err == nil {
			if err := s.sendData(t, ev.ttt, ev.offset, ev.length); err != nil {
				final.err = err // the session is failing: keep waiting for the final event
			}
		}
	}
	if final.err != nil {
		s.release(t)
		return Result{}, &CommandError{Cmd: describeCDB(cdb), Err: final.err}
	}
	res, err := s.result(t)
	s.release(t)
	return res, err
}

// start builds the SCSI Command PDU with immediate data and any unsolicited Data-Out PDUs,
// and sends them.
func (s *Session) start(t *task, cdb []byte) error {
	s.build(t, cdb)
	return s.send(t.hdr[:], true, false, t.segs)
}

// build puts the SCSI Command PDU with immediate data and any unsolicited Data-Out PDUs in
// t.segs (t.hdr first), CmdSN and ExpStatSN left to the sender.
func (s *Session) build(t *task, cdb []byte) {
	p := &s.params
	h := (*header)(t.hdr[:bhsLen])
	h.clear()
	h[0] = opSCSICmd
	h[1] = attrSimple
	h.setLUNBytes(t.lun)
	h.put32(16, t.itt)
	h.put32(20, uint32(len(t.buf)))
	copy(h[32:48], cdb)
	t.segs = append(t.segs[:0], s.hdrSlice(t.hdr[:]))
	final := true
	if t.write {
		h[1] |= flagWrite
		imm := 0
		if p.ImmediateData {
			imm = min(len(t.buf), p.FirstBurstLength, p.MaxXmitDataSegmentLength)
		}
		unsolicited := 0
		if !p.InitialR2T {
			unsolicited = min(len(t.buf), p.FirstBurstLength) - imm
		}
		if imm > 0 {
			h.setDataLen(imm)
			t.segs = s.appendData(t, t.segs, t.buf[:imm])
		}
		if unsolicited > 0 {
			final = false
			t.segs = s.appendDataOut(t, t.segs, reservedTag, uint32(imm), uint32(unsolicited))
		}
	} else if len(t.buf) > 0 {
		h[1] |= flagRead
	}
	if final {
		h[1] |= flagFinal
	}
}

// sendData answers an R2T with Data-Out PDUs.
func (s *Session) sendData(t *task, ttt, offset, length uint32) error {
	t.segs = s.appendDataOut(t, t.segs[:0], ttt, offset, length)
	return s.send(nil, false, false, t.segs)
}

// appendData appends a data segment with its padding and data digest.
func (s *Session) appendData(t *task, segs [][]byte, data []byte) [][]byte {
	segs = append(segs, data)
	padding := pad4(len(data))
	if padding > 0 {
		segs = append(segs, zeros[:padding])
	}
	if s.params.DataDigest {
		sum := crc32c(data)
		if padding > 0 {
			sum = crc32cUpdate(sum, zeros[:padding])
		}
		at := len(t.scratch)
		t.scratch = append(t.scratch, 0, 0, 0, 0)
		putDigest(t.scratch[at:], sum)
		segs = append(segs, t.scratch[at:at+digestLen])
	}
	return segs
}

// appendDataOut appends Data-Out PDUs for buf[offset:offset+length] in segments of at most
// the target's MaxRecvDataSegmentLength, numbered from DataSN 0 (one sequence per R2T, or the
// unsolicited sequence when ttt is reserved).
func (s *Session) appendDataOut(t *task, segs [][]byte, ttt, offset, length uint32) [][]byte {
	mx := uint32(s.params.MaxXmitDataSegmentLength)
	hl := bhsLen
	if s.params.HeaderDigest {
		hl += digestLen
	}
	expStatSN := s.expStatSN.Load()
	var dataSN uint32
	for done := uint32(0); done < length; dataSN++ {
		n := min(mx, length-done)
		at := len(t.scratch)
		t.scratch = append(t.scratch, make([]byte, hl)...)
		h := (*header)(t.scratch[at : at+bhsLen])
		h[0] = opDataOut
		if done+n == length {
			h[1] = flagFinal
		}
		h.setDataLen(int(n))
		h.setLUNBytes(t.lun)
		h.put32(16, t.itt)
		h.put32(20, ttt)
		h.put32(28, expStatSN)
		h.put32(36, dataSN)
		h.put32(40, offset+done)
		if s.params.HeaderDigest {
			putDigest(t.scratch[at+bhsLen:], crc32c(t.scratch[at:at+bhsLen]))
		}
		segs = append(segs, t.scratch[at:at+hl])
		segs = s.appendData(t, segs, t.buf[offset+done:offset+done+n])
		done += n
	}
	return segs
}

// result turns a completed task into a Result or a *SCSIError.
func (s *Session) result(t *task) (Result, error) {
	name := func() string { return describeCDB(t.cdb[:]) } // for errors only
	if t.response != 0 {
		return Result{}, fmt.Errorf("iscsi: %s: target failure (iSCSI response 0x%02x)", name(), t.response)
	}
	n := len(t.buf)
	if t.flags&flagUnderflow != 0 {
		if int64(t.residual) > int64(n) {
			return Result{}, protoErr("%s residual %d larger than the %d bytes expected", name(), t.residual, n)
		}
		n -= int(t.residual)
	}
	res := Result{Status: t.status, Sense: t.sense[:t.senseLen]}
	if t.status != StatusGood {
		return res, newSCSIError(name(), t.status, res.Sense)
	}
	if t.flags&flagOverflow != 0 {
		return res, fmt.Errorf("iscsi: %s: target reports residual overflow of %d bytes", name(), t.residual)
	}
	if !t.write && len(t.buf) > 0 {
		if t.received < n {
			return res, fmt.Errorf("iscsi: %s: target sent %d of %d bytes", name(), t.received, n)
		}
	}
	res.N = n
	return res, nil
}
