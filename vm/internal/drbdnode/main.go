// Command drbdnode is the agent of a testbed DRBD node (vm/drbdnode/node): the guest's
// first process, started by the kernel with the node's part after "--".
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/vmstorbench/vmstorbench/vm/agent"
	"github.com/vmstorbench/vmstorbench/vm/drbdnode/node"
)

func main() {
	if len(os.Args) < 2 || os.Args[1] != "node" {
		fmt.Fprintln(os.Stderr, "usage: drbdnode node --name a --addr IP --peer IP [--primary] ...")
		os.Exit(2)
	}
	fs := flag.NewFlagSet("node", flag.ContinueOnError)
	var c node.Config
	fs.StringVar(&c.Name, "name", "a", "node name")
	fs.StringVar(&c.Addr, "addr", "", "replication address")
	fs.StringVar(&c.Peer, "peer", "", "peer's replication address")
	fs.StringVar(&c.Protocol, "protocol", "C", "DRBD protocol")
	fs.BoolVar(&c.Primary, "primary", false, "promote this node")
	fs.StringVar(&c.ReplMAC, "repl-mac", "", "MAC of the replication NIC")
	fs.StringVar(&c.HostMAC, "host-mac", "", "MAC of the host NIC")
	fs.StringVar(&c.Modules, "modules", "/lib/modules/load.order", "modules to load")
	initProc := fs.Bool("init", false, "run as the guest's first process")
	err := fs.Parse(os.Args[2:])
	if err == nil && *initProc {
		err = agent.MountKernelFilesystems()
	}
	if err == nil {
		err = agent.LoadModules(c.Modules)
	}
	if err == nil {
		err = node.Run(context.Background(), c)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "drbdnode:", err)
	}
	if *initProc {
		// The first process must not exit (the kernel would panic): power off instead.
		unix.Sync()
		_ = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	}
	if err != nil {
		os.Exit(1)
	}
}
