package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/internal/progress"
	"github.com/vmstorbench/vmstorbench/results"
	"github.com/vmstorbench/vmstorbench/runner"
	"github.com/vmstorbench/vmstorbench/testbed"
	"github.com/vmstorbench/vmstorbench/vm/agent"
	"github.com/vmstorbench/vmstorbench/vm/drbdnode/node"
	"github.com/vmstorbench/vmstorbench/vm/guest"
	"github.com/vmstorbench/vmstorbench/vm/hv/libvirt"
	"github.com/vmstorbench/vmstorbench/vm/hv/libvirt/lvsupport"
	hvqemu "github.com/vmstorbench/vmstorbench/vm/hv/qemu"
	"github.com/vmstorbench/vmstorbench/vm/linkemu"
	"github.com/vmstorbench/vmstorbench/vm/migrate"
	"github.com/vmstorbench/vmstorbench/workloads"
	"github.com/vmstorbench/vmstorbench/workloads/units"
)

// imageFlags say where the guest image comes from; vm image, migrate and suite run share them.
type imageFlags struct{ spec runner.ImageSpec }

func (f *imageFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.spec.CacheDir, "cache", guest.DefaultCacheDir(), "cache directory for guest images, kernels and the KVM check ($VMSTORBENCH_CACHE)")
	fs.StringVar(&f.spec.Kernel, "kernel", "", "guest kernel (vmlinuz) to use instead of the newest installed Debian 6.1 kernel")
	fs.StringVar(&f.spec.Modules, "modules", "", "modules directory for --kernel (default /lib/modules/<version>)")
	fs.StringVar(&f.spec.Agent, "agent", "", "static agent binary to run in the guest (default: the agent alone built with CGO_ENABLED=0 from the source tree, else this binary if static)")
	fs.BoolVar(&f.spec.Download, "download", true, "when no Debian 6.1 kernel is installed or cached, fetch "+guest.KernelMetaPackage+"'s kernel with apt-get download into the cache (--download=false: use only an installed or cached one)")
	fs.BoolVar(&f.spec.Rebuild, "rebuild", false, "rebuild the image even if it is cached")
}

func (f *imageFlags) build(ctx context.Context, log func(string)) (*guest.Image, error) {
	return runner.BuildImage(ctx, f.spec, log)
}

// newVMCmd is "vm" with its "image" subcommand.
func newVMCmd() *cobra.Command {
	vm := &cobra.Command{
		Use:   "vm",
		Short: "The guest used by 'migrate': build and inspect it",
	}
	var f imageFlags
	var jsonOut bool
	img := &cobra.Command{
		Use:   "image",
		Short: "Build (or find in the cache) the guest image: Debian kernel, busybox initramfs, vmstorbench as agent",
		Long: `Build the small guest 'migrate' boots: the Debian 6.1 kernel (uncompressed to vmlinux for a
fast PVH boot), a busybox-static initramfs with the virtio modules, and this vmstorbench
binary (built static if it is not) as the in-guest agent. The image is cached under --cache
by the hash of everything that goes into it.

Needs: qemu-system-x86, busybox-static, and linux-image-amd64 installed, or apt-get to fetch its kernel into
the cache (the default when none is installed; --download=false to refuse).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			stderr := cmd.ErrOrStderr()
			start := time.Now()
			im, err := f.build(cmd.Context(), func(s string) { fmt.Fprintln(stderr, s) })
			if err != nil {
				return err
			}
			if jsonOut {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(im)
			}
			how := "built"
			if im.Cached {
				how = "cached"
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "guest image %s (%s in %s)\n", im.Hash, how, time.Since(start).Round(time.Millisecond))
			fmt.Fprintf(out, "  kernel   %s (%s, %s) from %s\n", im.Kernel, im.KernelVersion, im.KernelFormat, im.KernelSource)
			fmt.Fprintf(out, "  initrd   %s (%s)\n", im.Initrd, fileSize(im.Initrd))
			fmt.Fprintf(out, "  modules  %s\n", strings.Join(im.Modules, " "))
			fmt.Fprintf(out, "  cmdline  %s\n", im.Cmdline)
			return nil
		},
	}
	f.register(img.Flags())
	img.Flags().BoolVar(&jsonOut, "json", false, "print the image description as JSON")
	vm.AddCommand(img)
	return vm
}

func fileSize(path string) string {
	st, err := os.Stat(path)
	if err != nil {
		return "?"
	}
	return fmt.Sprintf("%.1f MiB", float64(st.Size())/(1<<20))
}

// newAgentCmd is the in-guest agent, started by the guest's /init.
func newAgentCmd() *cobra.Command {
	var o agent.Options
	cmd := &cobra.Command{
		Use:    "agent",
		Short:  "In-guest agent of 'migrate' (runs inside the VM)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return agent.Run(cmd.Context(), o)
		},
	}
	cmd.Flags().StringVar(&o.Port, "port", guest.AgentPortName, "virtio-serial port name")
	cmd.Flags().StringVar(&o.Modules, "modules", "", "file listing kernel modules to load first")
	cmd.Flags().BoolVar(&o.Init, "init", false, "run as the guest's first process: mount /proc, /sys, /dev and power off at the end")
	return cmd
}

// newNodeCmd is the agent of a testbed DRBD node, started by the node guest's kernel: the
// fallback node agent when no source tree is at hand to build vm/internal/drbdnode.
func newNodeCmd() *cobra.Command {
	return &cobra.Command{
		Use:                "node",
		Short:              "Agent of a testbed DRBD node (runs inside the node guest)",
		Hidden:             true,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if code := node.Main(args, cmd.ErrOrStderr()); code != 0 {
				return fmt.Errorf("node agent exited with status %d", code)
			}
			return nil
		},
	}
}

type migrateOptions struct {
	img              imageFlags
	target           string
	profile          string
	fio              string
	mode             string
	at, after        time.Duration
	repeat           int
	maxBandwidth     string
	downtimeLimit    time.Duration
	deadline         time.Duration
	postcopyAfter    time.Duration
	postcopyIters    int
	security         string
	link             string
	storageLink      string
	outside          string
	checkMemory      bool
	accel            string
	memory           int
	diskSize         string
	access           string
	noVerify         bool
	resultsDir       string
	noSave           bool
	jsonOut          bool
	quiet            bool
	keep             bool
	allowDestructive bool
	labels           []string
	testbedDir       string
	storage          string
	to               string
	diskLink         string
	checkImage       bool
	wattsPerCore     float64
	mirrorCopyMode   string
	lv               libvirtFlags
}

// libvirtFlags are migrate's options for --hypervisor libvirt.
type libvirtFlags struct {
	hypervisor, sourceURI, destURI, domain string
	peerToPeer, tunnelled, unsafe          bool
	destURIFromSource                      string
}

func (f *libvirtFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.hypervisor, "hypervisor", "qemu", "qemu (QEMU processes vmstorbench starts) | libvirt (domains of two libvirt daemons: --source-uri, --dest-uri)")
	fs.StringVar(&f.sourceURI, "source-uri", "", "libvirt: the source daemon's URI (qemu:///system, qemu+tcp://HOST/system, qemu+tls://HOST/system, qemu+unix:///session?socket=PATH, testbed:libvirt-1)")
	fs.StringVar(&f.destURI, "dest-uri", "", "libvirt: the destination daemon's URI (as --source-uri; testbed:libvirt-2)")
	fs.StringVar(&f.domain, "domain", "", "libvirt: measure this existing domain on the source instead of booting vmstorbench's guest (with the agent when it has the org.vmstorbench.agent.0 channel)")
	fs.BoolVar(&f.peerToPeer, "peer-to-peer", false, "libvirt: the source daemon drives the migration and connects to the destination daemon itself (VIR_MIGRATE_PEER2PEER)")
	fs.BoolVar(&f.tunnelled, "tunnelled", false, "libvirt: send the migration stream through the daemons' connection (needs --peer-to-peer)")
	fs.StringVar(&f.destURIFromSource, "dest-uri-from-source", "", "libvirt, --peer-to-peer: the destination's URI as the source daemon reaches it (default --dest-uri)")
	fs.BoolVar(&f.unsafe, "unsafe-migration", false, "libvirt: migrate even when libvirt does not take the disk for shared storage (a local file both daemons of one machine open; VIR_MIGRATE_UNSAFE)")
}

// config checks the flags and returns the libvirt driver's configuration (nil for qemu);
// testbed:NAME URIs are resolved from the testbed's state in dir.
func (f *libvirtFlags) config(o *migrateOptions, dir string) (*libvirt.DriverConfig, error) {
	switch f.hypervisor {
	case hvqemu.Name:
		if f.sourceURI != "" || f.destURI != "" || f.domain != "" || f.peerToPeer || f.tunnelled || f.unsafe || f.destURIFromSource != "" {
			return nil, errors.New("--source-uri, --dest-uri, --domain, --peer-to-peer, --tunnelled, --dest-uri-from-source and --unsafe-migration need --hypervisor libvirt")
		}
		return nil, nil
	case libvirt.DriverName:
	default:
		return nil, fmt.Errorf("--hypervisor %q: want qemu or libvirt", f.hypervisor)
	}
	if f.sourceURI == "" || f.destURI == "" {
		return nil, errors.New("--hypervisor libvirt needs --source-uri and --dest-uri (the two daemons; after 'vmstorbench testbed up --with libvirt': testbed:libvirt-1 and testbed:libvirt-2)")
	}
	// The storage and checking options are the same rules as a suite scenario's.
	if err := lvsupport.Check(lvsupport.Choices{
		Storage: o.storage, MirrorCopyMode: o.mirrorCopyMode, Target: o.target, Access: o.access, To: o.to, Mode: o.mode,
		Domain: f.domain, Link: o.link != "", DiskLink: o.diskLink != "", CheckMemory: o.checkMemory,
	}, lvsupport.Flags); err != nil {
		return nil, err
	}
	refs, err := resolveTestbedTargets([]string{f.sourceURI, f.destURI}, false, dir)
	if err != nil {
		return nil, err
	}
	cfg := &libvirt.DriverConfig{
		SourceURI: refs[0].URL, DestURI: refs[1].URL, Domain: f.domain, AllowDestructive: o.allowDestructive,
		PeerToPeer: f.peerToPeer, Tunnelled: f.tunnelled, DestURIFromSource: f.destURIFromSource, Unsafe: f.unsafe,
	}
	return cfg, (libvirt.MigrateOptions{Live: true, PeerToPeer: f.peerToPeer, Tunnelled: f.tunnelled}).Validate()
}

// newMigrateCmd is "migrate": the workload inside a guest that is live-migrated.
func newMigrateCmd() *cobra.Command {
	o := &migrateOptions{}
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Run a workload inside a VM whose disk is on the target while the VM is live-migrated",
		Long: `Boot a small guest on a source QEMU with its disk on --target, run the workload in it,
migrate it to a destination QEMU while it runs, keep it running after, read the data back
from the destination, and save one result document with QEMU's migration figures, the
guest's I/O per 100 ms as timestamped on the host, and downtime seen both ways.

  vmstorbench migrate --target file:///var/tmp --profile oltp
  vmstorbench migrate --target file:///var/tmp --mode postcopy --link wan
  vmstorbench migrate --target testbed:nfs-ganesha --check-memory   (after 'vmstorbench testbed up')
  vmstorbench migrate --target smb://bench@127.0.0.1:4450/vms --security tls-verify-peer
  vmstorbench migrate --target file:///var/tmp --storage mirror --link lan   (no shared storage)
  vmstorbench migrate --target file:///var/tmp --storage copy --to file:///srv/b
  vmstorbench migrate --target file:///mnt/nas-a --mode none --storage mirror --to file:///mnt/nas-b   (move the disk only)
  vmstorbench migrate --target testbed:nbd-qemu --hypervisor libvirt --source-uri testbed:libvirt-1 --dest-uri testbed:libvirt-2
  vmstorbench migrate --target iscsi://nas/iqn.2026-12.lab:vm/0 --hypervisor libvirt --source-uri qemu+tls://hv1/system --dest-uri qemu+tls://hv2/system --domain web1

QEMU opens file:// images itself; other backends are served to it over an NBD export
inside vmstorbench (--access nbd forces that for file:// too). KVM is tried (--accel auto)
and TCG used when it does not boot the guest.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runMigrate(cmd, o) },
	}
	f := cmd.Flags()
	f.SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		return pflag.NormalizedName(strings.ReplaceAll(name, "_", "-"))
	})
	o.img.register(f)
	f.StringVarP(&o.target, "target", "t", "", "where the VM's disk lives: a directory (a scratch image is created), an image file, or any backend URL")
	f.StringVarP(&o.profile, "profile", "p", "oltp", "workload profile run inside the guest; see 'vmstorbench profiles'")
	f.StringVar(&o.fio, "fio", "", "fio options on top of the profile: 'rw=randwrite bs=4k iodepth=8'")
	addFioFlags(f)
	f.StringVar(&o.mode, "mode", migrate.ModePrecopy, "precopy | postcopy | stopcopy (stop, migrate, continue) | none (the guest baseline, no migration)")
	f.DurationVar(&o.at, "at", 3*time.Second, "workload time before the migration starts")
	f.DurationVar(&o.after, "after", 3*time.Second, "workload time after the migration ends")
	f.IntVar(&o.repeat, "repeat", 1, "run the whole scenario N times (one result each)")
	f.StringVar(&o.maxBandwidth, "max-bandwidth", "", "QEMU max-bandwidth in bytes/s (fio units: 100m), default QEMU's")
	f.DurationVar(&o.downtimeLimit, "downtime-limit", 0, "QEMU downtime-limit (e.g. 300ms), default QEMU's")
	f.DurationVar(&o.deadline, "deadline", 60*time.Second, "cancel a migration that has not completed after this long (the guest stays on the source)")
	f.DurationVar(&o.postcopyAfter, "postcopy-after", 0, "postcopy: switch to post-copy this long after the migration started")
	f.IntVar(&o.postcopyIters, "postcopy-iterations", 0, "postcopy: switch after this many pre-copy iterations (default 1 when --postcopy-after is not given)")
	f.StringVar(&o.security, "security", migrate.SecurityNone, "none | tls | tls-verify-peer (x509 credentials generated for the run)")
	f.StringVar(&o.link, "link", "", "emulated link between the hypervisors: lan, wan, or latency=20ms,jitter=5ms,bandwidth=100mbit; cut=5s fails the link 5 s after it comes up (the workload's start)")
	f.StringVar(&o.storageLink, "storage-link", "", "emulated link between the hypervisors and the storage (NBD export or iSCSI disks): lan, wan, or a spec as for --link; on a testbed DRBD pair (each host on its own replica) the replication link between the nodes")
	f.StringVar(&o.outside, "outside", "", "also run the workload on the host against this target (another file or LUN of the backend) while the guest runs it")
	f.BoolVar(&o.checkMemory, "check-memory", false, "start the destination paused and compare guest RAM of both sides before it continues (precopy, stopcopy; refused with --mode postcopy, whose destination must run before it holds all RAM: post-copy runs verify the disk instead, the workload's own verify pass and the read-back on the destination)")
	f.StringVar(&o.accel, "accel", "auto", "auto (KVM if it boots the guest, else TCG) | kvm | tcg")
	f.IntVar(&o.memory, "memory", 256, "guest memory in MiB")
	f.StringVar(&o.diskSize, "disk-size", "32m", "size of the scratch image created in a directory target, and at most the region the guest uses of an existing image or LUN")
	f.StringVar(&o.access, "access", migrate.AccessAuto, "how QEMU reaches the disk: auto | native | nbd (vmstorbench's NBD export of the backend)")
	f.BoolVar(&o.noVerify, "no-verify", false, "do not write verifiable blocks (no integrity check)")
	f.StringVar(&o.resultsDir, "results", defaultResultsDir, "directory for result documents")
	f.BoolVar(&o.noSave, "no-save", false, "do not save result documents")
	f.BoolVar(&o.jsonOut, "json", false, "print the result document(s) as JSON")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "no live status")
	f.BoolVar(&o.keep, "keep", false, "keep the scratch image")
	f.BoolVar(&o.allowDestructive, "allow-destructive", false, "allow using an existing image or device as the guest's disk (it is overwritten)")
	f.StringArrayVar(&o.labels, "label", nil, "key=value label stored in the results (repeatable)")
	f.StringVar(&o.testbedDir, "testbed-state", testbed.DefaultDir(), "state directory of the testbed for testbed:NAME targets")
	f.StringVar(&o.storage, "storage", migrate.StorageShared, "how the disk gets to the destination: shared (both open the same image) | copy (stop, copy the image, continue) | two-phase (copy live, then send the changed blocks found by checksums) | mirror (QEMU mirrors the disk to the destination's NBD export while the VM runs)")
	f.StringVar(&o.to, "to", "", "where the disk goes (--storage copy, two-phase, mirror): a directory (a new image is made), an image, or any backend URL; default a new image in a scratch directory")
	f.StringVar(&o.diskLink, "disk-link", "", "emulated link for the disk stream between the hypervisors (default: the shape of --link, as a link of its own; unshaped but counted without --link)")
	f.BoolVar(&o.checkImage, "check-image", true, "compare the destination image with the source's block by block at switchover (the VM stays stopped meanwhile; the time is reported and left out of the disruption)")
	f.StringVar(&o.mirrorCopyMode, "mirror-copy-mode", "background", "--storage mirror: background (new writes copied later, in 64 KiB chunks; may never converge when the guest writes faster than the link) | write-blocking (each guest write waits until the destination has it too)")
	o.lv.register(f)
	f.Float64Var(&o.wattsPerCore, "watts-per-core", migrate.DefaultWattsPerCore, "power of one busy logical CPU for the energy estimate (default: Cloud Carbon Footprint's AWS average max watts per vCPU, from SPECpower results); the estimate is CPU-seconds × this")
	return cmd
}

func runMigrate(cmd *cobra.Command, o *migrateOptions) error {
	// Everything up to the guest image is checking input: refused with exitUsage.
	ctx := cmd.Context()
	stderr := cmd.ErrOrStderr()
	if o.target == "" {
		return usage(errors.New("no target: give --target (a directory for a scratch image, e.g. --target file:///var/tmp)"))
	}
	if o.repeat < 1 {
		return usage(fmt.Errorf("--repeat %d: must be at least 1", o.repeat))
	}
	// testbed:NAME as for run, for the guest's disk and the outside workload.
	refs, err := resolveTestbedTargets([]string{o.target, o.outside}, false, o.testbedDir)
	if err != nil {
		return usage(err)
	}
	o.target, o.outside = refs[0].URL, refs[1].URL
	labels, err := parseLabels(o.labels)
	if err != nil {
		return usage(err)
	}
	w, err := migrateWorkload(cmd, o)
	if err != nil {
		return usage(err)
	}
	diskSize, err := units.ParseSize(o.diskSize)
	if err != nil || diskSize <= 0 {
		return usage(fmt.Errorf("--disk-size %q: want a size like 64m", o.diskSize))
	}
	var maxBW int64
	if o.maxBandwidth != "" {
		if maxBW, err = units.ParseSize(o.maxBandwidth); err != nil || maxBW <= 0 {
			return usage(fmt.Errorf("--max-bandwidth %q: want bytes/s like 100m", o.maxBandwidth))
		}
	}
	var link, storageLink, diskLink *linkemu.Link
	for _, l := range []struct {
		spec string
		dst  **linkemu.Link
	}{{o.link, &link}, {o.storageLink, &storageLink}, {o.diskLink, &diskLink}} {
		if l.spec != "" {
			parsed, err := linkemu.Parse(l.spec)
			if err != nil {
				return usage(err)
			}
			*l.dst = &parsed
		}
	}
	if o.outside != "" {
		if _, err := runner.LookupTarget(o.outside); err != nil {
			return usage(fmt.Errorf("--outside: %w", err))
		}
	}
	// A method the mode cannot do is refused before anything is built or started.
	if err := (migrate.Config{
		Mode: o.mode, Security: o.security, CheckMemory: o.checkMemory, Accel: o.accel,
		Storage: o.storage, To: o.to, WattsPerCore: o.wattsPerCore, MirrorCopyMode: o.mirrorCopyMode,
	}).Validate(); err != nil {
		return usage(err)
	}
	lvCfg, err := o.lv.config(o, o.testbedDir)
	if err != nil {
		return usage(err)
	}
	if !o.noSave {
		if err := runner.EnsureWritableDir(o.resultsDir); err != nil {
			return usage(err)
		}
	}
	live := !o.quiet && isTerminal(stderr)
	logf := func(format string, args ...any) {
		if !o.quiet {
			fmt.Fprintf(stderr, "\r\033[K"+format+"\n", args...)
		}
	}
	if !live {
		logf = func(format string, args ...any) {
			if !o.quiet {
				fmt.Fprintf(stderr, format+"\n", args...)
			}
		}
	}
	img, err := o.img.build(ctx, func(s string) { logf("%s", s) })
	if err != nil {
		return err
	}

	spec := runner.MigrationSpec{
		Config: migrate.Config{
			Image: img, Accel: o.accel, CacheDir: o.img.spec.CacheDir, MemoryMiB: o.memory,
			Workload: w, NoVerify: o.noVerify,
			Mode: o.mode, At: o.at, After: o.after,
			PostcopyAfter: o.postcopyAfter, PostcopyIterations: o.postcopyIters,
			MaxBandwidth: maxBW, DowntimeLimit: o.downtimeLimit, Deadline: o.deadline,
			Security: o.security, Link: link, StorageLink: storageLink, CheckMemory: o.checkMemory,
			OutsideTarget: o.outside, Storage: o.storage, To: o.to,
			DiskLink: diskLink, NoImageCheck: !o.checkImage, WattsPerCore: o.wattsPerCore, MirrorCopyMode: o.mirrorCopyMode,
			Labels: labels, Profile: o.profile, Command: runner.RedactArgs(os.Args),
		},
		Target:      o.target,
		DiskOptions: migrate.DiskOptions{Size: diskSize, Access: o.access, AllowDestructive: o.allowDestructive, Keep: o.keep},
		Libvirt:     lvCfg,
	}

	var runs []*results.Run
	var failures, corrupt, migFailed int
	exit := exitOK
	for rep := 0; rep < o.repeat && ctx.Err() == nil; rep++ {
		h := runner.Hooks{Logf: logf}
		if !o.quiet {
			h.Phase = progress.Phases(stderr, live, o.mode, time.Now())
		}
		run, err := runner.RunMigration(ctx, spec, h)
		if live {
			fmt.Fprint(stderr, progress.ClearLine)
		}
		if run != nil {
			run.Repeat, run.Repeats = rep, o.repeat
			if !o.noSave {
				path, serr := results.Save(o.resultsDir, run)
				if serr != nil {
					return serr
				}
				logf("saved %s", path)
			}
			runs = append(runs, run)
		}
		var mig *results.Migration
		if run != nil {
			mig = run.Migration
		}
		class := runExit(run, err)
		exit = worseExit(exit, class)
		// Each failure is told as it happens, on stderr, the cause first.
		switch {
		case class == exitVerify:
			fmt.Fprintf(stderr, "vmstorbench: migrate: %s\n", run.Verify.Problem())
			corrupt++
		case class == exitFailed:
			if err == nil {
				err = errors.New(run.Problem())
			}
			fmt.Fprintf(stderr, "vmstorbench: migrate: %v\n", err)
			failures++
		case class == exitMigration:
			why := mig.Failure
			if why == "" {
				why = "no cause recorded"
			}
			fmt.Fprintf(stderr, "vmstorbench: migrate: migration %s, the workload went on running on the source: %s\n", mig.Outcome, why)
			migFailed++
		}
	}
	out := cmd.OutOrStdout()
	if o.jsonOut {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if len(runs) == 1 {
			if err := enc.Encode(runs[0]); err != nil {
				return err
			}
		} else if err := enc.Encode(runs); err != nil {
			return err
		}
	} else {
		for _, r := range runs {
			printMigration(out, r)
		}
	}
	switch {
	case ctx.Err() != nil:
		return &exitError{code: exitInterrupted, err: errors.New("interrupted")}
	case corrupt > 0:
		return &exitError{code: exitVerify, err: fmt.Errorf("verify failed in %d of %d migration runs: data did not read back as written (see above)", corrupt, o.repeat)}
	case exit == exitFailed:
		return &exitError{code: exitFailed, err: fmt.Errorf("%d of %d migration runs failed (see above)", failures, o.repeat)}
	case exit == exitMigration:
		return &exitError{code: exitMigration, err: fmt.Errorf("the migration did not complete in %d of %d runs (see above)", migFailed, o.repeat)}
	}
	return nil
}

// migrateWorkload is the profile with the fio flags and --fio applied; notes go to stderr.
func migrateWorkload(cmd *cobra.Command, o *migrateOptions) (workloads.Workload, error) {
	w, notes, err := runner.MigrationWorkload(o.profile, flagOptions(cmd.Flags(), o.fio))
	for _, n := range notes {
		fmt.Fprintf(cmd.ErrOrStderr(), "note: %s\n", n)
	}
	return w, err
}

// printMigration prints one run's summary.
func printMigration(w io.Writer, r *results.Run) {
	m := r.Migration
	fmt.Fprintf(w, "\nmigration %s: %s   accel %s   disk %s (%s)   security %s", m.Mode, strings.ToUpper(m.Outcome), m.Accel, backends.RedactString(r.Target.URL), m.Access, m.Security)
	if m.Link != nil {
		fmt.Fprintf(w, "   link %s", m.Link.Preset)
	}
	if m.StorageLink != nil {
		fmt.Fprintf(w, "   storage link %s", m.StorageLink.Preset)
	}
	fmt.Fprintf(w, "\n  workload %s in the guest (%s, kernel %s, %.0f MiB)\n", r.Workload.Describe(), "vmstorbench agent", m.GuestKernel, float64(m.GuestMemoryB)/(1<<20))
	if m.Failure != "" {
		fmt.Fprintf(w, "  failure    %s\n", m.Failure)
	}
	fmt.Fprintf(w, "  downtime   QEMU %s   pause (host, STOP->RESUME) %.1f ms   longest I/O stall %.1f ms", m.QEMUDowntimeText(), m.PauseMS, m.LongestStallMS)
	if m.CheckPauseMS > 0 {
		fmt.Fprintf(w, " (not counting %.1f ms paused for vmstorbench's checks)", m.CheckPauseMS)
	}
	if m.DowntimeLimitExceeded {
		fmt.Fprintf(w, "   QEMU EXCEEDED the downtime-limit")
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  migration  total %.0f ms   setup %s   transferred %s   iterations %s", m.TotalTimeMS,
		m.RAMFigureText(fmt.Sprintf("%.0f ms", m.SetupTimeMS)), m.RAMFigureText(fmt.Sprintf("%.1f MB", float64(m.TransferredB)/1e6)), m.RAMFigureText(fmt.Sprint(m.DirtySyncCount)))
	if m.PostcopyReqs > 0 {
		fmt.Fprintf(w, "   post-copy requests %d", m.PostcopyReqs)
	}
	fmt.Fprintf(w, "   boot %.1f s\n", float64(m.BootNS)/1e9)
	if m.Storage != "" && m.Storage != migrate.StorageShared {
		fmt.Fprintf(w, "  storage    %s to %s (%s)   migration %.0f ms   disruption %.0f ms   disk stream %.1f MB\n", m.Storage, m.DestinationDisk, m.DestinationAccess, m.MigrationTimeMS, m.DisruptionMS, float64(m.DiskTransferredB)/1e6)
	}
	for _, p := range m.Phases {
		fmt.Fprintf(w, "    %-16s %8.0f ms .. %8.0f ms", p.Name, float64(p.StartNS-m.StartNS)/1e6, float64(p.EndNS-m.StartNS)/1e6)
		if p.Bytes > 0 {
			fmt.Fprintf(w, "   %.1f MB", float64(p.Bytes)/1e6)
		}
		fmt.Fprintln(w)
	}
	for _, t := range m.Traffic {
		shape := t.Shape
		if shape == "" {
			shape = "unshaped relay"
		}
		fmt.Fprintf(w, "  link %-7s (%s) %10.1f MB out, %8.1f MB back\n", t.Link, shape, float64(t.UpB)/1e6, float64(t.DownB)/1e6)
	}
	printReplication(w, m.Replication)
	if c := m.Cost; c != nil {
		fmt.Fprintf(w, "  cost       CPU %.2f s (source QEMU %s, destination QEMU %s, vmstorbench %s) over %.1f s   energy estimate %.0f J at %.1f W per busy core",
			c.TotalCPUS, c.CPUText(results.CostSource, c.SourceCPUS), c.CPUText(results.CostDestination, c.DestinationCPUS), c.CPUText(results.CostHelpers, c.HelpersCPUS),
			float64(c.WallNS)/1e9, c.EnergyEstimateJ, c.WattsPerCore)
		if len(c.Unmeasured) > 0 {
			fmt.Fprint(w, " (measured processes only)")
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "  %-8s %10s %10s %12s %12s %12s\n", "period", "IOPS", "MB/s", "lat mean", "lat p99", "max stall")
	for _, p := range []struct {
		name string
		ph   *results.MigrationPhase
	}{{"before", m.Before}, {"during", m.During}, {"after", m.After}} {
		if p.ph == nil {
			continue
		}
		fmt.Fprintf(w, "  %-8s %10.0f %10.2f %12s %12s %12s\n", p.name, p.ph.IOPS, p.ph.BWBps/1e6,
			time.Duration(p.ph.LatMeanNS).Round(time.Microsecond), time.Duration(p.ph.LatP99NS).Round(time.Microsecond),
			time.Duration(p.ph.LongestStallNS).Round(time.Millisecond))
	}
	if in := m.Integrity; in != nil {
		switch {
		case in.ReadBack != nil:
			verdict := "clean"
			if in.ReadBack.Mismatches > 0 {
				verdict = fmt.Sprintf("%d MISMATCHES", in.ReadBack.Mismatches)
			}
			fmt.Fprintf(w, "  integrity  read back on the %s: %d blocks checked, %s\n", in.Where, in.ReadBack.Checked, verdict)
			for _, mm := range in.ReadBack.First {
				fmt.Fprintf(w, "    offset %d: %s\n", mm.Offset, mm.Reason)
			}
		case in.Note != "":
			fmt.Fprintf(w, "  integrity  %s\n", in.Note)
		}
	}
	if out := m.Outside; out != nil {
		var iops, bw float64
		for _, d := range []*results.DirStats{out.Read, out.Write} {
			if d != nil {
				iops, bw = iops+d.IOPS, bw+d.BWBps
			}
		}
		fmt.Fprintf(w, "  outside    the host on %s at the same time: %.0f IOPS, %.2f MB/s\n", backends.RedactString(out.Target.URL), iops, bw/1e6)
	}
	if ic := m.ImageCheck; ic != nil {
		switch {
		case ic.Error != "":
			fmt.Fprintf(w, "  image      not compared: %s\n", ic.Error)
		default:
			fmt.Fprintf(w, "  image      %d of %d blocks differ between the source and destination images at %s (check kept the VM stopped %.0f ms)\n", ic.DifferingBlocks, ic.Blocks, ic.When, float64(ic.PauseNS)/1e6)
			for i, off := range ic.Differing {
				if i == 16 {
					fmt.Fprintf(w, "    ... %d more in the result document\n", len(ic.Differing)-16)
					break
				}
				fmt.Fprintf(w, "    block at offset %d differs\n", off)
			}
		}
	}
	if mc := m.Memory; mc != nil {
		fmt.Fprintf(w, "  memory     %d of %d pages differ between source and destination\n", mc.DifferingPages, mc.Pages)
	}
	for _, n := range m.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
}
