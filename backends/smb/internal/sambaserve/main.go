// Command sambaserve runs the Samba testbed for scripts (scripts/compare-smb.sh): it starts
// smbd in a state directory, writes the endpoints and the password as shell assignments to
// a file of mode 0600, and stops smbd when it gets SIGINT or SIGTERM or its stdin closes.
//
//	sambaserve -dir STATE -env FILE
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/vmstorbench/vmstorbench/testbed"
)

func main() {
	dir := flag.String("dir", "", "state directory for smbd (created)")
	envFile := flag.String("env", "", "file to write SMB_PORT, <ENDPOINT>_URL, <ENDPOINT>_PORT and the password to")
	watchStdin := flag.Bool("stdin", false, "also stop when stdin reaches end of file")
	flag.Parse()
	if *dir == "" || *envFile == "" {
		flag.Usage()
		os.Exit(2)
	}
	if err := serve(*dir, *envFile, *watchStdin); err != nil {
		fmt.Fprintln(os.Stderr, "sambaserve:", err)
		os.Exit(1)
	}
}

func serve(dir, envFile string, watchStdin bool) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	s := testbed.NewSamba()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	eps, err := s.Start(ctx, dir)
	cancel()
	if err != nil {
		return err
	}
	defer s.Stop()

	var b strings.Builder
	fmt.Fprintf(&b, "SMB_PORT=%d\n", s.Port())
	fmt.Fprintf(&b, "SMB_STATE_DIR=%s\n", quote(dir))
	fmt.Fprintf(&b, "SMB_SHARE_DIR=%s\n", quote(filepath.Join(dir, "share")))
	for _, ep := range eps {
		name := strings.ToUpper(strings.ReplaceAll(ep.Name, "-", "_"))
		fmt.Fprintf(&b, "%s_URL=%s\n", name, quote(ep.URL))
		// Each forced signing algorithm has an smbd of its own: scripts need its port.
		if u, err := url.Parse(ep.URL); err == nil {
			fmt.Fprintf(&b, "%s_PORT=%s\n", name, u.Port())
		}
		for k, v := range ep.Env {
			fmt.Fprintf(&b, "export %s=%s\n", k, quote(v))
		}
	}
	tmp := envFile + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, envFile); err != nil {
		return err
	}

	done := make(chan os.Signal, 1)
	signal.Notify(done, syscall.SIGINT, syscall.SIGTERM)
	if watchStdin {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			done <- syscall.SIGTERM
		}()
	}
	<-done
	return s.Stop()
}

// quote makes v one single-quoted shell word.
func quote(v string) string { return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'" }
