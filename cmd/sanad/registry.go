package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sanadpki/sanad/ca/ceremony/transcript"
	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/ra"
)

func newRegistryCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "registry", Short: "The national registry's events: what was received, rechecking subjects, and signing one as a registry would"}
	cmd.AddCommand(newRegistryEventsCmd(), newRegistrySignEventCmd(), newRegistryRecheckCmd())
	return cmd
}

// registryEventLine is a received event as sanad registry events prints
// it: as an officer's find shows it, with its subject and what the RA did.
type registryEventLine struct {
	ra.RegistryEventView
	SubjectID string `json:"subject_id,omitempty"` // the store's id
	// Subject is the subject's semantics identifier (IDCKZ-…, NTRPK-…),
	// as certificates, find and recheck name it.
	Subject string          `json:"subject,omitempty"`
	Result  json.RawMessage `json:"result,omitempty"`
}

func newRegistryEventsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "events",
		Short: "List the registry events received, oldest first, with what the RA did about each",
		Long: `Events prints the registry events the RA received (POST /api/v1/registry/events),
oldest first, one per line: id, kind, when it occurred and was received, the
key that signed it, its outcome (pending, applied, ignored, failed), and the
subject it concerns (its semantics identifier, "-" for none the RA knows). Ids
are the country and the registry's event id (KZ/1001). With --json, each line
carries what the RA did (result: the certificates revoked and the enrollments
rejected). An event pending did not finish yet (a revocation the CA could not
make): the RA carries it on every minute, as does the registry's next
delivery. A failed one no longer verifies with the registry's keys (one was
withdrawn since it came): an operator looks.`,
		Args: cobra.NoArgs,
	}
	loadConfig := configFlag(cmd)
	since := cmd.Flags().String("since", "", "received at or after this time (RFC 3339; default: 30 days ago)")
	pending := cmd.Flags().Bool("pending", false, "only the events not acted on yet")
	limit := cmd.Flags().Int("limit", 1000, "at most this many events")
	asJSON := cmd.Flags().Bool("json", false, "print JSON lines")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		from := time.Now().Add(-30 * 24 * time.Hour)
		if *since != "" {
			at, err := time.Parse(time.RFC3339, *since)
			if err != nil {
				return usagef("--since %q: not an RFC 3339 time, e.g. 2026-11-30T00:00:00Z", *since)
			}
			from = at
		}
		if *limit < 1 {
			return usagef("--limit must be at least 1")
		}
		_, db, err := openConfiguredStore(cmd.Context(), loadConfig)
		if err != nil {
			return err
		}
		defer db.Close()
		events, err := db.RegistryEvents(cmd.Context(), from, *pending, *limit)
		if err != nil {
			return err
		}
		w := cmd.OutOrStdout()
		if len(events) == 0 && !*asJSON {
			what := "none received"
			if *pending {
				what = "none waiting to be acted on, received"
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "sanad registry events: %s since %s\n", what, from.UTC().Format(time.RFC3339))
		}
		subjects := map[string]string{} // store id → semantics identifier
		for _, ev := range events {
			line := registryEventLine{RegistryEventView: ra.ViewRegistryEvent(ev), SubjectID: ev.SubjectID}
			if id := ev.SubjectID; id != "" {
				if _, seen := subjects[id]; !seen {
					subj, err := db.Subject(cmd.Context(), id)
					if err != nil {
						return err
					}
					subjects[id] = subj.NationalID
				}
				line.Subject = subjects[id]
			}
			if json.Valid([]byte(ev.OutcomeDetail)) {
				line.Result = json.RawMessage(ev.OutcomeDetail)
			}
			if *asJSON {
				out, err := json.Marshal(line)
				if err != nil {
					return err
				}
				fmt.Fprintln(w, string(out))
				continue
			}
			// The id and the source come from the registry: printed so
			// that they cannot drive the terminal.
			subject := line.Subject
			if subject == "" {
				subject = "-" // no subject the RA knows
			}
			fmt.Fprintf(w, "%s\t%s\toccurred %s\treceived %s\t%s\t%s\t%s\n", transcript.Printable(ev.EventID), ev.Kind,
				ev.OccurredAt.Format(time.RFC3339), ev.ReceivedAt.Format(time.RFC3339), transcript.Printable(ev.Source), ev.Outcome, subject)
		}
		if len(events) == *limit {
			fmt.Fprintf(cmd.ErrOrStderr(), "sanad registry events: %d events, the --limit: there may be more\n", len(events))
		}
		return nil
	}
	return cmd
}

func newRegistrySignEventCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sign-event",
		Short: "Sign a registry event as the national registry would and print it, or with --url send it and print the answer",
		Long: `Sign-event makes the compact JWS a national registry sends the RA
(POST /api/v1/registry/events): a death (--kind death --national-id), a
dissolution (--kind dissolution --registration-number) or an authority change
(--kind authority_change --registration-number --representative-id). It is
for trying the RA (sanad dev writes the sample registry's key and names it in
./var/dev.json as registry_event_key) and for a registry's integration tests.

The key is a PEM private key file (0600) or pkcs11:LABEL, a key on the
configured token; the RA trusts it if ra.registry_event_keys_file holds its
public key.`,
		Args: cobra.NoArgs,
	}
	loadConfig := configFlag(cmd)
	key := cmd.Flags().String("key", "", "the registry's signing key: a PEM file, or pkcs11:LABEL (default after sanad dev: ./var/dev.json's registry_event_key)")
	kind := cmd.Flags().String("kind", "", "death, dissolution or authority_change")
	country := cmd.Flags().String("country", "", "the country of the identifier (KZ, PK)")
	nationalID := cmd.Flags().String("national-id", "", "death: the person's identifier")
	registration := cmd.Flags().String("registration-number", "", "dissolution, authority_change: the business's identifier")
	repCountry := cmd.Flags().String("representative-country", "", "authority_change: the representative's country (default --country)")
	repID := cmd.Flags().String("representative-id", "", "authority_change: the person who may no longer sign for the business")
	eventID := cmd.Flags().String("event-id", "", "the event's id (default: a random one); a redelivery repeats the id and --occurred-at of the first, which then answers as before, and the same id with anything else is event-conflict")
	occurred := cmd.Flags().String("occurred-at", "", "when it happened (RFC 3339; default: now)")
	url := cmd.Flags().String("url", "", "send the event to this RA (its base URL) and print the answer")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		ev := ra.RegistryEvent{EventID: *eventID, Kind: *kind, Country: *country, NationalID: *nationalID, RegistrationNumber: *registration, OccurredAt: time.Now().UTC().Truncate(time.Second)}
		if ev.EventID == "" {
			b := make([]byte, 16)
			if _, err := rand.Read(b); err != nil {
				return err
			}
			ev.EventID = hex.EncodeToString(b)
		}
		if *occurred != "" {
			at, err := time.Parse(time.RFC3339, *occurred)
			if err != nil {
				return usagef("--occurred-at %q: not an RFC 3339 time", *occurred)
			}
			ev.OccurredAt = at
		}
		if *repID != "" {
			c := *repCountry
			if c == "" {
				c = *country
			}
			ev.Representative = &ra.EventPerson{Country: c, NationalID: *repID}
		}
		if ev.Kind == "" || ev.Country == "" {
			return usagef("sign-event needs --kind and --country")
		}
		keyPath := *key
		if keyPath == "" {
			m, err := readDevManifest()
			if err == nil && m.RegistryEventKey == "" {
				err = errors.New("var/dev.json names no registry_event_key")
			}
			if err != nil {
				return usagef("sign-event needs --key: %v", err)
			}
			keyPath = m.RegistryEventKey
		}
		signer, closeKey, err := loadSigner(cmd.Context(), keyPath, loadConfig)
		if err != nil {
			return err
		}
		defer closeKey()
		compact, err := ra.SignRegistryEvent(ev, signer, time.Now())
		if err != nil {
			return err
		}
		if *url == "" {
			fmt.Fprintln(cmd.OutOrStdout(), compact)
			return nil
		}
		_, err = sendSigned(cmd.Context(), cmd.OutOrStdout(), http.MethodPost, strings.TrimSuffix(*url, "/")+"/api/v1/registry/events", compact)
		return err
	}
	return cmd
}

func newRegistryRecheckCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "recheck [SUBJECT...]",
		Short: "Ask the registry again about subjects, and do what its death or dissolution event would have done",
		Long: `Recheck asks the configured national registry (ra.registry_file or
ra.registry_url) about each SUBJECT, a semantics identifier (IDCKZ-…, NTRPK-…),
or with --all about every subject holding a good certificate, in id order. A
person the registry records as deceased, or a business as inactive, is
treated as its registry event would have been (POST /api/v1/registry/events):
good certificates revoked, cessationOfOperation, open enrollments rejected,
all audited, the event recorded as recheck.<record hash> with source
recheck:<registry>. Rechecking against the same record does nothing more,
unless a certificate the event revokes is still good. A subject the registry
no longer has is reported, not acted on: an officer decides. --dry-run only
reports what the registry says.

It runs with the CA's keys (the configured HSM token), tells holders of the
revocations through ra.notify_webhook (or ra.outbox_dir), which it needs,
and publishes the CRL of each issuing CA after revoking. One line per subject; --json for JSON lines.`,
	}
	loadConfig := configFlag(cmd)
	all := cmd.Flags().Bool("all", false, "every subject holding a good certificate")
	limit := cmd.Flags().Int("limit", 10000, "with --all, at most this many subjects")
	asJSON := cmd.Flags().Bool("json", false, "print JSON lines")
	dryRun := cmd.Flags().Bool("dry-run", false, "only report what the registry says; revoke and reject nothing")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if *all == (len(args) > 0) {
			return usagef("recheck needs SUBJECT arguments or --all, not both")
		}
		if *limit < 1 {
			return usagef("--limit must be at least 1")
		}
		cfg, err := loadConfig()
		if err != nil {
			return err
		}
		if cfg.RA.RegistryFile == "" && cfg.RA.RegistryURL == "" {
			return usagef("recheck needs ra.registry_file or ra.registry_url in the configuration")
		}
		ctx := cmd.Context()
		s, authority, err := openServiceWithCA(ctx, cfg, newLogger(cfg.Log, cmd.ErrOrStderr()))
		if err != nil {
			return err
		}
		defer s.close()
		raCfg := cfg.RA
		if raCfg.OutboxDir == "" && raCfg.NotifyWebhook == "" {
			return usagef("recheck needs ra.notify_webhook (or ra.outbox_dir): holders are told of revocations")
		}
		svc, err := openRA(s, authority, raCfg)
		if err != nil {
			return err
		}
		w := cmd.OutOrStdout()
		events, failed := 0, 0
		check := func(subject string) {
			res, err := svc.Recheck(ctx, subject, !*dryRun)
			if err != nil {
				failed++
				fmt.Fprintf(cmd.ErrOrStderr(), "sanad registry recheck: %s: %v\n", transcript.Printable(subject), err)
				return
			}
			if res.Event != nil {
				events++
			}
			if *asJSON {
				out, err := json.Marshal(res)
				if err == nil {
					fmt.Fprintln(w, string(out))
				}
				return
			}
			line := fmt.Sprintf("%s\t%s", transcript.Printable(res.Subject), res.Registry)
			if e := res.Event; e != nil {
				line += fmt.Sprintf("\trevoked %d, rejected %d enrollments (event %s/%s", len(e.Revoked), len(e.Ended), e.Country, e.EventID)
				if e.Repeated {
					line += ", done before"
				}
				line += ")"
			}
			fmt.Fprintln(w, line)
		}
		if *all {
			after, n := "", 0
			defer func() {
				if n >= *limit {
					fmt.Fprintf(cmd.ErrOrStderr(), "sanad registry recheck: stopped at the --limit of %d subjects, after %s\n", *limit, after)
				}
			}()
			for n < *limit {
				page, err := s.db.SubjectsWithGoodCertificates(ctx, after, time.Now(), min(500, *limit-n))
				if err != nil {
					return err
				}
				if len(page) == 0 {
					break
				}
				for _, subj := range page {
					check(subj.NationalID)
				}
				after, n = page[len(page)-1].ID, n+len(page)
			}
		} else {
			for _, subject := range args {
				check(subject)
			}
		}
		// The service's publishers build CRLs on their own changes, and
		// find others' within a minute; these revocations are this
		// process's, published now. A CRL number another node took first
		// is taken again.
		if events > 0 {
			for _, is := range authority.all() {
				var err error
				for try := 0; try < 3; try++ {
					if _, err = is.publisher.PublishCRL(ctx); !errors.Is(err, store.ErrConflict) {
						break
					}
				}
				if err != nil {
					return fmt.Errorf("publish the CRL after the revocations: %w", err)
				}
			}
		}
		if failed > 0 {
			return fmt.Errorf("%d subjects could not be rechecked", failed)
		}
		return nil
	}
	return cmd
}
