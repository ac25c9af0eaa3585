package smb

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/vmstorbench/vmstorbench/backends"
)

// PasswordEnv is the environment variable the password is read from when the URL has no
// password_file= option.
const PasswordEnv = "VMSTORBENCH_SMB_PASSWORD"

const defaultPort = 445

// dialects maps the dialect= option to the wire value sent in NEGOTIATE (MS-SMB2 2.2.3).
var dialects = map[string]uint16{
	"2.0.2": 0x0202,
	"2.1":   0x0210,
	"3.0":   0x0300,
	"3.0.2": 0x0302,
	"3.1.1": 0x0311,
}

// dialectNames orders the dialect= values for messages.
var dialectNames = []string{"2.0.2", "2.1", "3.0", "3.0.2", "3.1.1"}

func dialectName(wire uint16) string {
	for name, w := range dialects {
		if w == wire {
			return name
		}
	}
	return fmt.Sprintf("0x%04x", wire)
}

func init() {
	backends.Register(backends.Backend{
		Scheme:      "smb",
		Description: "SMB2/3 file through a userspace client (go-smb2); signing and encryption as negotiated",
		URLForms: []string{
			"smb://user@host[:port]/share/path/file",
			"smb://user@host/share/vm.img?dialect=3.1.1&sign=required",
			"smb://user@host/share/dir (bench files created inside)",
		},
		Options: []backends.Option{
			{Name: "dialect", Help: "pin the SMB dialect: " + strings.Join(dialectNames, ", "), Default: "highest both sides support"},
			{Name: "sign", Help: "required: sign every request and verify every response; auto: sign only if the server requires it", Default: "auto"},
			{Name: "domain", Help: "NTLM domain of the user", Default: ""},
			{Name: "password_file", Help: "file holding the password (else $" + PasswordEnv + ")", Default: ""},
			{Name: "timeout", Help: "limit for one request; a request that takes longer closes the connection and fails the run", Default: backends.DefaultIOTimeout.String()},
		},
		Open: open,
	})
}

// config is a parsed smb:// URL.
type config struct {
	addr    string // host:port to dial
	host    string // host as named in the tree connect path
	user    string
	domain  string
	share   string
	file    string // path inside the share, '/'-separated
	dialect uint16 // 0: negotiate the highest
	sign    bool
	timeout time.Duration
}

func parseConfig(u *url.URL) (config, error) {
	c := config{addr: backends.HostPort(u, defaultPort), host: u.Hostname()}
	if c.host == "" {
		return c, errors.New("no host (smb://user@host/share/file)")
	}
	if u.User == nil || u.User.Username() == "" {
		return c, errors.New("no user (smb://user@host/share/file)")
	}
	c.user = u.User.Username()
	share, file, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
	if share == "" || file == "" || strings.HasSuffix(file, "/") {
		return c, fmt.Errorf("path %q must be /share/path/file", u.Path)
	}
	for _, seg := range strings.Split(file, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return c, fmt.Errorf("path %q: empty, . or .. component", u.Path)
		}
	}
	c.share, c.file = share, file

	q := backends.NewQuery(u)
	d, err := q.Enum("dialect", "", dialectNames...)
	if err != nil {
		return c, err
	}
	c.dialect = dialects[d]
	sign, err := q.Enum("sign", "auto", "auto", "required")
	if err != nil {
		return c, err
	}
	c.sign = sign == "required"
	c.domain = q.String("domain", "")
	if c.timeout, err = q.Duration("timeout", backends.DefaultIOTimeout); err != nil {
		return c, err
	}
	if c.timeout <= 0 {
		return c, fmt.Errorf("smb: option timeout must be positive")
	}
	return c, nil
}

func open(ctx context.Context, u *url.URL, p backends.OpenParams) (backends.Target, error) {
	c, err := parseConfig(u)
	if err != nil {
		return nil, err
	}
	password, err := backends.NewQuery(u).Secret("password_file", PasswordEnv)
	if err != nil {
		return nil, err
	}
	if password == "" {
		return nil, fmt.Errorf("no password: set $%s or password_file=", PasswordEnv)
	}
	return dial(ctx, c, password, p)
}
