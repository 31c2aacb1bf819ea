package verify

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/sanadpki/sanad/internal/audit"
	"github.com/sanadpki/sanad/internal/store"
)

// TestRenewedIssuingCA: the issuing CA's certificate was renewed (same
// name, same key) and the old one has expired; a signature made before
// carries the old one, and the new one is configured. The signature passes,
// through the new certificate, whether or not it claims a signing time
// (when it did, the path was built as of that time, took the old
// certificate, and failed on its expiry).
func TestRenewedIssuingCA(t *testing.T) {
	p := newTestPKI(t)
	now := time.Now()
	rootTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test National Root", Country: []string{"KZ"}},
		NotBefore: now.AddDate(-5, 0, 0), NotAfter: now.AddDate(20, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	p.root = mustCert(t, rootTmpl, rootTmpl, p.rootKey.Public(), p.rootKey)
	oldCA := mustCert(t, &x509.Certificate{
		SerialNumber: big.NewInt(20), Subject: p.ca.Subject,
		NotBefore: now.AddDate(-3, 0, 0), NotAfter: now.Add(-time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		CRLDistributionPoints: p.ca.CRLDistributionPoints, IssuingCertificateURL: p.ca.IssuingCertificateURL,
	}, p.root, p.caKey.Public(), p.rootKey)
	key := newKey(t)
	o := citizenSign()
	o.notBefore = now.AddDate(0, 0, -60)
	leaf := p.leaf(t, key, o)
	for _, signingTime := range []time.Time{{}, now.AddDate(0, 0, -30)} {
		sig := buildCMS(t, document, true, []*x509.Certificate{leaf, oldCA}, cmsSigner{cert: leaf, key: key, ess: leaf, signingTime: signingTime})
		cfg := p.config()
		cfg.Intermediates = []*x509.Certificate{p.ca}
		v, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		res, err := v.Verify(context.Background(), sig, document)
		if err != nil {
			t.Fatal(err)
		}
		if res.Indication != TotalPassed || len(res.Reports) != 1 || len(res.Reports[0].Chain) != 3 || res.Reports[0].Chain[1].Serial != serialHex(p.ca.SerialNumber) {
			t.Errorf("signing time %v: %s/%s, chain %+v", signingTime, res.Indication, res.SubIndication, res.Reports)
		}
	}
}

// TestAuditKeySignsNoDocument: the national PKI's signers commit to
// content, as its signing profiles do (citizen-sign, business-seal:
// contentCommitment); a certificate of it shaped as the audit key's
// (documentSigning with digitalSignature alone, in the national PKI's
// name) signs no document, CMS with signed attributes or JWS alike:
// INDETERMINATE/CHAIN_CONSTRAINTS_FAILURE, and SignerConstraints, which
// sanad sign checks, refuses it. It passed TOTAL_PASSED. A foreign
// signer (a path to Config.ForeignRoots) needs digitalSignature or
// contentCommitment, as before: an S/MIME certificate with
// digitalSignature alone passes there, and only there. A root given as
// both is national.
func TestAuditKeySignsNoDocument(t *testing.T) {
	p, foreign := newTestPKI(t), newTestPKI(t)
	now := time.Now()
	national, err := New(p.config())
	if err != nil {
		t.Fatal(err)
	}
	cfg := p.config()
	cfg.ForeignRoots = []*x509.Certificate{foreign.root}
	both, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg = foreign.config()
	cfg.ForeignRoots = cfg.Roots
	nationalTwice, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	smime := leafOptions{keyUsage: x509.KeyUsageDigitalSignature, ekus: []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection}}
	for _, c := range []struct {
		name    string
		pki     *testPKI
		o       leafOptions
		v       *Verifier
		jws     bool
		ind     Indication
		sub     SubIndication
		profile string
		detail  string // in the reason, or the constraints check passed
	}{
		{"audit key, CMS", p, auditKey(), national, false, Indeterminate, ChainConstraintsFailure, "", "lacks contentCommitment"},
		{"audit key, JWS", p, auditKey(), national, true, Indeterminate, ChainConstraintsFailure, "", "lacks contentCommitment"},
		{"audit key beside a foreign root", p, auditKey(), both, false, Indeterminate, ChainConstraintsFailure, "", "lacks contentCommitment"},
		{"business seal", p, leafOptions{keyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment, unknownEKUs: []asn1.ObjectIdentifier{oidDocumentSigning}, business: true},
			national, false, TotalPassed, "", "business-seal", "profile business-seal allow signing"},
		{"national S/MIME, digitalSignature alone", p, smime, national, false, Indeterminate, ChainConstraintsFailure, "", "lacks contentCommitment"},
		{"foreign S/MIME, digitalSignature alone", foreign, smime, both, false, TotalPassed, "", "", "a signer of another PKI"},
		{"foreign, contentCommitment alone", foreign, leafOptions{keyUsage: x509.KeyUsageContentCommitment}, both, true, TotalPassed, "", "", "a signer of another PKI"},
		{"foreign, keyEncipherment", foreign, leafOptions{keyUsage: x509.KeyUsageKeyEncipherment}, both, false, Indeterminate, ChainConstraintsFailure, "", "neither digitalSignature nor contentCommitment"},
		{"a root national and foreign", foreign, smime, nationalTwice, false, Indeterminate, ChainConstraintsFailure, "", "lacks contentCommitment"},
	} {
		key := newKey(t)
		leaf := c.pki.leaf(t, key, c.o)
		var sig []byte
		if c.jws {
			sig = []byte(signJWS(t, &cmsSigner{key: key}, []*x509.Certificate{leaf, c.pki.ca}, document, false, map[jose.HeaderKey]any{"sigT": now.UTC().Format(time.RFC3339)}))
		} else {
			sig = buildCMS(t, document, false, []*x509.Certificate{leaf, c.pki.ca}, cmsSigner{cert: leaf, key: key, ess: leaf, signingTime: now})
		}
		res, err := c.v.Verify(context.Background(), sig, nil)
		if err != nil {
			t.Fatal(err)
		}
		var constraints string
		for _, check := range res.Reports[0].Checks {
			if check.Name == "constraints" {
				constraints = check.Detail
			}
		}
		if res.Indication != c.ind || res.SubIndication != c.sub || res.Reports[0].Signer.Profile != c.profile || !strings.Contains(constraints, c.detail) {
			var text bytes.Buffer
			_ = res.WriteText(&text)
			t.Errorf("%s: got %s/%s, want %s/%s, profile %q, constraints mentioning %q\n%s", c.name, res.Indication, res.SubIndication, c.ind, c.sub, c.profile, c.detail, text.String())
		}
		if err := SignerConstraints(leaf); (err == nil) != (c.o.keyUsage&x509.KeyUsageContentCommitment != 0) {
			t.Errorf("%s: SignerConstraints: %v", c.name, err)
		}
	}
}

// TestCheckpointNoteReplay: the CA's audit key signs each checkpoint
// note as ECDSA over its SHA-256 (audit.Checkpointer), and the notes are
// published with their signatures (audit.SignedNote). One wrapped as a
// CMS SignedData, the note as content, the checkpoint's signature and no
// signed attributes, with the audit certificate (documentSigning, in the
// national PKI's name), is no signature of a document: TOTAL_FAILED/
// FORMAT_FAILURE, as any signer info without signed attributes is
// (CAdES requires content-type and message-digest), whoever signed. It
// passed TOTAL_PASSED as an e-seal of the national PKI.
func TestCheckpointNoteReplay(t *testing.T) {
	p := newTestPKI(t)
	auditPriv := newKey(t)
	auditCert := p.leaf(t, auditPriv, auditKey())
	head := sha256.Sum256([]byte("the log's head"))
	note := audit.Note("sanad audit log KZ", store.AuditCheckpoint{Seq: 4471, Hash: head[:], Time: time.Now().Add(-time.Minute)})
	digest := sha256.Sum256(note)
	checkpointSig, err := auditPriv.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	citizenPriv := newKey(t)
	citizen := p.leaf(t, citizenPriv, citizenSign())
	sum := sha256.Sum256(document)
	citizenSig, err := citizenPriv.Sign(rand.Reader, sum[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	v, err := New(p.config())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		sig     []byte
		content []byte
	}{
		{"a checkpoint note, attached", buildCMS(t, note, false, []*x509.Certificate{auditCert, p.ca}, cmsSigner{cert: auditCert, bare: checkpointSig}), nil},
		{"a checkpoint note, detached", buildCMS(t, note, true, []*x509.Certificate{auditCert, p.ca}, cmsSigner{cert: auditCert, bare: checkpointSig}), note},
		{"a citizen's signature without signed attributes", buildCMS(t, document, true, []*x509.Certificate{citizen, p.ca}, cmsSigner{cert: citizen, bare: citizenSig}), document},
	} {
		res, err := v.Verify(context.Background(), c.sig, c.content)
		if err != nil {
			t.Fatal(err)
		}
		if res.Indication != TotalFailed || res.SubIndication != FormatFailure || len(res.Reports) != 1 || !strings.Contains(res.Reports[0].Reason, "no signed attributes") {
			var text bytes.Buffer
			_ = res.WriteText(&text)
			t.Errorf("%s: got %s/%s, want %s/%s\n%s", c.name, res.Indication, res.SubIndication, TotalFailed, FormatFailure, text.String())
		}
	}
	// The same citizen's signature with its signed attributes passes.
	res, err := v.Verify(context.Background(), buildCMS(t, document, true, []*x509.Certificate{citizen, p.ca}, cmsSigner{cert: citizen, key: citizenPriv, ess: citizen}), document)
	if err != nil || res.Indication != TotalPassed {
		t.Errorf("with signed attributes: %+v %v", res, err)
	}
}

// TestJWSHeaderSubstitution: a JWS JSON document or a protected header
// that another reader would read otherwise is refused. encoding/json
// matched "Protected" and "Signatures" to the members go-jose reads as
// "protected" and "signatures", and kept the last of two: the signature
// of the real header verified while an unsigned header's sigT was
// reported as the signing time.
func TestJWSHeaderSubstitution(t *testing.T) {
	p := newTestPKI(t)
	key := newKey(t)
	leaf := p.leaf(t, key, citizenSign())
	now := time.Now().UTC().Truncate(time.Second)
	real, forged := now.Format(time.RFC3339), now.Add(-30*time.Minute).Format(time.RFC3339)
	x5c := `"x5c":["` + base64.StdEncoding.EncodeToString(leaf.Raw) + `","` + base64.StdEncoding.EncodeToString(p.ca.Raw) + `"]`
	payload := base64.RawURLEncoding.EncodeToString(document)
	h, sig := signES256(t, key, `{"alg":"ES256",`+x5c+`,"sigT":"`+real+`"}`, document)
	fake := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"ES256",` + x5c + `,"sigT":"` + forged + `"}`))
	twice, twiceSig := signES256(t, key, `{"alg":"ES256",`+x5c+`,"sigT":"`+real+`","sigT":"`+forged+`"}`, document)
	flat := func(members string) []byte {
		return []byte(`{"payload":"` + payload + `","protected":"` + h + `","signature":"` + sig + `"` + members + `}`)
	}

	v, err := New(p.config())
	if err != nil {
		t.Fatal(err)
	}
	res, err := v.Verify(context.Background(), flat(""), nil)
	if err != nil || res.Indication != TotalPassed || !res.Reports[0].SigningTime.Equal(now) {
		t.Fatalf("the JWS itself: %+v %v", res, err)
	}
	for name, in := range map[string][]byte{
		"flattened, Protected after protected": flat(`,"Protected":"` + fake + `"`),
		"general, Signatures after signatures": []byte(`{"payload":"` + payload + `","signatures":[{"protected":"` + h + `","signature":"` + sig +
			`"}],"Signatures":[{"protected":"` + fake + `","signature":"` + sig + `"}]}`),
		"flattened, protected twice":    []byte(`{"payload":"` + payload + `","protected":"` + fake + `","signature":"` + sig + `","protected":"` + h + `"}`),
		"signed header with sigT twice": []byte(`{"payload":"` + payload + `","protected":"` + twice + `","signature":"` + twiceSig + `"}`),
		"not UTF-8":                     flat(",\"note\xff\":1"),
	} {
		res, err := v.Verify(context.Background(), in, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.Indication != TotalFailed || res.SubIndication != FormatFailure || len(res.Reports) != 1 || !res.Reports[0].SigningTime.IsZero() {
			var text bytes.Buffer
			_ = res.WriteText(&text)
			t.Errorf("%s: got %s/%s, want %s/%s\n%s", name, res.Indication, res.SubIndication, TotalFailed, FormatFailure, text.String())
		}
	}
}
