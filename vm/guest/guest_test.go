package guest

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// readCPIO parses a newc archive: name -> (mode, data, rdev major).
func readCPIO(t *testing.T, b []byte) map[string][3]string {
	t.Helper()
	out := map[string][3]string{}
	for len(b) > 0 {
		if len(b) < 110 || string(b[:6]) != "070701" {
			t.Fatalf("bad header at %q", b[:min(len(b), 20)])
		}
		field := func(i int) int {
			v, err := strconv.ParseUint(string(b[6+8*i:14+8*i]), 16, 32)
			if err != nil {
				t.Fatal(err)
			}
			return int(v)
		}
		mode, size, rmajor, namesize := field(1), field(6), field(9), field(11)
		name := string(b[110 : 110+namesize-1])
		off := (110 + namesize + 3) &^ 3
		data := b[off : off+size]
		b = b[(off+size+3)&^3:]
		if name == "TRAILER!!!" {
			break
		}
		out[name] = [3]string{fmt.Sprintf("%o", mode), string(data), strconv.Itoa(rmajor)}
	}
	return out
}

func TestWriteCPIO(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	os.WriteFile(src, []byte("from a file"), 0o644)
	var buf bytes.Buffer
	err := writeCPIO(&buf, []cpioEntry{
		{Name: "/init", Mode: 0o755, Data: []byte("#!/bin/sh\n")},
		{Name: "lib/modules/a.ko", Mode: 0o644, Source: src},
		{Name: "dev/console", Mode: 0o600, CharDev: &[2]uint32{5, 1}},
		{Name: "proc", Mode: 0o755, Dir: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := readCPIO(t, buf.Bytes())
	want := map[string][3]string{
		"init":             {"100755", "#!/bin/sh\n", "0"},
		"lib":              {"40755", "", "0"},
		"lib/modules":      {"40755", "", "0"},
		"lib/modules/a.ko": {"100644", "from a file", "0"},
		"dev":              {"40755", "", "0"},
		"dev/console":      {"20600", "", "5"},
		"proc":             {"40755", "", "0"},
	}
	if len(got) != len(want) {
		t.Fatalf("entries %v", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %v, want %v", k, got[k], v)
		}
	}
	// Parents come before children (the kernel creates files in archive order).
	if i, j := bytes.Index(buf.Bytes(), []byte("lib/modules\x00")), bytes.Index(buf.Bytes(), []byte("lib/modules/a.ko")); i > j {
		t.Error("directory after its file")
	}
	if err := writeCPIO(io.Discard, []cpioEntry{{Name: "x", Source: "/nonexistent"}}); err == nil {
		t.Error("missing source accepted")
	}
}

// fakeKernelELF is a minimal x86-64 ELF with one PT_NOTE holding a Xen note of type typ.
func fakeKernelELF(typ uint32) []byte {
	note := new(bytes.Buffer)
	binary.Write(note, binary.LittleEndian, []uint32{4, 8, typ})
	note.WriteString("Xen\x00")
	note.Write(make([]byte, 8))
	b := new(bytes.Buffer)
	ident := []byte{0x7f, 'E', 'L', 'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	b.Write(ident)
	binary.Write(b, binary.LittleEndian, struct {
		Type, Machine                                   uint16
		Version                                         uint32
		Entry, Phoff, Shoff                             uint64
		Flags                                           uint32
		Ehsize, Phentsize, Phnum, Shentsize, Shnum, Shx uint16
	}{2, 62, 1, 0x1000000, 64, 0, 0, 64, 56, 1, 64, 0, 0})
	binary.Write(b, binary.LittleEndian, struct {
		Type, Flags                             uint32
		Off, Vaddr, Paddr, Filesz, Memsz, Align uint64
	}{4, 4, 120, 0, 0, uint64(note.Len()), uint64(note.Len()), 4})
	b.Write(note.Bytes())
	return b.Bytes()
}

// fakeBzImage wraps payload the way the boot protocol describes it.
func fakeBzImage(payload []byte) []byte {
	setupSects := 4
	bz := make([]byte, (setupSects+1)*512+100)
	bz[0x1f1] = byte(setupSects)
	copy(bz[0x202:], "HdrS")
	binary.LittleEndian.PutUint16(bz[0x206:], 0x20f)
	binary.LittleEndian.PutUint32(bz[0x248:], 100) // payload offset from the protected-mode code
	binary.LittleEndian.PutUint32(bz[0x24c:], uint32(len(payload)))
	return append(append(bz, payload...), []byte("trailing")...)
}

func TestExtractVmlinux(t *testing.T) {
	dir := t.TempDir()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(fakeKernelELF(xenElfnotePhys32Entry))
	zw.Close()
	bz := filepath.Join(dir, "vmlinuz")
	os.WriteFile(bz, fakeBzImage(gz.Bytes()), 0o644)
	out := filepath.Join(dir, "vmlinux")
	if err := extractVmlinux(context.Background(), bz, out); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(out)
	if !bytes.Equal(got, fakeKernelELF(xenElfnotePhys32Entry)) {
		t.Fatal("extracted kernel differs")
	}

	// A kernel without the PVH note is refused (QEMU would not boot it as PVH).
	gz.Reset()
	zw = gzip.NewWriter(&gz)
	zw.Write(fakeKernelELF(5))
	zw.Close()
	os.WriteFile(bz, fakeBzImage(gz.Bytes()), 0o644)
	if err := extractVmlinux(context.Background(), bz, out+"2"); err == nil || !strings.Contains(err.Error(), "PVH") {
		t.Fatalf("kernel without PVH note: %v", err)
	}
	if _, err := os.Stat(out + "2"); !os.IsNotExist(err) {
		t.Error("output left behind after a failure")
	}
	for name, data := range map[string][]byte{
		"not a bzImage":  []byte("hello"),
		"unknown format": fakeBzImage([]byte("\x00\x01\x02\x03 plain")),
		"lz4":            fakeBzImage([]byte{0x02, 0x21, 0x4c, 0x18, 0, 0}),
	} {
		os.WriteFile(bz, data, 0o644)
		if err := extractVmlinux(context.Background(), bz, out+"3"); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestIsStatic(t *testing.T) {
	p := filepath.Join(t.TempDir(), "k")
	os.WriteFile(p, fakeKernelELF(1), 0o755)
	if ok, err := IsStatic(p); err != nil || !ok {
		t.Errorf("static ELF: %v %v", ok, err)
	}
	os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755)
	if _, err := IsStatic(p); err == nil {
		t.Error("a script is not an ELF file")
	}
}

func TestInitScript(t *testing.T) {
	s := initScript()
	if !strings.HasPrefix(s, "#!/bin/busybox sh\n") || !strings.Contains(s, "agent --port "+AgentPortName) || !strings.Contains(s, "poweroff -f") {
		t.Errorf("init script:\n%s", s)
	}
}

func TestStripModuleSignature(t *testing.T) {
	body := []byte("\x7fELF module body")
	sig := []byte("PKCS7 signature bytes")
	info := make([]byte, 12)
	binary.BigEndian.PutUint32(info[8:], uint32(len(sig)))
	signed := append(append(append(append([]byte{}, body...), sig...), info...), moduleSigMagic...)
	if got := stripModuleSignature(signed); !bytes.Equal(got, body) {
		t.Fatalf("stripped to %q", got)
	}
	if got := stripModuleSignature(body); !bytes.Equal(got, body) {
		t.Fatal("an unsigned module was changed")
	}
	bad := append(append([]byte{}, info...), moduleSigMagic...)
	binary.BigEndian.PutUint32(bad[8:], 1000)
	if got := stripModuleSignature(bad); !bytes.Equal(got, bad) {
		t.Fatal("a bad signature length cut the module")
	}
}

func TestLoadStages(t *testing.T) {
	cases := []struct {
		name string
		mods []Module
		want string
	}{
		{"none", nil, ""},
		{"chain", []Module{{Name: "a"}, {Name: "b", Depends: []string{"a"}}, {Name: "c", Depends: []string{"b"}}}, "a|b|c"},
		{"virtio", []Module{
			{Name: "virtio_ring"}, {Name: "virtio", Depends: []string{"virtio_ring"}},
			{Name: "virtio_pci_modern_dev"}, {Name: "virtio_pci_legacy_dev"},
			{Name: "virtio_pci", Depends: []string{"virtio", "virtio_ring", "virtio_pci_legacy_dev", "virtio_pci_modern_dev"}},
			{Name: "virtio_blk", Depends: []string{"virtio", "virtio_ring"}},
			{Name: "virtio_console", Depends: []string{"virtio", "virtio_ring"}},
		}, "virtio_ring virtio_pci_modern_dev virtio_pci_legacy_dev|virtio|virtio_pci virtio_blk virtio_console"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			for _, st := range loadStages(c.mods) {
				got = append(got, strings.Join(st, " "))
			}
			if g := strings.Join(got, "|"); g != c.want {
				t.Errorf("stages %q, want %q", g, c.want)
			}
		})
	}
}
