// Command drbdnode is the agent of a testbed DRBD node (vm/drbdnode/node): the guest's
// first process, started by the kernel with the node's part after "--".
package main

import (
	"fmt"
	"os"

	"github.com/vmstorbench/vmstorbench/vm/drbdnode/node"
)

func main() {
	if len(os.Args) < 2 || os.Args[1] != "node" {
		fmt.Fprintln(os.Stderr, "usage: drbdnode node --name a --addr IP --peer IP [--primary] ...")
		os.Exit(2)
	}
	os.Exit(node.Main(os.Args[2:], os.Stderr))
}
