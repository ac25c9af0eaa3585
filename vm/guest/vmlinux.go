package guest

import (
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"context"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"

	"github.com/klauspost/compress/zstd"
)

// The uncompressed kernel (vmlinux, an ELF file with a PVH entry point) boots about twice as
// fast as the bzImage under TCG: QEMU loads it straight into guest memory and enters it in
// 32-bit protected mode, skipping real-mode setup and the in-guest decompression, which TCG
// emulates slowly. extractVmlinux does what the kernel's scripts/extract-vmlinux does, using
// the payload offset and length from the bzImage header (boot protocol 2.08+).

// payload formats by magic, as the kernel's own decompressors recognise them.
var payloadMagics = []struct {
	name  string
	magic []byte
}{
	{"gzip", []byte{0x1f, 0x8b}},
	{"xz", []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}},
	{"zstd", []byte{0x28, 0xb5, 0x2f, 0xfd}},
	{"bzip2", []byte("BZh")},
	{"lzma", []byte{0x5d, 0x00, 0x00}},
	{"lz4", []byte{0x02, 0x21, 0x4c, 0x18}},
	{"lzo", []byte{0x89, 'L', 'Z', 'O'}},
}

// bzPayload returns the compressed kernel inside a bzImage and its format.
func bzPayload(bz []byte) ([]byte, string, error) {
	if len(bz) < 0x250 || string(bz[0x202:0x206]) != "HdrS" {
		return nil, "", errors.New("not a bzImage (no HdrS header)")
	}
	proto := binary.LittleEndian.Uint16(bz[0x206:])
	if proto < 0x208 {
		return nil, "", fmt.Errorf("bzImage boot protocol %#x has no payload fields (need 2.08+)", proto)
	}
	setupSects := int(bz[0x1f1])
	if setupSects == 0 {
		setupSects = 4
	}
	base := (setupSects + 1) * 512
	off := base + int(binary.LittleEndian.Uint32(bz[0x248:]))
	n := int(binary.LittleEndian.Uint32(bz[0x24c:]))
	if off < 0 || n <= 0 || off+n > len(bz) {
		return nil, "", fmt.Errorf("bzImage payload %d+%d lies outside the file (%d bytes)", off, n, len(bz))
	}
	p := bz[off : off+n]
	for _, m := range payloadMagics {
		if bytes.HasPrefix(p, m.magic) {
			return p, m.name, nil
		}
	}
	return nil, "", fmt.Errorf("bzImage payload has an unknown compression (magic % x)", p[:min(6, len(p))])
}

// extractVmlinux decompresses the kernel in bzImage into out and checks that it is an ELF
// kernel with a PVH entry note. gzip, bzip2 and zstd are decoded in Go; xz (Debian's choice)
// with the xz tool (xz-utils, or busybox's xzcat).
func extractVmlinux(ctx context.Context, bzImage, out string) error {
	bz, err := os.ReadFile(bzImage)
	if err != nil {
		return fmt.Errorf("extract vmlinux: %w", err)
	}
	payload, format, err := bzPayload(bz)
	if err != nil {
		return fmt.Errorf("extract vmlinux from %s: %w", bzImage, err)
	}
	tmp := out + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("extract vmlinux: %w", err)
	}
	defer os.Remove(tmp)
	err = decompress(ctx, format, payload, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("extract vmlinux from %s (%s): %w", bzImage, format, err)
	}
	if err := checkPVH(tmp); err != nil {
		return fmt.Errorf("extract vmlinux from %s: %w", bzImage, err)
	}
	return os.Rename(tmp, out)
}

func decompress(ctx context.Context, format string, payload []byte, w io.Writer) error {
	switch format {
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(payload))
		if err != nil {
			return err
		}
		zr.Multistream(false)
		_, err = io.Copy(w, zr)
		return err
	case "bzip2":
		_, err := io.Copy(w, bzip2.NewReader(bytes.NewReader(payload)))
		return err
	case "zstd":
		zr, err := zstd.NewReader(bytes.NewReader(payload))
		if err != nil {
			return err
		}
		defer zr.Close()
		_, err = io.Copy(w, zr)
		return err
	case "xz":
		var cmd *exec.Cmd
		tolerant := false
		if p, err := exec.LookPath("xz"); err == nil {
			// --single-stream: stop at the end of the kernel and ignore what follows it.
			cmd = exec.CommandContext(ctx, p, "-dc", "--single-stream")
		} else if p, err := exec.LookPath("busybox"); err == nil {
			cmd = exec.CommandContext(ctx, p, "xzcat")
			tolerant = true
		} else {
			return errors.New("xz-compressed kernel and neither xz (xz-utils) nor busybox is installed")
		}
		var stderr bytes.Buffer
		cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(payload), w, &stderr
		if err := cmd.Run(); err != nil {
			// busybox xzcat complains about the bytes after the stream but has written the
			// kernel: the ELF check decides.
			if !tolerant {
				return fmt.Errorf("%s: %v: %s", cmd.Path, err, bytes.TrimSpace(stderr.Bytes()))
			}
		}
		return nil
	}
	return fmt.Errorf("%s-compressed kernels are not supported; boot the bzImage instead", format)
}

// xenElfnotePhys32Entry is XEN_ELFNOTE_PHYS32_ENTRY, the note QEMU's PVH boot looks for.
const xenElfnotePhys32Entry = 18

// checkPVH checks that path is an x86-64 ELF kernel with a PVH entry point.
func checkPVH(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("decompressed kernel is not an ELF file: %w", err)
	}
	defer f.Close()
	if f.Machine != elf.EM_X86_64 {
		return fmt.Errorf("decompressed kernel is for %s, not x86-64", f.Machine)
	}
	for _, p := range f.Progs {
		if p.Type != elf.PT_NOTE {
			continue
		}
		data := make([]byte, p.Filesz)
		if _, err := p.ReadAt(data, 0); err != nil {
			return err
		}
		for len(data) >= 12 {
			namesz := int(binary.LittleEndian.Uint32(data[0:]))
			descsz := int(binary.LittleEndian.Uint32(data[4:]))
			typ := binary.LittleEndian.Uint32(data[8:])
			off := 12
			name := data[off:min(len(data), off+namesz)]
			off += (namesz + 3) &^ 3
			off += (descsz + 3) &^ 3
			if bytes.Equal(bytes.TrimRight(name, "\x00"), []byte("Xen")) && typ == xenElfnotePhys32Entry {
				return nil
			}
			if off > len(data) {
				break
			}
			data = data[off:]
		}
	}
	return errors.New("the kernel has no PVH entry note (CONFIG_PVH): boot the bzImage instead")
}
