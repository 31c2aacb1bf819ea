// Package verify checks CMS and JWS signatures made with Sanad certificates
// against the national roots and produces an ETSI EN 319 102-1 style
// validation report: one per signer, with an indication (TOTAL_PASSED,
// TOTAL_FAILED, INDETERMINATE), a sub-indication, who signed (name,
// national identifier, organisation, profile), the claimed signing time and
// its source, the chain with each certificate's status and where it came
// from (the OCSP response itself is kept as evidence), and every check
// performed.
//
// It is the public package that government applications import, so it must
// never import Sanad's server code (store, hsm, audit, api): its imports
// are the standard library, golang.org/x/crypto (cryptobyte, ocsp),
// go-jose and one small helper of Sanad's own, internal/strictjson (the
// standard library alone). The HTTP endpoint lives apart, in
// verify/endpoint.
//
// # Validation
//
// In the order of EN 319 102-1 §5.3 (basic signature validation):
//
//  1. format: CMS SignedData (RFC 5652; DER, PEM or S/MIME, RFC 8551) or
//     JWS (RFC 7515 compact or JSON serialization, detached per Appendix F
//     or RFC 7797); anything else is TOTAL_FAILED/FORMAT_FAILURE;
//  2. identification: the signer's certificate (CMS sid, checked against
//     ESS signing-certificate(-v2), RFC 5035; JWS x5c[0], checked against
//     x5t#S256), else INDETERMINATE/NO_SIGNING_CERTIFICATE_FOUND; the
//     check says whether the certificate itself is bound (ESS, a protected
//     x5c or x5t#S256) or only its key (plain CMS, an unprotected x5c);
//  3. crypto: a CMS signer info must have signed attributes, with
//     content-type and message-digest (CAdES, ETSI EN 319 122-1 §5.1;
//     without them a FORMAT_FAILURE: a signature over the content's bytes
//     alone says nothing of what they are, and any signature a key made
//     for another purpose, such as the CA's audit key's checkpoint notes,
//     would read as a signed document); the content given must be the
//     content the signature carries, if it carries any, and match the
//     message-digest attribute (HASH_FAILURE; a wrong content-type
//     attribute is a FORMAT_FAILURE); the signature (SIG_CRYPTO_FAILURE);
//     SHA-1, MD5 and RSA below 2048 bits are CRYPTO_CONSTRAINTS_FAILURE;
//  4. chain: a path to Config.Roots with the certificates the signature
//     carries, Config.Intermediates and, when one is missing and fetching
//     is enabled (Config.AnyAIA, or Config.AIAPrefixes), the caIssuers URL
//     (NO_CERTIFICATE_CHAIN_FOUND when there is none); a CA whose
//     certificate names extended key usages must allow document signing;
//  5. constraints: the signer's certificate is an end entity whose
//     extended key usage, if any, allows documents (documentSigning,
//     emailProtection, or the Microsoft and Adobe equivalents) and whose key
//     usage has contentCommitment, for a signer of the national PKI, or
//     digitalSignature or contentCommitment, for another PKI's (see below),
//     else CHAIN_CONSTRAINTS_FAILURE; an authentication certificate does not
//     sign documents, nor does the CA's audit key;
//  6. revocation of every certificate but the anchor, from OCSP (the AIA
//     URL, or Config.OCSPResponder in its place), else the CRL, each signed
//     with an algorithm and key the signer would be held to (no SHA-1, no
//     RSA below 2048 bits, for every key of the path too); an authentic
//     revocation counts however old its answer or CRL (a revocation is
//     never undone; a hold is), a stale "good" is no answer: revoked before the claimed
//     signing time is TOTAL_FAILED/REVOKED; after it, INDETERMINATE/
//     REVOKED_NO_POE (REVOKED_CA_NO_POE for a CA); no answer, TRY_LATER;
//     a responder that does not know the certificate (a signed "unknown",
//     or "unauthorized") INDETERMINATE/CERTIFICATE_CHAIN_GENERAL_FAILURE,
//     without asking the CRL: a certificate its CA never recorded is on no
//     CRL, which lists only revocations;
//  7. time: a claimed signing time in the future is SIG_CONSTRAINTS_FAILURE,
//     before notBefore TOTAL_FAILED/NOT_YET_VALID, after notAfter
//     TOTAL_FAILED/EXPIRED; a certificate of the path expired now is
//     OUT_OF_BOUNDS_NO_POE, one not yet valid now INDETERMINATE/NOT_YET_VALID.
//
// The claimed signing time (the CMS signing-time attribute; the JWS sigT
// or iat header) is the signer's word, not a proof of existence: it can
// make a signature fail (the signer says it signed after the revocation),
// never pass one that would otherwise not. Without a time-stamp, a
// signature whose certificate was revoked or has expired since can only be
// INDETERMINATE. The worst failing step decides the report (TOTAL_FAILED
// over INDETERMINATE; of the equally bad, the first), and the worst report
// the result; the later steps still run where they can, so that the report
// says all it found and what could not be determined (a responder down)
// hides no failure found after it (a signing time before notBefore).
//
// # Signers of the national PKI and of others
//
// Config.Roots are the national PKI's roots, Config.ForeignRoots other
// PKIs' (verify.roots_file of the verify role, --foreign-roots of sanad
// verify). Sanad's signing profiles, citizen-sign (contentCommitment) and
// business-seal (digitalSignature and contentCommitment), commit to
// content, as ETSI EN 319 412-2 §4.3.2 asks of a certificate for signing
// documents, so a signer whose path ends at a national root must have
// contentCommitment. The national PKI's other certificates sign other
// things: the audit key's (policies/profiles/audit.yaml: documentSigning,
// digitalSignature alone, in the national PKI's name) signs the CA's log
// checkpoints, and what that key signs is no seal of the national PKI on
// a document. The key usage decides, not a profile's name: the
// certificate is all a verifier sees. Other PKIs' profiles are not known
// here, so their signers need digitalSignature or contentCommitment (RFC
// 5280 §4.2.1.3), as an S/MIME certificate with digitalSignature alone or
// an eIDAS seal's with nonRepudiation alone has; so does a signer with no
// path, whose report has not passed anyway. SignerConstraints is the
// national rule, for signers to check before they sign (sanad sign).
//
// # Hostile input
//
// Everything read from outside is bounded: the signature (MaxSignatureSize),
// signer infos and JWS signatures (Config.MaxSigners), RSA keys (8192 bits:
// a larger one is refused before any arithmetic), certificates (32 in a
// CMS or an x5c), signed attributes (64 of them, 64 KiB), and whatever the
// network answers (4 MiB, http and https only, with the client's timeout).
// Building a path checks a signature with each candidate issuer, up to 100
// times (x509's own bound): a verification searches the path of a
// signer's certificate once for all the signers that share it and their
// claimed time, and 16 paths at most (a signer past that is
// INDETERMINATE/CERTIFICATE_CHAIN_GENERAL_FAILURE); of the CA certificates
// sent, one per subject and key is a candidate, and none sent or fetched
// with an RSA key above 4096 bits (a CA with a larger one must be
// configured). A certificate that is not yet trusted makes at most two
// caIssuers requests, a verification at most eight, and only when fetching
// is enabled: the URL is the sender's choice. OCSP and CRL URLs are
// followed only for a verified path. The CMS reader is cryptobyte over DER: it never recurses
// on the input's nesting and refuses BER lengths and trailing data; a JWS
// is parsed once, its signatures counted first. JWS JSON and headers that
// two readers could read differently are a FORMAT_FAILURE (a member given
// twice, a member this package reads in another case, invalid UTF-8), and
// go-jose verifies the object as this package read it.
//
// # Why not a CMS library
//
// github.com/smallstep/pkcs7 (v0.2.3, maintained, builds with Go 1.26) is
// what sanad sign writes with: an independent writer that this reader is
// tested against, beside openssl. For reading it does not fit: it verifies
// all signers at once (no report per signer), knows only
// issuerAndSerialNumber, not subjectKeyIdentifier, checks neither the
// content-type attribute nor ESS signing-certificate(-v2), has no RSA-PSS,
// re-encodes the signed attributes before checking the signature instead
// of using the bytes received, defaults to SHA-1, and converts BER to DER
// recursively with no depth bound: pkcs7.Parse of 4 MB of nested
// indefinite-length SEQUENCEs dies of a fatal, unrecoverable stack
// overflow (tried while choosing).
// github.com/digitorus/pkcs7 descends from the same fullsailor/pkcs7 code,
// and its latest release needs Go 1.27. The SignedData reader here is
// about 300 lines of cryptobyte.
package verify
