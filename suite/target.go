package suite

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/vmstorbench/vmstorbench/backends"
)

// TestbedPrefix marks a target that is an endpoint of the running testbed: "testbed:smb".
const TestbedPrefix = "testbed:"

// Target is one target of the suite: a backend URL or a testbed endpoint.
type Target struct {
	Line int
	// Name is what reports call it: given, else the testbed endpoint's name, else the URL
	// (redacted).
	Name string
	// URL is a backend URL without credentials, or "testbed:NAME".
	URL string
	// SecretEnv names the environment variable holding the target's password or CHAP
	// secret; SecretFile a file holding it (resolved against the suite's directory). At
	// most one is set; the value reaches the backend through its *_file URL option, never
	// the URL itself.
	SecretEnv  string
	SecretFile string
	// SecretOption is the backend's URL option that names a secret file ("password_file",
	// "secret_file"); set when SecretEnv or SecretFile is.
	SecretOption string
	// Optional leaves the target out, with a note, when it is not available before the suite
	// starts (its testbed endpoint is not running, its secret is missing) instead of failing
	// the suite. Failures during its runs still count.
	Optional bool
	// AllowDestructive permits writing to a LUN, device or existing file (default: the
	// suite's allow_destructive).
	AllowDestructive bool
	allowGiven       bool
}

// TestbedName returns the endpoint name of a testbed:NAME target.
func (t *Target) TestbedName() (string, bool) {
	return strings.CutPrefix(t.URL, TestbedPrefix)
}

// envName is what secret_env accepts: a conventional environment variable name. Lower
// case is refused too, so that a pasted password ("hunter2") is not taken for a name and
// echoed in a "not set" warning.
var envName = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`)

var targetKeys = []string{"name", "url", "secret_env", "secret_file", "optional", "allow_destructive"}

func (d *decoder) target(n *yaml.Node) *Target {
	n = resolve(n)
	t := &Target{Line: n.Line}
	errs := len(d.errs)
	if n.Kind == yaml.ScalarNode {
		t.URL = n.Value
	} else {
		for _, f := range d.fields(n, "target") {
			switch f.key {
			case "name":
				t.Name = d.str(f)
			case "url":
				t.URL = d.str(f)
			case "secret_env":
				t.SecretEnv = d.str(f)
			case "secret_file":
				t.SecretFile = d.str(f)
			case "optional":
				t.Optional = d.boolean(f)
			case "allow_destructive":
				t.AllowDestructive, t.allowGiven = d.boolean(f), true
			default:
				d.unknown(f, "target", targetKeys)
			}
		}
	}
	if t.URL == "" {
		if len(d.errs) > errs {
			return nil // a misspelt url: key is already reported
		}
		d.errorf(t.Line, "target: no url: (a backend URL, see 'vmstorbench backends', or testbed:NAME)")
		return nil
	}
	if t.SecretEnv != "" && t.SecretFile != "" {
		d.errorf(t.Line, "target %s: give secret_env or secret_file, not both", t.display())
	}
	if t.SecretEnv != "" && !envName.MatchString(t.SecretEnv) {
		// Most likely the secret itself was pasted here: never repeat it (nor keep it for
		// the warnings and the plan).
		t.SecretEnv = ""
		d.errorf(t.Line, "target %s: secret_env is not an environment variable name (upper-case letters, digits and _, "+
			"e.g. VMSTORBENCH_SMB_PASSWORD); if it holds the secret itself, remove it from the file and change the secret", t.display())
	}
	if name, ok := t.TestbedName(); ok {
		if name == "" {
			d.errorf(t.Line, "target %q: name the testbed endpoint (testbed:smb, testbed:nfs-ganesha, ...; 'vmstorbench testbed status' lists them)", t.URL)
		}
		if t.SecretEnv != "" || t.SecretFile != "" {
			d.errorf(t.Line, "target %s: testbed endpoints bring their own credentials; drop secret_env/secret_file", t.URL)
		}
		if t.Name == "" {
			t.Name = name
		}
	} else {
		u, err := url.Parse(t.URL)
		if err != nil {
			// url.Error repeats the URL, which might hold a secret: give only the reason.
			if ue, ok := err.(*url.Error); ok {
				err = ue.Err
			}
			d.errorf(t.Line, "target: bad URL: %v", err)
			return nil
		}
		if _, has := u.User.Password(); has {
			// The file itself now holds a secret: say so plainly, without repeating it.
			d.errorf(t.Line, "target %s: the URL carries a password; suite files never hold secrets: remove it from the URL and "+
				"name an environment variable (secret_env: VMSTORBENCH_SMB_PASSWORD) or a file (secret_file: path) instead", backends.Redact(u))
			return nil
		}
		if _, err := backends.ParseURL(t.URL); err != nil {
			d.errorf(t.Line, "target: %v", err)
			return nil
		}
		if t.Name == "" {
			t.Name = backends.Redact(u)
		}
	}
	if t.SecretFile != "" && !filepath.IsAbs(t.SecretFile) {
		t.SecretFile = filepath.Join(filepath.Dir(d.file), t.SecretFile)
	}
	if len(d.errs) > errs {
		return nil
	}
	return t
}

// display names a target in messages before its name is known.
func (t *Target) display() string {
	if t.Name != "" {
		return fmt.Sprintf("%q", t.Name)
	}
	return backends.RedactString(t.URL)
}

// checkBackend checks a URL target against the registry: the backend exists, knows every
// option, and takes a secret file if the target names a secret.
func (t *Target) checkBackend(d *decoder, reg *backends.Registry) {
	u, err := backends.ParseURL(t.URL)
	if err != nil {
		d.errorf(t.Line, "target %q: %v", t.Name, err)
		return
	}
	b, err := reg.Lookup(u)
	if err != nil {
		d.errorf(t.Line, "target %q: %v", t.Name, err)
		return
	}
	if t.SecretEnv == "" && t.SecretFile == "" {
		return
	}
	for _, o := range b.Options {
		// The backends' secret options are the *_file ones: password_file=, secret_file=.
		if strings.HasSuffix(o.Name, "_file") {
			t.SecretOption = o.Name
			break
		}
	}
	if t.SecretOption == "" {
		d.errorf(t.Line, "target %q: the %s backend takes no password or secret; drop secret_env/secret_file", t.Name, b.Scheme)
		return
	}
	if u.Query().Has(t.SecretOption) {
		d.errorf(t.Line, "target %q: the URL already has %s=; give the secret once", t.Name, t.SecretOption)
	}
}

// Unavailable says why a target cannot run now though the file is valid: its secret's
// environment variable is not set or its secret file is unreadable ("" when it can run).
// The reason does not name the target: callers do.
// lookupEnv is os.LookupEnv outside tests. Testbed endpoints are checked by resolving them.
func (t *Target) Unavailable(lookupEnv func(string) (string, bool)) string {
	switch {
	case t.SecretEnv != "":
		if v, ok := lookupEnv(t.SecretEnv); !ok || v == "" {
			return fmt.Sprintf("$%s is not set (it holds the target's secret)", t.SecretEnv)
		}
	case t.SecretFile != "":
		f, err := os.Open(t.SecretFile)
		if err != nil {
			return fmt.Sprintf("secret_file: %v", err)
		}
		f.Close()
	}
	return ""
}

// ResolveURL returns the URL a backend opens for this (non-testbed) target: with its
// secret file option pointing at SecretFile, or, for SecretEnv, at a file of mode 0600 in
// secretDir (a private directory the caller removes after the suite) holding the variable's
// value. The secret itself never enters the URL, and so never a result document. Errors
// do not name the target: callers do.
func (t *Target) ResolveURL(secretDir string, lookupEnv func(string) (string, bool)) (string, error) {
	if t.SecretEnv == "" && t.SecretFile == "" {
		return t.URL, nil
	}
	if why := t.Unavailable(lookupEnv); why != "" {
		return "", errors.New(why)
	}
	path := t.SecretFile
	if t.SecretEnv != "" {
		v, _ := lookupEnv(t.SecretEnv)
		path = filepath.Join(secretDir, safeName(t.Name)+".secret")
		if err := os.WriteFile(path, []byte(v), 0o600); err != nil {
			return "", fmt.Errorf("writing the secret file: %w", err)
		}
	} else if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	u, err := url.Parse(t.URL)
	if err != nil {
		return "", fmt.Errorf("bad URL")
	}
	q := u.Query()
	q.Set(t.SecretOption, path)
	u.RawQuery = q.Encode()
	return u.String(), nil
}
