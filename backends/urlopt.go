package backends

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/vmstorbench/vmstorbench/workloads/units"
)

// Redact returns u as a string with any password removed and every query option whose name
// suggests a secret masked. It is what results, logs and errors show.
func Redact(u *url.URL) string {
	if u == nil {
		return ""
	}
	c := *u
	if c.User != nil {
		c.User = url.User(c.User.Username())
	}
	q := c.Query()
	changed := false
	for k := range q {
		if isSecretKey(k) {
			q.Set(k, "REDACTED")
			changed = true
		}
	}
	if changed {
		c.RawQuery = q.Encode()
	}
	out := c.String()
	// url.URL drops an empty authority ("null://" → "null:"); target URLs keep it.
	if c.Opaque == "" && !strings.HasPrefix(out, c.Scheme+"://") {
		out = c.Scheme + "://" + strings.TrimPrefix(out, c.Scheme+":")
	}
	return out
}

// RedactString is Redact for a raw URL; an unparsable URL is hidden entirely.
func RedactString(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return Redact(u)
}

func isSecretKey(k string) bool {
	k = strings.ToLower(k)
	// *_file options name a file holding the secret, not the secret: keep them.
	if strings.HasSuffix(k, "_file") {
		return false
	}
	return strings.Contains(k, "pass") || strings.Contains(k, "secret") || strings.Contains(k, "token")
}

// Query gives typed access to a URL's query options with errors that name the option.
type Query struct {
	scheme string
	v      url.Values
}

// NewQuery wraps u's query options; scheme prefixes error messages.
func NewQuery(u *url.URL) Query { return Query{scheme: u.Scheme, v: u.Query()} }

// String returns option name or def.
func (q Query) String(name, def string) string {
	if s := q.v.Get(name); s != "" {
		return s
	}
	return def
}

// Int returns option name as an integer, or def when absent.
func (q Query) Int(name string, def int) (int, error) {
	s := q.v.Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%s: option %s=%q: not an integer", q.scheme, name, s)
	}
	return n, nil
}

// Size returns option name as a byte count with fio's units (4k, 1g, 512MiB), or def.
func (q Query) Size(name string, def int64) (int64, error) {
	s := q.v.Get(name)
	if s == "" {
		return def, nil
	}
	n, err := units.ParseSize(s)
	if err != nil {
		return 0, fmt.Errorf("%s: option %s=%q: %v", q.scheme, name, s, err)
	}
	return n, nil
}

// Duration returns option name as a duration (Go syntax or fio's: 500ms, 5s, 2m), or def.
func (q Query) Duration(name string, def time.Duration) (time.Duration, error) {
	s := q.v.Get(name)
	if s == "" {
		return def, nil
	}
	d, err := units.ParseDuration(s, time.Second)
	if err != nil {
		return 0, fmt.Errorf("%s: option %s=%q: %v", q.scheme, name, s, err)
	}
	return d, nil
}

// Bool returns option name as a boolean (1/0, true/false, yes/no, on/off), or def.
func (q Query) Bool(name string, def bool) (bool, error) {
	s := strings.ToLower(q.v.Get(name))
	switch s {
	case "":
		return def, nil
	case "1", "true", "yes", "on":
		return true, nil
	case "0", "false", "no", "off":
		return false, nil
	}
	return false, fmt.Errorf("%s: option %s=%q: not a boolean", q.scheme, name, s)
}

// Enum returns option name, which must be one of allowed, or def.
func (q Query) Enum(name, def string, allowed ...string) (string, error) {
	s := q.v.Get(name)
	if s == "" {
		return def, nil
	}
	for _, a := range allowed {
		if s == a {
			return s, nil
		}
	}
	return "", fmt.Errorf("%s: option %s=%q: must be one of %s", q.scheme, name, s, strings.Join(allowed, ", "))
}

// Secret reads a credential: from the file named by the URL option fileOption if given,
// else from the environment variable envVar. The value never leaves the backend: callers must
// not put it in errors. A missing secret is ("", nil); the backend decides whether it needs one.
func (q Query) Secret(fileOption, envVar string) (string, error) {
	if path := q.v.Get(fileOption); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("%s: %s: %w", q.scheme, fileOption, err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	return os.Getenv(envVar), nil
}

// DefaultDialTimeout bounds connection set-up when the caller's context has no deadline.
const DefaultDialTimeout = 10 * time.Second

// DefaultIOTimeout bounds one request on an established connection: a server that dies
// mid-run must end the run in seconds, not hang it.
const DefaultIOTimeout = 30 * time.Second

// Dial connects to addr over TCP, bounded by ctx and DefaultDialTimeout.
func Dial(ctx context.Context, addr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, DefaultDialTimeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	return c, nil
}

// HostPort returns u's host with defPort added when the URL names none.
func HostPort(u *url.URL, defPort int) string {
	if u.Port() != "" {
		return u.Host
	}
	return net.JoinHostPort(u.Hostname(), strconv.Itoa(defPort))
}
