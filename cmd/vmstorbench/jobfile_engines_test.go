package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vmstorbench/vmstorbench/results"
	"github.com/vmstorbench/vmstorbench/testbed"
)

// TestIntegrationJobFileLibiscsi: a fio job file written for ioengine=libiscsi runs
// unchanged, without --target, on the iscsi backend against the testbed's tgt: the LUN of
// its filename= (':' escaped as fio wants), a user@ in it as the CHAP user with the
// secret from the backend's variable. One tgt for all cases.
func TestIntegrationJobFileLibiscsi(t *testing.T) {
	srv := testbed.NewTgt()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	eps, err := srv.Start(ctx, t.TempDir())
	if err != nil {
		if errors.Is(err, testbed.ErrMissingBinary) || os.Geteuid() != 0 {
			missing(t, err)
		}
		t.Fatalf("start tgt: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Errorf("stop tgt: %v", err)
		}
	})
	byName := map[string]testbed.Endpoint{}
	for _, e := range eps {
		byName[e.Name] = e
	}
	plain, chap := byName["iscsi-tgt"], byName["iscsi-tgt-chap"]
	// The CHAP endpoint's URL as libiscsi writes it: the user before '@', no chap_user=.
	chapURL := strings.Replace(strings.Split(chap.URL, "?")[0], "iscsi://", "iscsi://"+testbed.ISCSICHAPUser+"@", 1)

	dir := t.TempDir()
	tests := []struct {
		name, url, secret string
		want, security    string // the result's target URL and security
		err               string
	}{
		{"plain", plain.URL, "", plain.URL, "none", ""},
		{"CHAP user in the URL", chapURL, chap.Env[testbed.ISCSISecretEnv], chapURL, "chap", ""},
		{"CHAP user without the secret", chapURL, "", "", "", "needs a CHAP secret: set $" + testbed.ISCSISecretEnv},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(testbed.ISCSISecretEnv, tt.secret)
			job := filepath.Join(dir, "libiscsi.fio")
			text := "[global]\nioengine=libiscsi\nfilename=" + strings.ReplaceAll(tt.url, ":", `\:`) +
				"\nrw=randread\nbs=4k\niodepth=4\nsize=4m\n[randread]\n"
			if err := os.WriteFile(job, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			res := filepath.Join(dir, "res"+strconv.Itoa(i))
			_, stderr, err := runCLI(t, "run", job, "--results", res, "--quiet")
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one with %q\n%s", err, tt.err, stderr)
				}
				return
			}
			if err != nil {
				t.Fatalf("run: %v\n%s", err, stderr)
			}
			if note := "runs on " + tt.want; !strings.Contains(stderr, note) {
				t.Errorf("stderr %q, want a note %q", stderr, note)
			}
			runs, err := results.LoadAll(res)
			if err != nil || len(runs) != 1 {
				t.Fatalf("%d results, %v", len(runs), err)
			}
			r := runs[0]
			if r.Target.URL != tt.want || r.Target.Backend != "iscsi" || r.Target.Info["security"] != tt.security {
				t.Errorf("target %+v, want %s with security %s", r.Target, tt.want, tt.security)
			}
			if !r.Complete || r.Read == nil || r.Read.Bytes != 4<<20 || r.Read.Errors != 0 {
				t.Errorf("complete=%v read=%+v, want 4 MiB read without errors", r.Complete, r.Read)
			}
		})
	}
}
