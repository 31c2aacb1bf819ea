package main

import (
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sanadpki/sanad/ra"
)

// knownRoles are the roles of DESIGN.md §6. Every role serves the operator
// endpoints; the role handlers arrive with their issues (ra: 6, ca: 5,
// status: 7, verify: 8, tsa: later).
var knownRoles = []string{"ra", "ca", "status", "verify", "tsa"}

func newServeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the configured roles (ra, ca, status, verify, tsa)",
		Args:  cobra.NoArgs,
	}
	loadConfig := configFlag(cmd)
	roles := cmd.Flags().StringSlice("roles", knownRoles, "roles to serve, comma-separated")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		for _, r := range *roles {
			if !slices.Contains(knownRoles, r) {
				return usagef("--roles: unknown role %q (known: %s)", r, strings.Join(knownRoles, ", "))
			}
		}
		cfg, err := loadConfig()
		if err != nil {
			return err
		}
		log := newLogger(cfg.Log, cmd.ErrOrStderr())
		ctx := cmd.Context()
		if slices.Contains(*roles, "ra") && !slices.Contains(*roles, "ca") {
			return usagef("--roles: the ra role issues through the ca role in the same process; serve both")
		}
		// The status tier holds no key (DESIGN.md §1): a node that serves
		// only status (and verify, which checks signatures) opens no HSM
		// and signs no audit checkpoints, which the CA's nodes do; unless
		// it signs answers to nonces (ocsp.nonce: sign).
		keyless := !slices.Contains(*roles, "ca") && !slices.Contains(*roles, "tsa") && cfg.OCSP.Nonce != "sign"
		var s *service
		if keyless {
			s, err = openKeylessService(ctx, cfg, log)
		} else {
			s, err = openService(ctx, cfg, log)
		}
		if err != nil {
			return err
		}
		defer s.close()
		if !keyless {
			if err := s.findAuditKey(ctx); err != nil {
				return err
			}
		}
		if slices.Contains(*roles, "ca") {
			if cfg.CA.BaseURL == "" {
				return fmt.Errorf("the ca role needs ca.base_url: the public URL certificates point relying parties at")
			}
			authority, err := openCA(ctx, s, cfg.PublicBaseURL())
			if err != nil {
				return err
			}
			if err := authority.start(ctx, s); err != nil {
				return err
			}
			if slices.Contains(*roles, "ra") {
				if cfg.RA.OutboxDir != "" {
					// The dev outbox is not a way to send codes: they stay on
					// this host, in files and in this log.
					s.log.Warn("ra.outbox_dir is for development: one-time codes are written to files there and to this log, not sent; production sets ra.notify_webhook",
						"outbox_dir", cfg.RA.OutboxDir)
				}
				if err := startRA(ctx, s, authority, cfg.RA); err != nil {
					return err
				}
			}
		}
		if slices.Contains(*roles, "status") {
			if err := startStatus(ctx, s); err != nil {
				return err
			}
		}
		if slices.Contains(*roles, "verify") {
			if err := startVerify(ctx, s); err != nil {
				return err
			}
			if !slices.Contains(*roles, "ra") {
				// The API document describes the verify route too.
				s.routes = append(s.routes, func(mux *http.ServeMux) { mux.HandleFunc("GET /api/v1/openapi.json", ra.ServeOpenAPI) })
			}
		}
		return s.serve(ctx, func(a net.Addr) {
			log.Info("sanad serving", "addr", a.String(), "roles", strings.Join(*roles, ","), "database", cfg.Database.Driver)
		})
	}
	return cmd
}
