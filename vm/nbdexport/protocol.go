package nbdexport

// The NBD protocol as this server speaks it (github.com/NetworkBlockDevice/nbd, doc/proto.md):
// fixed newstyle negotiation, simple replies, READ, WRITE (with FUA), FLUSH and DISC.

// Handshake.
const (
	magicNBD    = 0x4e42444d41474943 // "NBDMAGIC"
	magicOption = 0x49484156454F5054 // "IHAVEOPT"
	magicReply  = 0x3e889045565a9    // option replies

	flagFixedNewstyle = 1 << 0
	flagNoZeroes      = 1 << 1
)

// Options the client may send.
const (
	optExportName = 1
	optAbort      = 2
	optList       = 3
	optInfo       = 6
	optGo         = 7
)

// Option reply types.
const (
	repAck         = 1
	repServer      = 2
	repInfo        = 3
	repErrUnsup    = 1<<31 | 1
	repErrInvalid  = 1<<31 | 3
	repErrUnknown  = 1<<31 | 6
	infoExport     = 0
	infoBlockSize  = 3
	maxOptionBytes = 64 << 10 // an option longer than this is not one we take
)

// Transmission flags.
const (
	tflagHasFlags     = 1 << 0
	tflagReadOnly     = 1 << 1
	tflagSendFlush    = 1 << 2
	tflagSendFUA      = 1 << 3
	tflagCanMultiConn = 1 << 8
)

// Requests and replies.
const (
	magicRequest     = 0x25609513
	magicSimpleReply = 0x67446698
	requestLen       = 28
	replyLen         = 16

	cmdRead  = 0
	cmdWrite = 1
	cmdDisc  = 2
	cmdFlush = 3

	cmdFlagFUA = 1 << 0
)

// Error values in replies (Linux errno numbers, as the protocol defines them).
const (
	errPerm    = 1
	errIO      = 5
	errInvalid = 22
	errNoSpace = 28
)
