// Package version reports the program's version from the build information.
package version

import "runtime/debug"

// Override is set with -ldflags "-X github.com/vmstorbench/vmstorbench/internal/version.Override=v1.2.3".
var Override string

// String is the version of the running binary: the override, the module version, or "dev".
func String() string {
	if Override != "" {
		return Override
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
