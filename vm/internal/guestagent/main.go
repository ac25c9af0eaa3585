// Command guestagent is the in-guest agent alone (guest.AgentPackage): what `vmstorbench
// agent` runs, with only the file backend linked in (the guest's disk is a local block
// device), so that the guest starts it fast. Guest images built from the source tree, and
// the vm packages' tests, run it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	_ "github.com/vmstorbench/vmstorbench/backends/file"
	"github.com/vmstorbench/vmstorbench/vm/agent"
)

func main() {
	if len(os.Args) < 2 || os.Args[1] != "agent" {
		fmt.Fprintln(os.Stderr, "usage: guestagent agent --port NAME [--modules FILE]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet("agent", flag.ExitOnError)
	port := fs.String("port", "", "virtio-serial port name")
	modules := fs.String("modules", "", "file listing kernel modules to load first")
	init := fs.Bool("init", false, "run as the guest's first process")
	_ = fs.Parse(os.Args[2:])
	if err := agent.Run(context.Background(), agent.Options{Port: *port, Modules: *modules, Init: *init}); err != nil {
		fmt.Fprintln(os.Stderr, "agent:", err)
		os.Exit(1)
	}
}
