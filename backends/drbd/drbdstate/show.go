package drbdstate

import (
	"fmt"
	"strconv"
	"strings"
)

// Config is what `drbdsetup show` says about a resource that State needs and /proc/drbd
// and `status --json` leave out: above all the protocol.
type Config struct {
	Resource   string `json:"resource"`
	Protocol   string `json:"protocol,omitempty"`
	Minor      int    `json:"minor"`
	Disk       string `json:"disk,omitempty"`
	LocalAddr  string `json:"local_addr,omitempty"`
	RemoteAddr string `json:"remote_addr,omitempty"`
	// PeerNodeIDs are DRBD 9's connections (net-options addresses a connection by them).
	PeerNodeIDs []string `json:"peer_node_ids,omitempty"`
	// TwoPrimaries is net's allow-two-primaries (dual-primary, for live migration).
	TwoPrimaries bool `json:"two_primaries,omitempty"`
}

// maxDepth bounds section nesting: real output nests four deep.
const maxDepth = 16

// ParseShow parses `drbdsetup show` (8.4's drbdsetup-84 and 9.x write the same syntax:
// `resource r0 { net { protocol C; } _this_host { address ipv4 1.2.3.4:7789; volume 0 {
// device minor 0; disk "/dev/vda"; } } }`) and returns one Config per resource.
func ParseShow(b []byte) ([]Config, error) {
	toks, err := tokenize(string(clip(b)))
	if err != nil {
		return nil, fmt.Errorf("drbdsetup show: %w", err)
	}
	var out []Config
	var stack []string // enclosing section names
	var stmt []string  // words of the statement being read
	var cur *Config
	for _, t := range toks {
		switch t {
		case "{":
			if len(stack) >= maxDepth {
				return out, fmt.Errorf("drbdsetup show: sections nested deeper than %d", maxDepth)
			}
			name := ""
			if len(stmt) > 0 {
				name = stmt[0]
			}
			if len(stack) == 0 && name == "resource" {
				if len(stmt) < 2 {
					return out, fmt.Errorf("drbdsetup show: resource without a name")
				}
				out = append(out, Config{Resource: stmt[1], Minor: -1})
				cur = &out[len(out)-1]
			}
			stack = append(stack, name)
			stmt = stmt[:0]
		case "}":
			if len(stack) == 0 {
				return out, fmt.Errorf("drbdsetup show: unbalanced }")
			}
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				cur = nil
			}
			stmt = stmt[:0]
		case ";":
			if cur != nil && len(stmt) > 0 {
				applyShow(cur, stack, stmt)
			}
			stmt = stmt[:0]
		default:
			if len(stmt) < 16 {
				stmt = append(stmt, t)
			}
		}
	}
	if len(stack) != 0 {
		return out, fmt.Errorf("drbdsetup show: %d unclosed sections", len(stack))
	}
	// show leaves out settings at their defaults (unless --show-defaults): a connected
	// resource with no protocol line runs DRBD's default, C.
	for i := range out {
		if out[i].Protocol == "" && out[i].RemoteAddr != "" {
			out[i].Protocol = "C"
		}
	}
	return out, nil
}

func applyShow(c *Config, stack, stmt []string) {
	parent := stack[len(stack)-1]
	val := func(i int) string {
		if i < len(stmt) {
			return stmt[i]
		}
		return ""
	}
	switch {
	case stmt[0] == "protocol" && parent == "net":
		c.Protocol = val(1)
	case stmt[0] == "allow-two-primaries" && parent == "net":
		c.TwoPrimaries = val(1) == "yes"
	case stmt[0] == "address" && (parent == "_this_host" || parent == "_remote_host" || parent == "path"):
		addr := val(len(stmt) - 1)
		if parent == "_remote_host" {
			c.RemoteAddr = addr
		} else if c.LocalAddr == "" {
			c.LocalAddr = addr
		}
	case (stmt[0] == "_this_host" || stmt[0] == "_remote_host") && parent == "path":
		// DRBD 9: "path { _this_host ipv4 10.0.0.1:7789; _remote_host ipv4 10.0.0.2:7789; }"
		addr := val(len(stmt) - 1)
		if stmt[0] == "_remote_host" {
			if c.RemoteAddr == "" {
				c.RemoteAddr = addr
			}
		} else if c.LocalAddr == "" {
			c.LocalAddr = addr
		}
	case stmt[0] == "_peer_node_id" && parent == "connection" && len(stmt) == 2:
		if _, err := strconv.Atoi(stmt[1]); err == nil && len(c.PeerNodeIDs) < 32 {
			c.PeerNodeIDs = append(c.PeerNodeIDs, stmt[1])
		}
	case stmt[0] == "device" && parent == "volume":
		// "device minor 0;" or "device "/dev/drbd0" minor 0;"
		for i := 1; i+1 < len(stmt); i++ {
			if stmt[i] == "minor" {
				if n, err := strconv.Atoi(stmt[i+1]); err == nil && n >= 0 {
					c.Minor = n
				}
			}
		}
	case stmt[0] == "disk" && parent == "volume":
		c.Disk = val(1)
	}
}

// tokenize splits show output into words, quoted strings (unquoted), "{", "}" and ";",
// dropping # comments.
func tokenize(s string) ([]string, error) {
	var toks []string
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '#':
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == '{' || c == '}' || c == ';':
			toks = append(toks, string(c))
			i++
		case c == '"':
			j := i + 1
			var w strings.Builder
			for ; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '\\' && j+1 < len(s) {
					j++
				}
				w.WriteByte(s[j])
			}
			if j >= len(s) {
				return nil, fmt.Errorf("unterminated string")
			}
			toks = append(toks, w.String())
			i = j + 1
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\r\n{};\"#", rune(s[j])) {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		}
	}
	return toks, nil
}
