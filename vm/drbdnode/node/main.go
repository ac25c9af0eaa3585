package node

import (
	"context"
	"flag"
	"fmt"
	"io"

	"golang.org/x/sys/unix"

	"github.com/vmstorbench/vmstorbench/vm/agent"
)

// Main is the node agent's command line ("node --init --name a ..."), shared by its own
// binary (vm/internal/drbdnode) and vmstorbench's hidden "node" command (the fallback when
// no source tree is at hand to build the small binary). It returns the exit status.
func Main(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("node", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c Config
	fs.StringVar(&c.Name, "name", "a", "node name")
	fs.StringVar(&c.Addr, "addr", "", "replication address")
	fs.StringVar(&c.Peer, "peer", "", "peer's replication address")
	fs.StringVar(&c.Protocol, "protocol", "C", "DRBD protocol")
	fs.BoolVar(&c.Primary, "primary", false, "promote this node")
	fs.StringVar(&c.ReplMAC, "repl-mac", "", "MAC of the replication NIC")
	fs.StringVar(&c.HostMAC, "host-mac", "", "MAC of the host NIC")
	fs.StringVar(&c.Modules, "modules", "/lib/modules/load.order", "modules to load")
	initProc := fs.Bool("init", false, "run as the guest's first process")
	err := fs.Parse(args)
	if err == nil && *initProc {
		err = agent.MountKernelFilesystems()
	}
	if err == nil {
		err = agent.LoadModules(c.Modules)
	}
	if err == nil {
		err = Run(context.Background(), c)
	}
	if err != nil {
		fmt.Fprintln(stderr, "drbdnode:", err)
	}
	if *initProc {
		// The first process must not exit (the kernel would panic): power off instead.
		unix.Sync()
		_ = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	}
	if err != nil {
		return 1
	}
	return 0
}
