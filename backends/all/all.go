// Package all links every backend into a program: import it for its side effects.
package all

import (
	_ "github.com/vmstorbench/vmstorbench/backends/drbd"
	_ "github.com/vmstorbench/vmstorbench/backends/file"
	_ "github.com/vmstorbench/vmstorbench/backends/iscsi"
	_ "github.com/vmstorbench/vmstorbench/backends/mem"
	_ "github.com/vmstorbench/vmstorbench/backends/nbd"
	_ "github.com/vmstorbench/vmstorbench/backends/nfs"
	_ "github.com/vmstorbench/vmstorbench/backends/null"
	_ "github.com/vmstorbench/vmstorbench/backends/smb"
)
