package initiator

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
)

// SCSI status codes (SAM-5).
const (
	StatusGood                = 0x00
	StatusCheckCondition      = 0x02
	StatusConditionMet        = 0x04
	StatusBusy                = 0x08
	StatusReservationConflict = 0x18
	StatusTaskSetFull         = 0x28
	StatusACAActive           = 0x30
	StatusTaskAborted         = 0x40
)

// Sense keys (SPC-4).
const (
	SenseNoSense        = 0x0
	SenseRecoveredError = 0x1
	SenseNotReady       = 0x2
	SenseMediumError    = 0x3
	SenseHardwareError  = 0x4
	SenseIllegalRequest = 0x5
	SenseUnitAttention  = 0x6
	SenseDataProtect    = 0x7
	SenseAbortedCommand = 0xb
)

// SCSI operation codes used here.
const (
	opTestUnitReady    = 0x00
	opInquiry          = 0x12
	opReadCapacity10   = 0x25
	opRead16           = 0x88
	opWrite16          = 0x8a
	opSyncCache16      = 0x91
	opServiceActionIn  = 0x9e // READ CAPACITY(16) is service action 0x10
	opReportLUNs       = 0xa0
	saReadCapacity16   = 0x10
	deviceTypeDisk     = 0x00
	qualifierNoDevice  = 0x3
	vpdBlockLimits     = 0xb0
	maxUnitAttentions  = 8
	maxBusyRetries     = 20
	firstBusyBackoff   = time.Millisecond
	maxBusyBackoff     = 200 * time.Millisecond
	inquiryAllocLength = 96
)

func cdbName(op byte) string {
	switch op {
	case opTestUnitReady:
		return "TEST UNIT READY"
	case opInquiry:
		return "INQUIRY"
	case opReadCapacity10:
		return "READ CAPACITY(10)"
	case opRead16:
		return "READ(16)"
	case opWrite16:
		return "WRITE(16)"
	case opSyncCache16:
		return "SYNCHRONIZE CACHE(16)"
	case opServiceActionIn:
		return "READ CAPACITY(16)"
	case opReportLUNs:
		return "REPORT LUNS"
	}
	return fmt.Sprintf("SCSI command 0x%02x", op)
}

// describeCDB names a command for messages, with the LBA and length of reads and writes.
func describeCDB(cdb []byte) string {
	if len(cdb) == 0 {
		return "empty CDB"
	}
	name := cdbName(cdb[0])
	if (cdb[0] == opRead16 || cdb[0] == opWrite16) && len(cdb) >= 14 {
		return fmt.Sprintf("%s LBA %d, %d blocks", name, binary.BigEndian.Uint64(cdb[2:10]), be32(cdb[10:14]))
	}
	return name
}

// Sense is decoded sense data.
type Sense struct {
	Key, ASC, ASCQ byte
}

// ParseSense decodes fixed (0x70/0x71) and descriptor (0x72/0x73) sense data.
func ParseSense(b []byte) (Sense, bool) {
	if len(b) < 1 {
		return Sense{}, false
	}
	switch b[0] & 0x7f {
	case 0x70, 0x71:
		if len(b) < 3 {
			return Sense{}, false
		}
		s := Sense{Key: b[2] & 0x0f}
		if len(b) >= 14 {
			s.ASC, s.ASCQ = b[12], b[13]
		}
		return s, true
	case 0x72, 0x73:
		if len(b) < 4 {
			return Sense{}, false
		}
		return Sense{Key: b[1] & 0x0f, ASC: b[2], ASCQ: b[3]}, true
	}
	return Sense{}, false
}

func (s Sense) String() string {
	d := ascText(s.ASC, s.ASCQ)
	if d != "" {
		d = ", " + d
	}
	return fmt.Sprintf("%s%s (sense key 0x%x, ASC/ASCQ 0x%02x/0x%02x)", senseKeyName(s.Key), d, s.Key, s.ASC, s.ASCQ)
}

func senseKeyName(k byte) string {
	names := [...]string{"NO SENSE", "RECOVERED ERROR", "NOT READY", "MEDIUM ERROR", "HARDWARE ERROR",
		"ILLEGAL REQUEST", "UNIT ATTENTION", "DATA PROTECT", "BLANK CHECK", "VENDOR SPECIFIC",
		"COPY ABORTED", "ABORTED COMMAND", "RESERVED", "VOLUME OVERFLOW", "MISCOMPARE", "COMPLETED"}
	return names[k&0x0f]
}

// ascText describes the additional sense codes a benchmark is likely to meet.
func ascText(asc, ascq byte) string {
	switch uint16(asc)<<8 | uint16(ascq) {
	case 0x0400:
		return "logical unit not ready"
	case 0x0401:
		return "logical unit becoming ready"
	case 0x0c00:
		return "write error"
	case 0x1100:
		return "unrecovered read error"
	case 0x1a00:
		return "parameter list length error"
	case 0x2000:
		return "invalid command operation code"
	case 0x2100:
		return "logical block address out of range"
	case 0x2400:
		return "invalid field in CDB"
	case 0x2500:
		return "logical unit not supported"
	case 0x2600:
		return "invalid field in parameter list"
	case 0x2700:
		return "write protected"
	case 0x2900, 0x2901, 0x2902, 0x2903, 0x2904:
		return "power on, reset, or bus device reset occurred"
	case 0x2a01:
		return "mode parameters changed"
	case 0x2a09:
		return "capacity data has changed"
	case 0x3a00:
		return "medium not present"
	case 0x3f0e:
		return "reported LUNs data has changed"
	case 0x4400:
		return "internal target failure"
	case 0x5507:
		return "insufficient registration resources"
	}
	return ""
}

func statusName(st byte) string {
	switch st {
	case StatusGood:
		return "GOOD"
	case StatusCheckCondition:
		return "CHECK CONDITION"
	case StatusConditionMet:
		return "CONDITION MET"
	case StatusBusy:
		return "BUSY"
	case StatusReservationConflict:
		return "RESERVATION CONFLICT"
	case StatusTaskSetFull:
		return "TASK SET FULL"
	case StatusACAActive:
		return "ACA ACTIVE"
	case StatusTaskAborted:
		return "TASK ABORTED"
	}
	return fmt.Sprintf("status 0x%02x", st)
}

// SCSIError is a command that completed with a status other than GOOD.
type SCSIError struct {
	Cmd      string // the command, e.g. "READ(16) LBA 2048, 8 blocks"
	Status   byte
	Sense    Sense
	HasSense bool
}

func newSCSIError(cmd string, status byte, sense []byte) *SCSIError {
	e := &SCSIError{Cmd: cmd, Status: status}
	e.Sense, e.HasSense = ParseSense(sense)
	return e
}

func (e *SCSIError) Error() string {
	s := fmt.Sprintf("iscsi: %s: %s", e.Cmd, statusName(e.Status))
	if e.HasSense {
		s += ": " + e.Sense.String()
	}
	return s
}

// UnitAttention reports a CHECK CONDITION with sense key UNIT ATTENTION.
func (e *SCSIError) UnitAttention() bool {
	return e.Status == StatusCheckCondition && e.HasSense && e.Sense.Key == SenseUnitAttention
}

// run executes a command, retrying it after UNIT ATTENTION (both tgt and gotgt report one
// after login) and, with backoff, after BUSY and TASK SET FULL.
func (s *Session) run(lun uint64, cdb []byte, buf []byte, write bool) (Result, error) {
	backoff := firstBusyBackoff
	ua, busy := 0, 0
	for {
		res, err := s.Execute(lun, cdb, buf, write)
		if err == nil {
			return res, nil
		}
		var se *SCSIError
		if !errors.As(err, &se) {
			return res, err
		}
		switch {
		case se.UnitAttention() && ua < maxUnitAttentions:
			ua++
			continue
		case (se.Status == StatusBusy || se.Status == StatusTaskSetFull) && busy < maxBusyRetries:
			busy++
			time.Sleep(backoff)
			backoff = min(2*backoff, maxBusyBackoff)
			continue
		}
		return res, err
	}
}

// TestUnitReady sends TEST UNIT READY, which also consumes pending unit attentions.
func (s *Session) TestUnitReady(lun uint64) error {
	var cdb [6]byte
	_, err := s.run(lun, cdb[:], nil, false)
	return err
}

// InquiryData is the part of the standard INQUIRY data we use.
type InquiryData struct {
	Qualifier  byte // 0: connected; 3: no device can be attached to this LUN
	DeviceType byte // 0x00 direct-access block device; 0x0c storage array controller
	Vendor     string
	Product    string
	Revision   string
}

// Present reports whether a logical unit exists at the LUN.
func (d InquiryData) Present() bool { return d.Qualifier != qualifierNoDevice && d.DeviceType != 0x1f }

// IsDisk reports a direct-access block device.
func (d InquiryData) IsDisk() bool { return d.DeviceType == deviceTypeDisk }

// DeviceTypeName names the SCSI peripheral device type.
func (d InquiryData) DeviceTypeName() string {
	switch d.DeviceType {
	case 0x00:
		return "disk (direct-access block device)"
	case 0x01:
		return "tape"
	case 0x05:
		return "CD/DVD"
	case 0x0c:
		return "storage array controller"
	case 0x0d:
		return "enclosure services"
	case 0x1f:
		return "unknown or no device"
	}
	return fmt.Sprintf("device type 0x%02x", d.DeviceType)
}

// Inquiry reads the standard INQUIRY data of lun.
func (s *Session) Inquiry(lun uint64) (InquiryData, error) {
	buf := make([]byte, inquiryAllocLength)
	cdb := [6]byte{opInquiry, 0, 0, 0, inquiryAllocLength, 0}
	res, err := s.run(lun, cdb[:], buf, false)
	if err != nil {
		return InquiryData{}, err
	}
	if res.N < 5 {
		return InquiryData{}, fmt.Errorf("iscsi: INQUIRY returned %d bytes", res.N)
	}
	d := InquiryData{Qualifier: buf[0] >> 5, DeviceType: buf[0] & 0x1f}
	if res.N >= 36 {
		d.Vendor = strings.TrimSpace(string(buf[8:16]))
		d.Product = strings.TrimSpace(string(buf[16:32]))
		d.Revision = strings.TrimSpace(string(buf[32:36]))
	}
	return d, nil
}

// BlockLimits is the part of the Block Limits VPD page (0xB0) we use; zero means no limit.
type BlockLimits struct {
	MaxTransferBlocks     uint32
	OptimalTransferBlocks uint32
}

// BlockLimits reads VPD page 0xB0. Targets without it answer CHECK CONDITION, which is
// returned as a *SCSIError.
func (s *Session) BlockLimits(lun uint64) (BlockLimits, error) {
	buf := make([]byte, 64)
	cdb := [6]byte{opInquiry, 1, vpdBlockLimits, 0, byte(len(buf)), 0}
	res, err := s.run(lun, cdb[:], buf, false)
	if err != nil {
		return BlockLimits{}, err
	}
	if res.N < 16 || buf[1] != vpdBlockLimits {
		return BlockLimits{}, nil
	}
	return BlockLimits{MaxTransferBlocks: be32(buf[8:12]), OptimalTransferBlocks: be32(buf[12:16])}, nil
}

// Capacity is the result of READ CAPACITY.
type Capacity struct {
	Blocks    uint64 // number of logical blocks (last LBA + 1)
	BlockSize uint32 // bytes per logical block
}

// Bytes is the capacity in bytes.
func (c Capacity) Bytes() int64 { return int64(c.Blocks) * int64(c.BlockSize) }

// ReadCapacity sends READ CAPACITY(16), falling back to READ CAPACITY(10) for targets that do
// not know it.
func (s *Session) ReadCapacity(lun uint64) (Capacity, error) {
	buf := make([]byte, 32)
	var cdb [16]byte
	cdb[0], cdb[1] = opServiceActionIn, saReadCapacity16
	binary.BigEndian.PutUint32(cdb[10:14], uint32(len(buf)))
	res, err := s.run(lun, cdb[:], buf, false)
	var se *SCSIError
	if errors.As(err, &se) && se.HasSense && se.Sense.Key == SenseIllegalRequest {
		return s.readCapacity10(lun)
	}
	if err != nil {
		return Capacity{}, err
	}
	if res.N < 12 {
		return Capacity{}, fmt.Errorf("iscsi: READ CAPACITY(16) returned %d bytes", res.N)
	}
	c := Capacity{Blocks: binary.BigEndian.Uint64(buf[0:8]) + 1, BlockSize: be32(buf[8:12])}
	return c, c.check()
}

func (s *Session) readCapacity10(lun uint64) (Capacity, error) {
	buf := make([]byte, 8)
	cdb := [10]byte{opReadCapacity10}
	res, err := s.run(lun, cdb[:], buf, false)
	if err != nil {
		return Capacity{}, err
	}
	if res.N < 8 {
		return Capacity{}, fmt.Errorf("iscsi: READ CAPACITY(10) returned %d bytes", res.N)
	}
	c := Capacity{Blocks: uint64(be32(buf[0:4])) + 1, BlockSize: be32(buf[4:8])}
	return c, c.check()
}

func (c Capacity) check() error {
	if c.BlockSize == 0 || c.BlockSize > 1<<20 || c.BlockSize&(c.BlockSize-1) != 0 {
		return fmt.Errorf("iscsi: READ CAPACITY: implausible block size %d", c.BlockSize)
	}
	if c.Blocks == 0 || c.Blocks > (1<<62)/uint64(c.BlockSize) {
		return fmt.Errorf("iscsi: READ CAPACITY: implausible block count %d", c.Blocks)
	}
	return nil
}

// ReportLUNs lists the target's logical units (REPORT LUNS, sent to LUN 0).
func (s *Session) ReportLUNs() ([]uint64, error) {
	buf := make([]byte, 8+8*256)
	var cdb [12]byte
	cdb[0] = opReportLUNs
	binary.BigEndian.PutUint32(cdb[6:10], uint32(len(buf)))
	res, err := s.run(0, cdb[:], buf, false)
	if err != nil {
		return nil, err
	}
	if res.N < 8 {
		return nil, fmt.Errorf("iscsi: REPORT LUNS returned %d bytes", res.N)
	}
	n := min(int(be32(buf[0:4])), res.N-8) / 8
	luns := make([]uint64, 0, n)
	for i := 0; i < n; i++ {
		if lun, ok := decodeLUN(buf[8+8*i : 16+8*i]); ok {
			luns = append(luns, lun)
		}
	}
	return luns, nil
}

// Read16 reads blocks logical blocks at lba into buf (len(buf) = blocks × block size).
func (s *Session) Read16(lun, lba uint64, blocks uint32, buf []byte) error {
	cdb := rw16(opRead16, lba, blocks)
	res, err := s.run(lun, cdb[:], buf, false)
	if err != nil {
		return err
	}
	if res.N != len(buf) {
		return fmt.Errorf("iscsi: %s: short transfer, %d of %d bytes", describeCDB(cdb[:]), res.N, len(buf))
	}
	return nil
}

// Write16 writes buf (blocks × block size bytes) at lba.
func (s *Session) Write16(lun, lba uint64, blocks uint32, buf []byte) error {
	return s.write16(lun, lba, blocks, buf, false)
}

// Write16FUA is Write16 with FUA (force unit access, SBC-3): the target completes the
// command only once the data is on stable media, as O_SYNC/O_DSYNC writes do.
func (s *Session) Write16FUA(lun, lba uint64, blocks uint32, buf []byte) error {
	return s.write16(lun, lba, blocks, buf, true)
}

// cdbFUA is the FUA bit of byte 1 of WRITE(16).
const cdbFUA = 0x08

func (s *Session) write16(lun, lba uint64, blocks uint32, buf []byte, fua bool) error {
	cdb := rw16(opWrite16, lba, blocks)
	if fua {
		cdb[1] |= cdbFUA
	}
	res, err := s.run(lun, cdb[:], buf, true)
	if err != nil {
		return err
	}
	if res.N != len(buf) {
		return fmt.Errorf("iscsi: %s: short transfer, %d of %d bytes", describeCDB(cdb[:]), res.N, len(buf))
	}
	return nil
}

// SynchronizeCache16 makes every completed write to lun durable.
func (s *Session) SynchronizeCache16(lun uint64) error {
	var cdb [16]byte
	cdb[0] = opSyncCache16
	_, err := s.run(lun, cdb[:], nil, false)
	return err
}

func rw16(op byte, lba uint64, blocks uint32) (cdb [16]byte) {
	cdb[0] = op
	binary.BigEndian.PutUint64(cdb[2:10], lba)
	binary.BigEndian.PutUint32(cdb[10:14], blocks)
	return cdb
}
