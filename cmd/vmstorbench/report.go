package main

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/vmstorbench/vmstorbench/report"
	"github.com/vmstorbench/vmstorbench/results"
)

func newReportCmd() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "report RESULTS...",
		Short: "Render saved result documents (files, directories or globs) side by side",
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return errors.New("report: name result files or directories (e.g. results/)")
			}
			runs, err := results.LoadAll(args...)
			if err != nil {
				return err
			}
			if len(runs) == 0 {
				return errors.New("report: no result documents found")
			}
			return report.Render(cmd.OutOrStdout(), runs, format)
		},
	}
	cmd.Flags().StringVar(&format, "format", "table", "table|md|csv")
	return cmd
}
