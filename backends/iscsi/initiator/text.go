package initiator

import (
	"bytes"
	"strings"
)

// kv is one text key=value pair of a Login or Text PDU (RFC 7143 §6).
type kv struct{ key, value string }

// maxKeyLen is the longest key name RFC 7143 §6.1 allows.
const maxKeyLen = 63

// encodeText appends key=value\0 pairs to dst.
func encodeText(dst []byte, kvs []kv) []byte {
	for _, p := range kvs {
		dst = append(dst, p.key...)
		dst = append(dst, '=')
		dst = append(dst, p.value...)
		dst = append(dst, 0)
	}
	return dst
}

// parseText splits a text data segment into pairs. Empty strings (extra NULs some targets pad
// with) are skipped; a pair without '=' or with a bad key is a protocol error.
func parseText(data []byte) ([]kv, error) {
	var out []kv
	for len(data) > 0 {
		var item []byte
		if i := bytes.IndexByte(data, 0); i >= 0 {
			item, data = data[:i], data[i+1:]
		} else {
			// RFC: every pair ends in NUL. Accept a missing final NUL, as other initiators do.
			item, data = data, nil
		}
		if len(item) == 0 {
			continue
		}
		eq := bytes.IndexByte(item, '=')
		if eq <= 0 || eq > maxKeyLen {
			return nil, protoErr("malformed text key=value %q", truncate(string(item), 80))
		}
		out = append(out, kv{key: string(item[:eq]), value: string(item[eq+1:])})
	}
	return out, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// lookup returns the value of key in kvs.
func lookup(kvs []kv, key string) (string, bool) {
	for _, p := range kvs {
		if p.key == key {
			return p.value, true
		}
	}
	return "", false
}

// keysString lists the keys for error messages (values may hold CHAP material).
func keysString(kvs []kv) string {
	names := make([]string, len(kvs))
	for i, p := range kvs {
		names[i] = p.key
	}
	return strings.Join(names, ",")
}
