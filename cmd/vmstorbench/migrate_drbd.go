package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/vmstorbench/vmstorbench/results"
)

// printReplication prints a replicated disk's part of a migration summary: the replication
// bytes next to the links' and the role changes.
func printReplication(w io.Writer, r *results.MigrationReplication) {
	if r == nil {
		return
	}
	mb := func(b int64) string {
		if b < 0 {
			return "?"
		}
		return fmt.Sprintf("%.1f MB", float64(b)/1e6)
	}
	link := "as the pair was set up"
	if r.Link != nil {
		link = r.Link.Preset
	}
	fmt.Fprintf(w, "  replica    %s protocol %s, %s to %s, replication link %s: %s before, %s during the migration, %s after\n",
		r.Kind, r.Protocol, r.Source, r.Destination, link, mb(r.BeforeB), mb(r.DuringB), mb(r.AfterB))
	if r.Note != "" {
		fmt.Fprintf(w, "    note: %s\n", r.Note)
	}
	for _, st := range r.Steps {
		var nodes []string
		for _, n := range st.Nodes {
			two := ""
			if n.TwoPrimaries != nil {
				two = map[bool]string{true: ", two-primaries on", false: ", two-primaries off"}[*n.TwoPrimaries]
			}
			nodes = append(nodes, fmt.Sprintf("%s %s (%s%s)", n.Node, n.Role, n.Connection, two))
		}
		fmt.Fprintf(w, "    %-13s at %6.2f s, %5.0f ms: %s", st.Name, float64(st.TNS)/1e9, float64(st.DurationNS)/1e6, strings.Join(nodes, "; "))
		if st.Error != "" {
			fmt.Fprintf(w, "   ERROR %s", st.Error)
		}
		fmt.Fprintln(w)
	}
}
