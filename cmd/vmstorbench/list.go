package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/workloads"
)

func newBackendsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "backends",
		Short: "List the registered backends with their URL forms and options",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w := cmd.OutOrStdout()
			for _, b := range backends.Default.List() {
				fmt.Fprintf(w, "%s — %s\n", b.Scheme, b.Description)
				for _, f := range b.URLForms {
					fmt.Fprintf(w, "    %s\n", f)
				}
				for _, o := range b.Options {
					def := ""
					if o.Default != "" {
						def = " (default " + o.Default + ")"
					}
					fmt.Fprintf(w, "    ?%s=  %s%s\n", o.Name, o.Help, def)
				}
				fmt.Fprintln(w)
			}
			return nil
		},
	}
}

func newProfilesCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "profiles",
		Short: "List the named workload profiles (use with run --profile NAME)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w := cmd.OutOrStdout()
			for _, p := range workloads.Profiles() {
				fmt.Fprintf(w, "%-14s %s\n%-14s %s\n", p.Name, p.Description, "", strings.TrimSpace(p.Workload.Describe()))
			}
			return nil
		},
	}
}
