package libvirt

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmstorbench/vmstorbench/testbed"
	"github.com/vmstorbench/vmstorbench/vm/agent"
	"github.com/vmstorbench/vmstorbench/vm/internal/vmtest"
)

// The tests share one pair of daemons, stopped by TestMain.
var (
	pairOnce sync.Once
	pair     *testbed.LibvirtPair
	pairEPs  []testbed.Endpoint
	pairErr  error
	pairDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if pair != nil {
		if err := pair.Stop(); err != nil {
			os.Stderr.WriteString("libvirt pair: " + err.Error() + "\n")
		}
	}
	if pairDir != "" {
		os.RemoveAll(pairDir)
	}
	os.Exit(code)
}

// requirePair starts the shared pair (skipped, or failed with CI=true, when libvirtd or
// root is missing) and returns the daemons' socket URIs; pairEPs[2:4] are their TCP URIs,
// pairEPs[4:6] their TLS URIs.
func requirePair(t *testing.T) (string, string) {
	t.Helper()
	pairOnce.Do(func() {
		if os.Geteuid() != 0 {
			pairErr = errors.New("the libvirt pair needs root")
			return
		}
		dir, err := os.MkdirTemp("", "vsb-lvtest-")
		if err != nil {
			pairErr = err
			return
		}
		pairDir = dir
		p := testbed.NewLibvirtPair()
		p.TCP = true // peer-to-peer migration: the source daemon connects to the destination's
		p.TLS = true // clients authenticated by certificate (TestIntegrationErrors)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		pairEPs, pairErr = p.Start(ctx, dir)
		if pairErr == nil {
			pair = p
		}
	})
	if pairErr != nil {
		if errors.Is(pairErr, testbed.ErrMissingBinary) || strings.Contains(pairErr.Error(), "needs root") {
			vmtest.Missing(t, pairErr)
		}
		t.Fatal(pairErr)
	}
	return pairEPs[0].URL, pairEPs[1].URL
}

func connect(t *testing.T, uri string) *Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := Connect(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// sharedDisk is a sparse raw disk both daemons' users can open.
func sharedDisk(t *testing.T) string {
	t.Helper()
	dir, err := vmtest.ShortTempDir(t)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "disk.raw")
	if err := os.WriteFile(p, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, 64<<20); err != nil {
		t.Fatal(err)
	}
	return p
}

// noDomains fails the test if any domain is left on c.
func noDomains(t *testing.T, c *Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	names, err := c.ActiveDomains(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) > 0 {
		t.Errorf("%s: domains left: %v", c.Redacted, names)
	}
}

// TestIntegrationMigrateLive boots the guest on daemon 1, waits for its agent, migrates it
// live to daemon 2 with TLS and back peer-to-peer and tunnelled, checks the job statistics,
// then that nothing is left.
func TestIntegrationMigrateLive(t *testing.T) {
	img := vmtest.Image(t)
	uri1, uri2 := requirePair(t)
	src, dst, again := connect(t, uri1), connect(t, uri2), connect(t, uri1)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	h1, err := src.Host(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if h1.Driver != "QEMU" || h1.LibvirtVersion == "" || h1.HypervisorVersion == "" || h1.UUID == "" {
		t.Errorf("host %+v", h1)
	}

	dom, err := src.Boot(ctx, Spec{
		Kernel: img.Kernel, Initrd: img.Initrd, Cmdline: img.Cmdline,
		MemoryMiB: 256, Disk: &Disk{Source: sharedDisk(t)},
	})
	if err != nil {
		t.Fatal(err)
	}
	var cur = dom
	t.Cleanup(func() {
		dctx, dcancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer dcancel()
		if err := cur.Destroy(dctx); err != nil {
			t.Error(err)
		}
		noDomains(t, src)
		noDomains(t, dst)
	})
	ch, ok, err := dom.ReadAgentChannel(ctx)
	if err != nil || !ok || ch.Network != "unix" {
		t.Fatalf("agent channel %+v %v %v", ch, ok, err)
	}
	msgs := make(chan agent.Message, 256)
	ac, err := agent.Dial(ctx, "source", ch.Address, msgs)
	if err != nil {
		t.Fatal(err)
	}
	defer ac.Close()
	waitHello(t, msgs, dom.ConsoleLog())

	// The same daemon twice: refused before anything starts, the domain keeps running.
	if _, err := StartMigration(ctx, dom, again, MigrateOptions{Live: true}); err == nil || !errors.As(err, new(*SameHostError)) {
		t.Errorf("migration to the same host: %v", err)
	}
	// libvirt refuses a local file as unshared storage without Unsafe: the guest stays.
	if _, err := Migrate(ctx, dom, dst, MigrateOptions{Live: true, MigrationURI: "tcp://127.0.0.1"}); err == nil || strings.Contains(err.Error(), "\n") {
		t.Errorf("unsafe migration: %v", err)
	}
	if st, _, err := dom.State(ctx); err != nil || st != "running" {
		t.Errorf("source after a refused migration: %s %v", st, err)
	}
	noDomains(t, dst)

	opts := MigrateOptions{Live: true, Unsafe: true, MigrationURI: "tcp://127.0.0.1"}
	// Prepared and abandoned: the destination's QEMU goes, the guest stays.
	m, err := PrepareMigration(ctx, dom, dst, opts)
	if err != nil {
		t.Fatal(err)
	}
	m.Abandon(ctx)
	if _, err := m.Wait(); err == nil {
		t.Error("an abandoned migration has no error")
	}
	noDomains(t, dst)
	if st, _, err := dom.State(ctx); err != nil || st != "running" {
		t.Errorf("source after an abandoned migration: %s %v", st, err)
	}

	// Prepared: the destination's agent socket accepts connections before the guest moves.
	// With TLS: the pair's daemons have migration credentials from one CA.
	opts.TLS = true
	if m, err = PrepareMigration(ctx, dom, dst, opts); err != nil {
		t.Fatal(err)
	}
	dch, ok, err := m.Incoming().ReadAgentChannel(ctx)
	if err != nil || !ok || dch.Address == ch.Address {
		t.Fatalf("destination agent channel %+v %v %v (source %s)", dch, ok, err, ch.Address)
	}
	dc, err := agent.Dial(ctx, "destination", dch.Address, make(chan agent.Message, 256))
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	m.Start(ctx)
	polls, running := 0, 0
	tick := time.NewTicker(50 * time.Millisecond)
	for done := false; !done; {
		select {
		case <-m.Done():
			done = true
		case <-tick.C:
			js, err := m.Stats(ctx)
			if err == nil {
				polls++
				if js.Type == "unbounded" && js.MemoryTotal > 0 {
					running++
				}
			}
		}
	}
	tick.Stop()
	ddom, err := m.Wait()
	if err != nil {
		t.Fatal(err)
	}
	cur = ddom
	t.Logf("%d polls, %d with a running job; steps %v", polls, running, m.Steps())
	var names []string
	for _, st := range m.Steps() {
		names = append(names, st.Name)
		if st.Took <= 0 {
			t.Errorf("step %s took %s", st.Name, st.Took)
		}
	}
	if got := strings.Join(names, " "); got != "begin prepare perform finish confirm" {
		t.Errorf("steps %q", got)
	}
	js, err := ddom.JobStats(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("completed: %+v", js)
	if js.Type != "completed" || js.Downtime <= 0 || js.Elapsed <= 0 || js.DataProcessed == 0 || js.MemoryTotal == 0 {
		t.Errorf("destination's completed job: %+v", js)
	}
	if st, _, err := ddom.State(ctx); err != nil || st != "running" {
		t.Errorf("destination state %s %v", st, err)
	}
	if _, err := ddom.BlockStats(ctx); err != nil {
		t.Error(err)
	}
	if info, err := ddom.Info(ctx); err != nil || info.MemoryBytes != 256<<20 || info.VCPUs != 1 {
		t.Errorf("info %+v %v", info, err)
	}
	noDomains(t, src)
	if after, ok, err := ddom.ReadAgentChannel(ctx); err != nil || !ok || after != dch {
		t.Errorf("destination agent channel after the migration %+v %v %v, before %+v", after, ok, err, dch)
	}

	// Back to daemon 1, peer-to-peer (daemon 2 connects to daemon 1 over TCP) and tunnelled
	// (the stream goes through that connection). Post-copy needs a pair of its own
	// (LibvirtPair.Postcopy, refused with TCP): TestIntegrationPostcopy.
	home, err := Migrate(ctx, ddom, src, MigrateOptions{Live: true, PeerToPeer: true, Tunnelled: true,
		Unsafe: true, DestURIFromSource: pairEPs[2].URL})
	if err != nil {
		t.Fatal(err)
	}
	cur = home
	js, err = home.JobStats(ctx, true)
	t.Logf("back, tunnelled: %+v %v", js, err)
	if err != nil || js.Type != "completed" || js.DataProcessed == 0 {
		t.Errorf("completed job after the tunnelled migration: %+v %v", js, err)
	}
	if st, _, err := home.State(ctx); err != nil || st != "running" {
		t.Errorf("state after the tunnelled migration: %s %v", st, err)
	}
	noDomains(t, dst)
}

func waitHello(t *testing.T, msgs <-chan agent.Message, console string) {
	t.Helper()
	timeout := time.After(90 * time.Second)
	for {
		select {
		case m := <-msgs:
			if m.Hello != nil {
				return
			}
			if m.Err != nil {
				t.Fatalf("agent connection ended: %v", m.Err)
			}
		case <-timeout:
			data, _ := os.ReadFile(console)
			t.Fatalf("no agent hello in 90 s; console: %s", data)
		}
	}
}

// TestIntegrationErrors: each bad input is one line naming the (redacted) URI or domain.
func TestIntegrationErrors(t *testing.T) {
	requirePair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, c := range []struct {
		name, uri, want string
	}{
		{"missing socket", "qemu+unix:///session?socket=/nonexistent/libvirt-sock", "no such file"},
		{"session without socket", "qemu+unix:///session", "needs socket="},
		{"closed port", "qemu+tcp://bench:s3cret@127.0.0.1:1/system", "refused"},
		{"ssh", "qemu+ssh://host/system", "not supported"},
		{"not a URI", "::", "not a URI"},
	} {
		_, err := Connect(ctx, c.uri)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	conn := connect(t, pairEPs[2].URL) // qemu+tcp
	if _, err := conn.Lookup(ctx, "no-such-domain"); err == nil || !strings.Contains(err.Error(), `no domain named "no-such-domain"`) {
		t.Errorf("unknown domain: %v", err)
	}
	if h, err := conn.Host(ctx); err != nil || h.LibvirtVersion == "" || h.URI != pairEPs[2].URL {
		t.Errorf("host over TCP: %+v %v", h, err)
	}

	// Credentials: over TLS the daemon takes only clients whose certificate its CA signed.
	tlsURI := pairEPs[4].URL
	if h, err := connect(t, tlsURI).Host(ctx); err != nil || h.LibvirtVersion == "" {
		t.Errorf("host over TLS: %+v %v", h, err)
	}
	foreign, err := testbed.LibvirtForeignClient(tlsURI, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	_, err = Connect(ctx, foreign)
	t.Logf("foreign client certificate: %v", err)
	if err == nil || !strings.Contains(err.Error(), "did not accept this client's certificate") || strings.Contains(err.Error(), "\n") {
		t.Errorf("a client certificate of another CA: %v", err)
	}
}
