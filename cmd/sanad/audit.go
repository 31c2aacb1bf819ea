package main

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sanadpki/sanad/ca/ceremony/transcript"
	"github.com/sanadpki/sanad/internal/audit"
	"github.com/sanadpki/sanad/internal/store"
)

func newAuditCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Work with the tamper-evident audit log"}
	cmd.AddCommand(newAuditVerifyCmd(), newAuditListCmd(), newAuditCheckpointCmd(), newAuditRestoredCmd())
	return cmd
}

// auditLine is an audit event as sanad audit list prints it. HashOK says
// whether the event's stored hash is the hash of what it says now: an edit
// of one event shows there; sanad audit verify checks the whole chain and
// the signed checkpoints.
type auditLine struct {
	Seq     int64           `json:"seq"`
	Time    time.Time       `json:"time"`
	Actor   string          `json:"actor"`
	Action  string          `json:"action"`
	Object  string          `json:"object"`
	Details json.RawMessage `json:"details,omitempty"`
	// DetailsRaw holds details that are not JSON (only an edited row's),
	// as text.
	DetailsRaw string `json:"details_raw,omitempty"`
	Hash       string `json:"hash"`
	HashOK     bool   `json:"hash_ok"`
}

// auditLineOf is ev as sanad audit list prints it.
func auditLineOf(ev store.AuditEvent) auditLine {
	l := auditLine{Seq: ev.Seq, Time: ev.Time.UTC(), Actor: ev.Actor, Action: ev.Action, Object: ev.Object,
		Hash: hex.EncodeToString(ev.Hash), HashOK: bytes.Equal(audit.Hash(ev), ev.Hash)}
	if json.Valid(ev.Details) {
		l.Details = json.RawMessage(ev.Details)
	} else {
		l.DetailsRaw = string(ev.Details)
	}
	return l
}

// text is l on one line for a terminal: a field with a control character
// (only an edited row's) is quoted, so that it cannot drive the terminal.
func (l auditLine) text() string {
	details := string(l.Details)
	if l.Details == nil {
		details = l.DetailsRaw
	}
	line := fmt.Sprintf("%d\t%s\t%s\t%s\t%s\t%s", l.Seq, l.Time.Format(time.RFC3339), transcript.Printable(l.Actor), transcript.Printable(l.Action), transcript.Printable(l.Object), transcript.Printable(details))
	if !l.HashOK {
		line += "\tHASH MISMATCH: edited since written"
	}
	return line
}

func newAuditListCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List audit events: what happened to an object, what an actor did, one kind of action, in a time range",
		Long: `List prints the audit events the filters choose, oldest first, one per line
(JSON lines with --json). Each event's hash is recomputed; hash_ok false is an
event edited since it was written. sanad audit verify checks the whole chain
and its signed checkpoints.

Objects are named as the audit log names them: enrollment/<id>,
<issuer>/<serial> for a certificate (the serial in hex, which --object takes
in either case, as openssl x509 -serial prints it or lower), officer/<SHA-256
fingerprint>. --object is answered by an index; the other filters read every
event after --after-seq.`,
		Args: cobra.NoArgs,
	}
	loadConfig := configFlag(cmd)
	var f store.AuditFilter
	object := cmd.Flags().String("object", "", "the object, e.g. enrollment/ID or issuing/SERIAL")
	cmd.Flags().StringVar(&f.Actor, "actor", "", "who acted, e.g. officer:<name>, holder:<SERIAL> or system:notice")
	cmd.Flags().StringVar(&f.Action, "action", "", "the action, e.g. certificate.revoke")
	since := cmd.Flags().String("since", "", "logged at or after this time (RFC 3339)")
	until := cmd.Flags().String("until", "", "logged before this time (RFC 3339)")
	cmd.Flags().Int64Var(&f.AfterSeq, "after-seq", 0, "only events after this sequence number")
	cmd.Flags().IntVar(&f.Limit, "limit", 1000, "at most this many events")
	asJSON := cmd.Flags().Bool("json", false, "print JSON lines")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		for _, t := range []struct {
			flag string
			s    *string
			to   *time.Time
		}{{"--since", since, &f.Since}, {"--until", until, &f.Until}} {
			if *t.s == "" {
				continue
			}
			at, err := time.Parse(time.RFC3339, *t.s)
			if err != nil {
				return usagef("%s %q: not an RFC 3339 time, e.g. 2026-11-30T00:00:00Z", t.flag, *t.s)
			}
			*t.to = at
		}
		if f.Limit < 1 || f.AfterSeq < 0 {
			return usagef("--limit must be at least 1, --after-seq not negative")
		}
		// A serial or fingerprint typed otherwise than the log names it is
		// found too; the object as typed is always asked (an HSM key
		// object's label may look like hex).
		if *object != "" {
			f.Objects = []string{*object}
			if o := auditObject(*object); o != *object {
				f.Objects = append(f.Objects, o)
			}
		}
		_, db, err := openConfiguredStore(cmd.Context(), loadConfig)
		if err != nil {
			return err
		}
		defer db.Close()
		events, err := db.ListAuditEvents(cmd.Context(), f)
		if err != nil {
			return err
		}

		w := cmd.OutOrStdout()
		for _, ev := range events {
			line := auditLineOf(ev)
			if !*asJSON {
				fmt.Fprintln(w, line.text())
				continue
			}
			out, err := json.Marshal(line)
			if err != nil {
				return err
			}
			fmt.Fprintln(w, string(out))
		}
		if len(events) == f.Limit {
			fmt.Fprintf(cmd.ErrOrStderr(), "sanad audit list: %d events, the --limit: there may be more after seq %d (--after-seq %d)\n",
				len(events), events[len(events)-1].Seq, events[len(events)-1].Seq)
		}
		return nil
	}
	return cmd
}

func newAuditVerifyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Verify the audit log's hash chain and signed checkpoints; exit 1 with the first bad sequence number",
		Long: `Verify walks every audit event and checkpoint. Checkpoint signatures are checked
against the audit public key: from --public-key (an auditor's own copy, no HSM
needed) or else from the HSM token of the configuration, which also gives the
last checkpoint the key signed: the log must still hold it, as it must hold any
--checkpoint given.`,
		Args: cobra.NoArgs,
	}
	loadConfig := configFlag(cmd)
	pubPath := cmd.Flags().String("public-key", "", "PEM file with the trusted audit public key, or the audit key's certificate (default: read it from the HSM)")
	heldPaths := cmd.Flags().StringArray("checkpoint", nil, "a checkpoint kept outside the database, as `sanad audit checkpoint` printed it: the log must still hold what it covers (repeatable)")
	asJSON := cmd.Flags().Bool("json", false, "print the report as JSON")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		ctx := cmd.Context()
		cfg, db, err := openConfiguredStore(ctx, loadConfig)
		if err != nil {
			return err
		}
		defer db.Close()
		var held []store.AuditCheckpoint
		for _, path := range *heldPaths {
			raw, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			origin, cp, err := audit.ParseSignedNote(raw)
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			if origin != cfg.Audit.Origin {
				return fmt.Errorf("%s: a checkpoint of the log %q, not of this one (%q)", path, origin, cfg.Audit.Origin)
			}
			held = append(held, cp)
		}

		var pub crypto.PublicKey
		if *pubPath != "" {
			if pub, err = readPublicKeyPEM(*pubPath); err != nil {
				return err
			}
		} else {
			m, err := loadModule(cfg.HSM)
			if err != nil {
				return err
			}
			defer m.Close()
			tok, err := openToken(ctx, m, cfg.HSM, nil)
			if err != nil {
				return err
			}
			defer tok.Close()
			key, err := tok.FindKey(ctx, cfg.Audit.KeyLabel)
			if err != nil {
				return fmt.Errorf("audit key %q: %w", cfg.Audit.KeyLabel, err)
			}
			pub = key.Public()
			// The last checkpoint the key signed, as the token keeps it:
			// held outside the database, as the CA nodes hold it, so that
			// a log cut short or rewritten with its checkpoints is caught
			// here too, and not only by the nodes refusing to sign.
			kept, err := checkpointMemory(tok, cfg.Audit).Recall(ctx)
			if err != nil {
				return fmt.Errorf("the checkpoint the token keeps: %w", err)
			}
			for _, v := range kept {
				origin, cp, err := audit.ParseSignedNote(v)
				if err != nil {
					return fmt.Errorf("the checkpoint the token keeps: %w", err)
				}
				if origin == cfg.Audit.Origin {
					held = append(held, cp)
				}
			}
		}

		r, err := audit.Verify(ctx, db, cfg.Audit.Origin, []crypto.PublicKey{pub}, held...)
		if err != nil {
			return err
		}
		printAuditReport(cmd.OutOrStdout(), r, *asJSON)
		if !r.OK() {
			return fmt.Errorf("audit log verification failed at seq %d", r.FirstBad)
		}
		return nil
	}
	return cmd
}

func newAuditRestoredCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "restored",
		Short: "Record that the database was restored from before the last checkpoint the HSM signed, so checkpoints resume",
		Long: `The CA nodes keep the last checkpoint of the audit log they signed on the HSM
token, beside the audit key, where those who can write the database cannot
change it. A node signs only a log that still holds it: after the database was
restored from a backup older than that checkpoint, the nodes refuse to sign and
/readyz reports the audit log failing, as it would for a log rewritten by
someone with access to the database.

restored, run by a CA operator (it logs in to the token with the configured PIN),
says that it was a restore. It appends an audit.restored event naming the
checkpoint lost (its signed note, to check any copy of the log kept elsewhere
against) and the restored log's latest checkpoint, from which the log resumes;
then the token keeps that one, and the nodes sign again within their checkpoint
interval. It refuses when the log still holds the last checkpoint signed.`,
		Args: cobra.NoArgs,
	}
	loadConfig := configFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		ctx := cmd.Context()
		cfg, err := loadConfig()
		if err != nil {
			return err
		}
		s, err := openService(ctx, cfg, newLogger(cfg.Log, cmd.ErrOrStderr()))
		if err != nil {
			return err
		}
		defer s.close()
		if err := s.findAuditKey(ctx); err != nil {
			return err
		}
		cp, err := s.checkpointer()
		if err != nil {
			return err
		}
		lost, resumed, err := cp.Restored(ctx, s.audit, "operator:sanad audit restored")
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "recorded: the checkpoint at seq %d is lost; the audit log resumes from seq %d (audit.restored)\n", lost.Seq, resumed.Seq)
		return nil
	}
	return cmd
}

func newAuditCheckpointCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "checkpoint",
		Short: "Print the latest signed checkpoint of the audit log, to keep outside the database",
		Long: `Checkpoint prints the latest checkpoint the HSM audit key signed, as a signed
note: the log's origin, the sequence number and hash it covers, its time, and a
signature line. Keep these outside the CA's database (an auditor's archive, a
witness on another host): sanad audit verify --checkpoint FILE then checks that
the log still holds what each covers, which the database's own checkpoints
cannot show once someone able to write the database removed them too.`,
		Args: cobra.NoArgs,
	}
	loadConfig := configFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		ctx := cmd.Context()
		cfg, db, err := openConfiguredStore(ctx, loadConfig)
		if err != nil {
			return err
		}
		defer db.Close()
		cp, err := db.LatestAuditCheckpoint(ctx)
		if errors.Is(err, store.ErrNotFound) {
			return errors.New("the audit log has no signed checkpoint yet")
		}
		if err != nil {
			return err
		}
		_, err = cmd.OutOrStdout().Write(audit.SignedNote(cfg.Audit.Origin, cp))
		return err
	}
	return cmd
}

// auditObject is an object as the audit log names it: a certificate's
// serial or an officer's fingerprint as lower-case hex, two digits an octet,
// however it was typed (as openssl x509 -serial prints it, "serial=…", or
// "0x…"); an enrollment id is kept as given, since it is base64url.
func auditObject(o string) string {
	kind, id, ok := strings.Cut(o, "/")
	if !ok || kind == "enrollment" {
		return o
	}
	if hexID := officerSerial(id); strings.Trim(hexID, "0123456789ABCDEF") == "" {
		return kind + "/" + strings.ToLower(hexID)
	}
	return o
}

func printAuditReport(w io.Writer, r audit.Report, asJSON bool) {
	if asJSON {
		out, _ := json.MarshalIndent(r, "", "  ")
		fmt.Fprintln(w, string(out))
		return
	}
	if r.OK() {
		fmt.Fprintf(w, "audit log OK: %d events, %d checkpoints, signed through seq %d, %d events after the last checkpoint\n",
			r.Events, r.Checkpoints, r.AttestedSeq, r.Unattested)
		return
	}
	fmt.Fprintf(w, "audit log FAILED: first bad seq %d\n", r.FirstBad)
	for _, p := range r.Problems {
		fmt.Fprintf(w, "  seq %d: %s\n", p.Seq, p.Reason)
	}
}

// readPublicKeyPEM reads the public key of a PEM PUBLIC KEY block, or of a
// CERTIFICATE block (the audit-key ceremony's certificate, as it wrote it).
func readPublicKeyPEM(path string) (crypto.PublicKey, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(raw)
	var pub crypto.PublicKey
	switch {
	case block == nil:
		return nil, errors.New(path + ": no PEM PUBLIC KEY or CERTIFICATE block")
	case block.Type == "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case block.Type == "CERTIFICATE":
		var c *x509.Certificate
		if c, err = x509.ParseCertificate(block.Bytes); err == nil {
			pub = c.PublicKey
		}
	default:
		return nil, fmt.Errorf("%s: a PEM %s, not a PUBLIC KEY or CERTIFICATE", path, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return pub, nil
}
