package report

import (
	"regexp"
	"strings"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/results"
)

// This file is the report's commands section and the redaction of everything it prints from
// the documents: argv, URLs and free text that may hold URLs.

// htmlCommand is one distinct command line and how many runs it made.
type htmlCommand struct {
	Line string
	Runs int
}

// commands lists each distinct command line once, redacted, shell-quoted.
func commands(runs []*results.Run) []htmlCommand {
	var out []htmlCommand
	index := map[string]int{}
	for _, r := range runs {
		if len(r.Command) == 0 {
			continue
		}
		line := shellLine(RedactArgs(r.Command))
		i, ok := index[line]
		if !ok {
			i = len(out)
			index[line] = i
			out = append(out, htmlCommand{Line: line})
		}
		out[i].Runs++
	}
	return out
}

// RedactArgs returns argv with credentials removed: every URL in an argument goes through
// backends.RedactString (the part before it, e.g. "--target=", is kept), and the value of
// an option named like a secret (--password, --secret=..., --token) is replaced. Documents
// already store redacted argv; this is the second line of defence for hand-edited ones.
func RedactArgs(argv []string) []string {
	out := make([]string, len(argv))
	secretNext := false
	for i, a := range argv {
		switch {
		case secretNext:
			out[i] = "REDACTED"
			secretNext = false
			continue
		case strings.HasPrefix(a, "-") && isSecretName(a):
			if k, _, ok := strings.Cut(a, "="); ok {
				out[i] = k + "=REDACTED"
			} else {
				out[i] = a
				secretNext = true
			}
			continue
		}
		out[i] = redactArg(a)
	}
	return out
}

func isSecretName(flag string) bool {
	k, _, _ := strings.Cut(strings.ToLower(strings.TrimLeft(flag, "-")), "=")
	if strings.HasSuffix(k, "-file") || strings.HasSuffix(k, "_file") {
		return false // names a file holding the secret
	}
	return strings.Contains(k, "pass") || strings.Contains(k, "secret") || strings.Contains(k, "token")
}

var urlStart = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://`)

// redactArg redacts the URL in one argument: from its scheme to the end of the argument
// (an argument is one token, so a password with spaces in it is still inside).
func redactArg(a string) string {
	loc := urlStart.FindStringIndex(a)
	if loc == nil {
		return a
	}
	return a[:loc[0]] + redactURL(a[loc[0]:])
}

func redactURL(u string) string {
	if u == "" {
		return ""
	}
	return backends.RedactString(u)
}

var urlInText = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://[^\s"'<>]+`)

// redactText redacts every URL in free text (errors, notes, labels).
func redactText(s string) string {
	return urlInText.ReplaceAllStringFunc(s, func(u string) string {
		trail := strings.TrimRight(u, ".,;:)]")
		return redactURL(trail) + u[len(trail):]
	})
}

var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_@%+=:,./-]+$`)

// shellLine joins argv as a POSIX shell would need it typed.
func shellLine(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		if shellSafe.MatchString(a) {
			q[i] = a
		} else {
			q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(q, " ")
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
