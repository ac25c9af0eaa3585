package backends

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRegistryLookup(t *testing.T) {
	r := &Registry{}
	r.Register(Backend{Scheme: "x", Options: []Option{{Name: "size"}}, Open: func(context.Context, *url.URL, OpenParams) (Target, error) { return nil, nil }})
	cases := []struct {
		url, want string
	}{
		{"x://h/p?size=1m", ""},
		{"y://h/p", `unknown backend "y" (registered: x)`},
		{"x://h/p?sise=1m", `unknown option "sise"`},
		{"x://user:secret@h/p", "a password in the URL is not accepted"},
		{"noscheme", "no scheme"},
		{"", "empty target URL"},
	}
	for _, c := range cases {
		_, err := r.Open(context.Background(), c.url, OpenParams{})
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.url, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: err %v, want %q", c.url, err, c.want)
		case err != nil && strings.Contains(err.Error(), "secret"):
			t.Errorf("%s: error leaks the password: %v", c.url, err)
		}
	}
}

func TestRegisterTwicePanics(t *testing.T) {
	r := &Registry{}
	b := Backend{Scheme: "x", Open: func(context.Context, *url.URL, OpenParams) (Target, error) { return nil, nil }}
	r.Register(b)
	defer func() {
		if recover() == nil {
			t.Fatal("second Register did not panic")
		}
	}()
	r.Register(b)
}

func TestRedact(t *testing.T) {
	cases := map[string]string{
		"smb://u:pw@h/s/f":                       "smb://u@h/s/f",
		"iscsi://h/iqn/0?chap_user=u&secret=abc": "iscsi://h/iqn/0?chap_user=u&secret=REDACTED",
		"smb://u@h/s/f?password_file=/run/pw":    "smb://u@h/s/f?password_file=/run/pw",
		"file:///tmp/x":                          "file:///tmp/x",
		"null://":                                "null://",
		"mem://?size=1g":                         "mem://?size=1g",
	}
	for in, want := range cases {
		if got := RedactString(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestQuery(t *testing.T) {
	u, _ := url.Parse("x://h/p?n=3&size=4k&d=500ms&b=yes&e=two&bad=q")
	q := NewQuery(u)
	if n, err := q.Int("n", 0); n != 3 || err != nil {
		t.Errorf("Int: %d %v", n, err)
	}
	if n, err := q.Size("size", 0); n != 4096 || err != nil {
		t.Errorf("Size: %d %v", n, err)
	}
	if d, err := q.Duration("d", 0); d != 500*time.Millisecond || err != nil {
		t.Errorf("Duration: %s %v", d, err)
	}
	if b, err := q.Bool("b", false); !b || err != nil {
		t.Errorf("Bool: %v %v", b, err)
	}
	if _, err := q.Enum("e", "one", "one", "three"); err == nil || !strings.Contains(err.Error(), "e=") {
		t.Errorf("Enum: %v", err)
	}
	if _, err := q.Int("bad", 0); err == nil || !strings.Contains(err.Error(), "bad=") {
		t.Errorf("Int(bad): %v", err)
	}
	if v, _ := q.Int("absent", 7); v != 7 {
		t.Errorf("default: %d", v)
	}
}

func TestSecret(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "pw")
	os.WriteFile(f, []byte("from-file\n"), 0o600)
	t.Setenv("TEST_SECRET", "from-env")
	u, _ := url.Parse("x://h/p?password_file=" + f)
	if s, err := NewQuery(u).Secret("password_file", "TEST_SECRET"); s != "from-file" || err != nil {
		t.Errorf("file: %q %v", s, err)
	}
	u, _ = url.Parse("x://h/p")
	if s, err := NewQuery(u).Secret("password_file", "TEST_SECRET"); s != "from-env" || err != nil {
		t.Errorf("env: %q %v", s, err)
	}
	u, _ = url.Parse("x://h/p?password_file=" + filepath.Join(dir, "missing"))
	if _, err := NewQuery(u).Secret("password_file", "TEST_SECRET"); err == nil {
		t.Error("missing file: no error")
	}
}
