package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/cryptosigner"
	"github.com/smallstep/pkcs7"
	"github.com/spf13/cobra"

	"github.com/sanadpki/sanad/internal/config"
	"github.com/sanadpki/sanad/ra/jwsauth"
	"github.com/sanadpki/sanad/verify"
)

// maxChainFile bounds the --chain file: a few intermediates in PEM.
const maxChainFile = 256 << 10

// signFlags are the options of sanad sign.
type signFlags struct {
	key, cert, chain, out             string
	der, jws, attached, force, asJSON bool
}

// signResult is what sanad sign wrote, for --json.
type signResult struct {
	File      string `json:"file"`
	Output    string `json:"output"`
	Format    string `json:"format"` // cms-pem, cms-der or jws
	Detached  bool   `json:"detached"`
	Algorithm string `json:"algorithm"`
	Signer    string `json:"signer"`
	Serial    string `json:"serial"`
}

func newSignCmd() *cobra.Command {
	f := &signFlags{}
	cmd := &cobra.Command{
		Use:   "sign FILE",
		Short: "Sign a file with a certificate's key: a detached CMS signature (RFC 5652), or a JWS (RFC 7515)",
		Long: `sign makes a signature over FILE with the key of a certificate, such as a
citizen's citizen-sign certificate issued by Sanad.

The key is a PEM private key file (0600) given by --key or SANAD_SIGN_KEY, or
"pkcs11:LABEL" for a key on the token of --config (PIN from its pin_file or
environment). The certificate is --cert or SANAD_SIGN_CERT; --chain adds the
intermediate CA certificates of a PEM file, so that a verifier needs only the
root.

By default the signature is a detached CMS SignedData in PEM (as openssl cms
-outform PEM writes it; --der for DER), written to FILE.p7s, with the
ESS signing-certificate-v2 attribute (RFC 5035) binding it to the certificate.
--jws writes a compact JWS to FILE.jws instead, its payload detached (RFC 7515
Appendix F) unless --attached. An existing output is never overwritten without
--force.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("sign takes one FILE, not %d arguments", len(args))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&f.key, "key", os.Getenv("SANAD_SIGN_KEY"), "private key: PEM file, or pkcs11:LABEL")
	cmd.Flags().StringVar(&f.cert, "cert", os.Getenv("SANAD_SIGN_CERT"), "the signer's certificate (PEM)")
	cmd.Flags().StringVar(&f.chain, "chain", "", "intermediate CA certificates to include (PEM)")
	cmd.Flags().StringVar(&f.out, "out", "", "output file (default FILE.p7s, or FILE.jws with --jws)")
	cmd.Flags().BoolVar(&f.der, "der", false, "write the CMS signature in DER rather than PEM")
	cmd.Flags().BoolVar(&f.jws, "jws", false, "write a compact JWS rather than CMS")
	cmd.Flags().BoolVar(&f.attached, "attached", false, "include FILE in the signature rather than detaching it")
	cmd.Flags().BoolVar(&f.force, "force", false, "replace an existing output file")
	cmd.Flags().BoolVar(&f.asJSON, "json", false, "print the result as JSON")
	loadConfig := configFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return f.run(cmd.Context(), cmd.OutOrStdout(), args[0], loadConfig, time.Now())
	}
	return cmd
}

func (f *signFlags) run(ctx context.Context, stdout io.Writer, file string, loadConfig func() (config.Config, error), now time.Time) error {
	if f.key == "" || f.cert == "" {
		return usagef("sign needs --key and --cert (or SANAD_SIGN_KEY and SANAD_SIGN_CERT)")
	}
	if f.jws && f.der {
		return usagef("--der is for CMS: a JWS is always text")
	}
	out := f.out
	if out == "" {
		out = file + ".p7s"
		if f.jws {
			out = file + ".jws"
		}
	}
	// Refuse before the key is touched; writeOutput refuses again, without
	// a race, when it creates the file.
	if _, err := os.Lstat(out); err == nil && !f.force {
		return usagef("%s exists: sign never overwrites a signature (--force to replace it)", out)
	}
	content, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("read the file to sign: %w", err)
	}
	cert, err := jwsauth.LoadCertificate(f.cert)
	if err != nil {
		return err
	}
	if err := checkSigningCertificate(cert, now); err != nil {
		return err
	}
	var chain []*x509.Certificate
	if f.chain != "" {
		if chain, err = loadChain(f.chain, cert); err != nil {
			return err
		}
	}
	signer, closeKey, err := loadSigner(ctx, f.key, loadConfig)
	if err != nil {
		return err
	}
	defer closeKey()
	// Compare before signing: a signature by another key is worthless, and
	// a token should not be asked to make one.
	if pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(cert.PublicKey) {
		return fmt.Errorf("the key %s is not the key of certificate %s (serial %s)", f.key, f.cert, jwsauth.SerialHex(cert.SerialNumber))
	}
	alg, err := signatureAlgorithm(cert.PublicKey)
	if err != nil {
		return fmt.Errorf("certificate %s: %w", f.cert, err)
	}

	res := signResult{File: file, Output: out, Detached: !f.attached, Signer: cert.Subject.CommonName, Serial: jwsauth.SerialHex(cert.SerialNumber)}
	var sig []byte
	if f.jws {
		sig, err = signJWS(content, cert, chain, signer, alg.jws, f.attached, now)
		res.Format, res.Algorithm = "jws", string(alg.jws)
	} else {
		sig, err = signCMS(content, cert, chain, signer, alg, f.attached)
		res.Format, res.Algorithm = "cms-der", alg.hash.String()
		if err == nil && !f.der {
			sig, res.Format = pem.EncodeToMemory(&pem.Block{Type: "CMS", Bytes: sig}), "cms-pem"
		}
	}
	if err != nil {
		return fmt.Errorf("sign %s: %w", file, err)
	}
	if err := writeOutput(out, sig, f.force); err != nil {
		return err
	}
	if f.asJSON {
		b, err := json.Marshal(res)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(stdout, string(b))
		return err
	}
	// The subject's CommonName, not its whole DN: a citizen's DN holds the
	// national ID.
	kind := "attached"
	if res.Detached {
		kind = "detached"
	}
	_, err = fmt.Fprintf(stdout, "wrote %s: %s %s signature (%s) of %s, signed by %q, certificate serial %s\n",
		out, kind, res.Format, res.Algorithm, file, res.Signer, res.Serial)
	return err
}

// checkSigningCertificate refuses a certificate no verifier would accept a
// signature from: one not valid now, or whose key usage or extended key
// usage (RFC 5280 §4.2.1.3, §4.2.1.12) excludes documents, as sanad verify
// judges a certificate of the national PKI (verify.SignerConstraints): a
// citizen-auth certificate (clientAuth) signs logins, not contracts, and
// the audit key's (digitalSignature without contentCommitment) the CA's
// log checkpoints.
func checkSigningCertificate(cert *x509.Certificate, now time.Time) error {
	if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return fmt.Errorf("certificate serial %s is valid from %s to %s, not now", jwsauth.SerialHex(cert.SerialNumber),
			cert.NotBefore.Format(time.RFC3339), cert.NotAfter.Format(time.RFC3339))
	}
	if err := verify.SignerConstraints(cert); err != nil {
		return fmt.Errorf("certificate serial %s may not sign documents: %w (a citizen-sign or business-seal certificate does)",
			jwsauth.SerialHex(cert.SerialNumber), err)
	}
	return nil
}

// loadChain reads the CA certificates of a PEM file and orders them as a
// path upwards from leaf: its issuer first, as CMS and x5c (RFC 7515
// §4.1.6) both want. A certificate that is not on that path is refused
// rather than sent along unchecked.
func loadChain(path string, leaf *x509.Certificate) ([]*x509.Certificate, error) {
	pool, err := readCertificates(path)
	if err != nil {
		return nil, fmt.Errorf("chain: %w", err)
	}
	var chain []*x509.Certificate
	for cur := leaf; len(pool) > 0; {
		i := 0
		for i < len(pool) && cur.CheckSignatureFrom(pool[i]) != nil {
			i++
		}
		if i == len(pool) {
			break
		}
		cur = pool[i]
		chain = append(chain, cur)
		pool = append(pool[:i], pool[i+1:]...)
	}
	if len(pool) > 0 {
		return nil, fmt.Errorf("chain %s: %q did not issue any certificate on the path of the signer's certificate", path, pool[0].Subject.CommonName)
	}
	return chain, nil
}

// readBounded reads a regular file of at most limit bytes.
func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return b, nil
}

// algorithm is how a key signs: the CMS digest and the JWS alg.
type algorithm struct {
	hash      crypto.Hash
	digestOID asn1.ObjectIdentifier
	jws       jose.SignatureAlgorithm
}

// signatureAlgorithm chooses by the key, as jwsauth does for officers: a
// digest of the curve's strength for ECDSA (RFC 5753 §7.2, RFC 7518 §3.4),
// SHA-256 for RSA, with PKCS#1 v1.5 in CMS and PSS in JWS (RFC 7518 §3.5).
func signatureAlgorithm(pub crypto.PublicKey) (algorithm, error) {
	sha256Alg := algorithm{hash: crypto.SHA256, digestOID: pkcs7.OIDDigestAlgorithmSHA256}
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			sha256Alg.jws = jose.ES256
			return sha256Alg, nil
		case elliptic.P384():
			return algorithm{hash: crypto.SHA384, digestOID: pkcs7.OIDDigestAlgorithmSHA384, jws: jose.ES384}, nil
		}
		return algorithm{}, fmt.Errorf("ECDSA curve %s is not supported (only P-256 and P-384)", k.Curve.Params().Name)
	case *rsa.PublicKey:
		sha256Alg.jws = jose.PS256
		return sha256Alg, nil
	}
	return algorithm{}, fmt.Errorf("a %T key is not supported (only ECDSA and RSA)", pub)
}

// oidSigningCertificateV2 is id-aa-signingCertificateV2 (RFC 5035 §3).
var oidSigningCertificateV2 = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 47}

// signingCertificateV2 is RFC 5035 §3's SigningCertificateV2 without its
// optional policies.
type signingCertificateV2 struct {
	Certs []essCertIDv2
}

// essCertIDv2 leaves out hashAlgorithm: it is DEFAULT id-sha256, and DER
// omits a value equal to its default (X.690 §11.5).
type essCertIDv2 struct {
	CertHash     []byte
	IssuerSerial issuerSerial
}

// issuerSerial is RFC 5035's IssuerSerial: issuer is GeneralNames, a
// SEQUENCE OF GeneralName.
type issuerSerial struct {
	Issuer []asn1.RawValue
	Serial *big.Int
}

// essSigningCertificate binds a signature to cert, not only to its key
// (RFC 5035 §1): the SHA-256 of the certificate, its issuer and serial.
func essSigningCertificate(cert *x509.Certificate) pkcs7.Attribute {
	hash := sha256.Sum256(cert.Raw)
	return pkcs7.Attribute{Type: oidSigningCertificateV2, Value: signingCertificateV2{Certs: []essCertIDv2{{
		CertHash: hash[:],
		IssuerSerial: issuerSerial{
			// directoryName [4] Name: an explicit tag, since Name is a
			// CHOICE (X.680 §31.2.7).
			Issuer: []asn1.RawValue{{Class: asn1.ClassContextSpecific, Tag: 4, IsCompound: true, Bytes: cert.RawIssuer}},
			Serial: cert.SerialNumber,
		},
	}}}}
}

// signCMS makes a CMS SignedData (RFC 5652 §5) over content in DER, with
// the signed attributes content-type, message-digest, signing-time and
// signing-certificate-v2, and the certificates cert and chain; content
// itself is left out unless attached (§5.2: eContent absent). It verifies
// its own result before returning it.
func signCMS(content []byte, cert *x509.Certificate, chain []*x509.Certificate, signer crypto.Signer, alg algorithm, attached bool) ([]byte, error) {
	sd, err := pkcs7.NewSignedData(content)
	if err != nil {
		return nil, err
	}
	sd.SetDigestAlgorithm(alg.digestOID)
	err = sd.AddSignerChain(cert, signer, chain, pkcs7.SignerInfoConfig{
		ExtraSignedAttributes: []pkcs7.Attribute{essSigningCertificate(cert)},
	})
	if err != nil {
		return nil, err
	}
	if !attached {
		sd.Detach()
	}
	der, err := sd.Finish()
	if err != nil {
		return nil, err
	}
	p7, err := pkcs7.Parse(der)
	if err != nil {
		return nil, fmt.Errorf("own CMS does not parse: %w", err)
	}
	p7.Content = content
	if err := p7.Verify(); err != nil {
		return nil, fmt.Errorf("own CMS signature does not verify: %w", err)
	}
	return der, nil
}

// signJWS makes a compact JWS (RFC 7515 §7.1), one line, whose payload is content and
// whose protected header holds alg, x5c (cert then chain, §4.1.6) and
// sigT. The
// payload part is left empty unless attached (Appendix F), so the verifier
// must be given content. It verifies its own result before returning it.
func signJWS(content []byte, cert *x509.Certificate, chain []*x509.Certificate, signer crypto.Signer, alg jose.SignatureAlgorithm, attached bool, now time.Time) ([]byte, error) {
	x5c := []string{base64.StdEncoding.EncodeToString(cert.Raw)}
	for _, c := range chain {
		x5c = append(x5c, base64.StdEncoding.EncodeToString(c.Raw))
	}
	// sigT is the claimed signing time of ETSI TS 119 182-1 (JAdES)
	// §5.2.1, which verify reads; not listed in crit, so that any RFC 7515
	// verifier still accepts the JWS.
	js, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: cryptosigner.Opaque(signer)},
		(&jose.SignerOptions{}).WithHeader("x5c", x5c).WithHeader("sigT", now.UTC().Format(time.RFC3339)))
	if err != nil {
		return nil, err
	}
	obj, err := js.Sign(content)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", alg, err)
	}
	if err := obj.DetachedVerify(content, cert.PublicKey); err != nil {
		return nil, fmt.Errorf("own JWS does not verify: %w", err)
	}
	serialize := obj.DetachedCompactSerialize
	if attached {
		serialize = obj.CompactSerialize
	}
	compact, err := serialize()
	if err != nil {
		return nil, err
	}
	return []byte(compact + "\n"), nil
}

// writeOutput creates path with b, refusing an existing file unless force.
// O_EXCL also refuses a symbolic link, even a dangling one.
func writeOutput(path string, b []byte, force bool) error {
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, 0o644)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s appeared while signing; not overwritten: %w", path, err)
	}
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
