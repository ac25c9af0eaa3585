package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestJobFileFilename: a job file's filename= is the target only when it is a local path
// and no --target is given; a --target replaces it with a note; directory= alone is a
// file:// directory target.
func TestJobFileFilename(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	hostPort := write("net.fio", "[j]\nrw=read\nsize=1m\nfilename=localhost\\:8888\n")
	engine := write("rbd.fio", "[j]\nrw=read\nsize=1m\nioengine=rbd\nfilename=fio_test\n")
	local := write("local.fio", "[j]\nrw=write\nsize=1m\nfilename="+filepath.Join(dir, "img")+"\n")
	dirOnly := write("dir.fio", "[j]\nrw=write\nsize=1m\ndirectory="+filepath.Join(dir, "sub")+"\n")
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		errWant  string
		noteWant string
	}{
		{"host:port without --target", []string{"run", hostPort}, `net.fio:1: job "j": filename="localhost:8888" is a host:port`, ""},
		{"engine name without --target", []string{"run", engine}, "fio's ioengine=rbd connects to, not a local file", ""},
		{"host:port with --target", []string{"run", hostPort, "--target", "null://"}, "", "filename=localhost:8888 replaced by the target"},
		{"local filename", []string{"run", local}, "", ""},
		{"directory only", []string{"run", dirOnly}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, err := runCLI(t, append(tt.args, "--no-save", "--quiet")...)
			switch {
			case tt.errWant != "" && (err == nil || !strings.Contains(err.Error(), tt.errWant)):
				t.Fatalf("error %v, want %q", err, tt.errWant)
			case tt.errWant == "" && err != nil:
				t.Fatalf("%v\n%s", err, stderr)
			}
			if tt.noteWant != "" && !strings.Contains(stderr, tt.noteWant) {
				t.Errorf("stderr %q, want a note %q", stderr, tt.noteWant)
			}
			for _, name := range []string{"localhost:8888", "fio_test"} {
				if _, err := os.Stat(name); err == nil {
					t.Errorf("a local file %q was created", name)
				}
			}
		})
	}
}
