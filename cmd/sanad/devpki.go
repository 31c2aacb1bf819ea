package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"gopkg.in/yaml.v3"

	"github.com/sanadpki/sanad/ca/ceremony"
	"github.com/sanadpki/sanad/ca/ceremony/pinshare"
	"github.com/sanadpki/sanad/hsm"
	"github.com/sanadpki/sanad/internal/audit"
	"github.com/sanadpki/sanad/internal/store"
)

// devIssuer is one CA or service key of the dev hierarchy.
type devIssuer struct {
	id, role, script string
}

// The dev hierarchy, in ceremony order; ids name the issuers in the store,
// in dev.json and in URLs.
var devIssuers = []devIssuer{
	{id: "root", role: "root", script: "1-root.yaml"},
	{id: "issuing", role: "issuing", script: "2-intermediate.yaml"},
	{id: "ocsp", role: "ocsp-signer", script: "3-ocsp-signer.yaml"},
	{id: "audit", role: "audit", script: "4-audit-key.yaml"},
}

// devScripts are the quick start's ceremonies: the same kinds as
// policies/ceremonies, on the dev token, with a one-of-one PIN "split".
func devScripts(tokenLabel, auditLabel, baseURL string) map[string]ceremony.Script {
	pin := ceremony.HSM{TokenLabel: tokenLabel, PIN: ceremony.PINSource{Shares: 1}}
	witnesses := []string{"sanad dev (quick start, no witnesses)"}
	subject := func(cn string) ceremony.Subject {
		return ceremony.Subject{CommonName: cn, Organization: "Sanad Dev PKI (not for production)", Country: "KZ"}
	}
	zero := 0
	return map[string]ceremony.Script{
		"1-root.yaml": {
			Ceremony: ceremony.KindRoot, Description: "dev root", Witnesses: witnesses, HSM: pin,
			Key: &ceremony.Key{Label: "sanad-dev-root", Type: string(hsm.ECDSAP384)},
			Certificate: &ceremony.Certificate{Profile: "root", Subject: subject("Sanad Dev Root CA"),
				ValidityDays: 3650, Output: "../pki/root.pem"},
			Transcript: "../pki/1-root.transcript.jsonl",
		},
		"2-intermediate.yaml": {
			Ceremony: ceremony.KindIntermediate, Description: "dev issuing CA", Witnesses: witnesses, HSM: pin,
			Issuer: &ceremony.Issuer{Certificate: "../pki/root.pem", KeyLabel: "sanad-dev-root"},
			Key:    &ceremony.Key{Label: "sanad-dev-issuing", Type: string(hsm.ECDSAP256)},
			Certificate: &ceremony.Certificate{Profile: "intermediate", Subject: subject("Sanad Dev Issuing CA"),
				ValidityDays: 1825, PathLen: &zero, PolicyOIDs: []string{"2.5.29.32.0"},
				CRLURL: baseURL + "/crl/root.crl", CAIssuersURL: baseURL + "/ca/root.crt", Output: "../pki/issuing.pem"},
			Transcript: "../pki/2-intermediate.transcript.jsonl",
		},
		"3-ocsp-signer.yaml": {
			Ceremony: ceremony.KindOCSPSigner, Description: "dev OCSP responder", Witnesses: witnesses, HSM: pin,
			Issuer: &ceremony.Issuer{Certificate: "../pki/issuing.pem", KeyLabel: "sanad-dev-issuing"},
			Key:    &ceremony.Key{Label: "sanad-dev-ocsp", Type: string(hsm.ECDSAP256)},
			Certificate: &ceremony.Certificate{Profile: "ocsp-signer", Subject: subject("Sanad Dev Issuing CA OCSP Responder"),
				ValidityDays: 60, Output: "../pki/ocsp.pem"},
			Transcript: "../pki/3-ocsp-signer.transcript.jsonl",
		},
		"5-root-crl.yaml": {
			Ceremony: ceremony.KindCRL, Description: "dev root CRL number 1", Witnesses: witnesses, HSM: pin,
			Issuer:     &ceremony.Issuer{Certificate: "../pki/root.pem", KeyLabel: "sanad-dev-root"},
			CRL:        &ceremony.CRL{Number: 1, NextUpdateDays: 365, Output: "../pki/root-1.crl"},
			Transcript: "../pki/5-root-crl.transcript.jsonl",
		},
		"4-audit-key.yaml": {
			Ceremony: ceremony.KindAuditKey, Description: "dev audit checkpoint key", Witnesses: witnesses, HSM: pin,
			Issuer: &ceremony.Issuer{Certificate: "../pki/issuing.pem", KeyLabel: "sanad-dev-issuing"},
			Key:    &ceremony.Key{Label: auditLabel, Type: string(hsm.ECDSAP256)},
			Certificate: &ceremony.Certificate{Profile: "audit", Subject: subject("Sanad Dev Audit Log Checkpoints"),
				ValidityDays: 1825, CRLURL: baseURL + "/crl/issuing.crl", CAIssuersURL: baseURL + "/ca/issuing.crt", Output: "../pki/audit.pem"},
			Transcript: "../pki/4-audit-key.transcript.jsonl",
		},
	}
}

// ensureDevPKI runs the dev hierarchy's ceremonies on first start (when the
// store has no issuers) and records each issuer, with an audit event, in one
// transaction per ceremony.
func ensureDevPKI(ctx context.Context, s *service, dir, baseURL string) error {
	have, err := s.db.Issuers(ctx)
	if err != nil {
		return err
	}
	if len(have) > 0 {
		return nil
	}
	pin, err := readPIN(s.cfg.HSM)
	if err != nil {
		return err
	}
	// The same code path as a real ceremony, with a one-of-one share held
	// in memory only.
	oneOfOne, err := pinshare.Split(pin, s.cfg.HSM.TokenLabel, []string{"sanad dev"}, 1)
	if err != nil {
		return err
	}
	opts, err := ceremonyOptions()
	if err != nil {
		return err
	}
	opts.Shares = func(context.Context, int) ([]pinshare.Share, error) { return oneOfOne, nil }

	scripts := devScripts(s.cfg.HSM.TokenLabel, s.cfg.Audit.KeyLabel, baseURL)
	scriptDir := filepath.Join(dir, "ceremonies")
	if err := os.MkdirAll(scriptDir, 0o700); err != nil {
		return err
	}
	for _, is := range devIssuers {
		script, res, err := runDevCeremony(ctx, scriptDir, is.script, scripts[is.script], opts)
		if err != nil {
			return fmt.Errorf("dev %s ceremony: %w", is.role, err)
		}
		transcriptRaw, err := os.ReadFile(res.TranscriptPath)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(transcriptRaw)
		err = s.db.InTx(ctx, func(tx *store.Tx) error {
			if err := tx.PutIssuer(ctx, store.Issuer{ID: is.id, Name: res.Certificate.Subject.CommonName, Role: is.role,
				CertificateDER: res.Certificate.Raw, KeyLabel: res.KeyLabel, CreatedAt: s.now()}); err != nil {
				return err
			}
			err := s.audit.Append(tx, audit.Event{Actor: "system", Action: "ceremony.run", Object: is.id,
				Details: map[string]any{"kind": script.Ceremony, "key_label": res.KeyLabel, "public_key_sha256": res.KeySHA256,
					"certificate_sha256": hexSHA256(res.Certificate.Raw), "transcript": res.TranscriptPath,
					"transcript_sha256": hex.EncodeToString(sum[:])}})
			return err
		})
		if err != nil {
			return fmt.Errorf("record dev issuer %s: %w", is.id, err)
		}
		s.log.Info("dev ceremony complete", "issuer", is.id, "certificate", res.CertificatePath)
	}
	// The root's offline CRL, which the issuing CA's CRL distribution
	// point names: the status role serves it from the store.
	_, res, err := runDevCeremony(ctx, scriptDir, devRootCRLScript, scripts[devRootCRLScript], opts)
	if err != nil {
		return fmt.Errorf("dev root CRL ceremony: %w", err)
	}
	der, err := os.ReadFile(res.CRLPath)
	if err != nil {
		return err
	}
	if _, err := importCRL(ctx, s, "root", der, res.TranscriptPath, "system"); err != nil {
		return err
	}
	s.log.Info("dev ceremony complete", "issuer", "root", "crl", res.CRLPath)
	return nil
}

// runDevCeremony writes script as dir/name, loads it back as a real
// ceremony would be, and runs it.
func runDevCeremony(ctx context.Context, dir, name string, script ceremony.Script, opts ceremony.Options) (*ceremony.Script, ceremony.Result, error) {
	raw, err := yaml.Marshal(script)
	if err != nil {
		return nil, ceremony.Result{}, err
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		return nil, ceremony.Result{}, err
	}
	loaded, err := ceremony.Load(path)
	if err != nil {
		return nil, ceremony.Result{}, err
	}
	res, err := ceremony.Run(ctx, loaded, opts)
	return loaded, res, err
}

// devRootCRLScript is the dev root's CRL ceremony.
const devRootCRLScript = "5-root-crl.yaml"

func hexSHA256(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// devManifest is ./var/dev.json (DESIGN.md §4): what people and scripts
// trying Sanad need.
type devManifest struct {
	BaseURL  string              `json:"base_url"`
	Issuers  []devManifestIssuer `json:"issuers"`
	Officers []devOfficer        `json:"officers"`
	Registry string              `json:"registry,omitempty"`
	// RegistryEventKey signs events as the sample registry would
	// (sanad registry sign-event --key).
	RegistryEventKey string `json:"registry_event_key,omitempty"`

	path string // where readDevManifest found it
}

type devManifestIssuer struct {
	ID          string `json:"id"`
	Role        string `json:"role"`
	Certificate string `json:"certificate"`
	OCSPURL     string `json:"ocsp_url,omitempty"`
	CRLURL      string `json:"crl_url,omitempty"`
}

// writeDevManifest rewrites dev.json for the address actually served.
func writeDevManifest(dir, baseURL string, officers []devOfficer, registryFile, registryEventKey string) error {
	m := devManifest{BaseURL: baseURL, Officers: officers, Registry: registryFile, RegistryEventKey: registryEventKey}
	for _, is := range devIssuers {
		e := devManifestIssuer{ID: is.id, Role: is.role, Certificate: filepath.Join(dir, "pki", is.id+".pem")}
		if is.role == "issuing" {
			e.OCSPURL = baseURL + "/ocsp"
			e.CRLURL = baseURL + "/crl/" + is.id + ".crl"
		}
		if is.role == "root" {
			e.CRLURL = baseURL + "/crl/" + is.id + ".crl"
		}
		if _, err := os.Stat(e.Certificate); err != nil {
			return fmt.Errorf("dev.json: %w", err)
		}
		m.Issuers = append(m.Issuers, e)
	}
	raw, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, "dev.json.tmp")
	if err := os.WriteFile(tmp, append(raw, '\n'), 0o644); err != nil {
		return err
	}
	// 0644 whatever the umask: a group-writable dev.json is not trusted
	// (readDevManifest).
	if err := os.Chmod(tmp, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, "dev.json"))
}
