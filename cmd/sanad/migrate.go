package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newMigrateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply the embedded database migrations (also done at start-up)",
		Args:  cobra.NoArgs,
	}
	loadConfig := configFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, db, err := openConfiguredStore(cmd.Context(), loadConfig)
		if err != nil {
			return err
		}
		defer db.Close()
		fmt.Fprintf(cmd.OutOrStdout(), "%s database is up to date\n", cfg.Database.Driver)
		return nil
	}
	return cmd
}
