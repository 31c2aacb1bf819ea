package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/sanadpki/sanad/internal/config"
	"github.com/sanadpki/sanad/ra"
	"github.com/sanadpki/sanad/ra/jwsauth"
)

// officerFlags are how an officer command finds its key, certificate and
// the RA: flags, else the environment, else (after `sanad dev`) the
// officer named by --officer in ./var/dev.json.
type officerFlags struct {
	key, cert, url, officer string
	config                  func() (officerContext, error)
}

// officerContext is a loaded officer identity.
type officerContext struct {
	signer crypto.Signer
	cert   *x509.Certificate
	url    string
	close  func()
}

func newOfficerCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "officer",
		Short: "RA officer actions, each a JWS signed with the officer's key: queue, show, find, approve, reject, revoke; and, on a CA node, register, deactivate, list",
		Long: `Officer commands sign each request with the officer's key and send it to the RA.

The key is a PEM private key file (0600) given by --key or SANAD_OFFICER_KEY,
or "pkcs11:LABEL" for a key on the token of --config (PIN from its pin_file or
environment). The certificate is --cert or SANAD_OFFICER_CERT, the RA's base URL
--url or SANAD_URL. After "sanad dev", --officer NAME takes all three from
./var/dev.json.

register, deactivate and list administer the officers themselves: they run on a
CA node against the store of --config, sign nothing, and record each change in
the audit log with the operating-system account that made it.`,
	}
	f := &officerFlags{}
	cmd.PersistentFlags().StringVar(&f.key, "key", os.Getenv("SANAD_OFFICER_KEY"), "private key: PEM file, or pkcs11:LABEL")
	cmd.PersistentFlags().StringVar(&f.cert, "cert", os.Getenv("SANAD_OFFICER_CERT"), "officer certificate (PEM)")
	cmd.PersistentFlags().StringVar(&f.url, "url", os.Getenv("SANAD_URL"), "RA base URL, e.g. https://ra.example.kz")
	cmd.PersistentFlags().StringVar(&f.officer, "officer", "", "a dev officer's name from ./var/dev.json")
	// Persistent: a pkcs11: key and the administrative commands read it.
	loadConfig := configFlagIn(cmd.PersistentFlags())
	f.config = func() (officerContext, error) { return f.load(context.Background(), loadConfig) }

	cmd.AddCommand(
		officerSub("queue", "List what waits for officers: enrollments to approve (RA officers), CA certificates another CA officer asked to revoke (CA officers)", cobra.NoArgs, f, func(args []string, _ *cobra.Command) (string, string, jwsauth.Action) {
			return http.MethodGet, ra.AudienceQueue, jwsauth.Action{Action: "queue", Audience: ra.AudienceQueue}
		}),
		officerSub("show ID", "Show one enrollment for review", cobra.ExactArgs(1), f, func(args []string, _ *cobra.Command) (string, string, jwsauth.Action) {
			return http.MethodGet, ra.AudienceShow + "/" + args[0], jwsauth.Action{Action: "show", Enrollment: args[0], Audience: ra.AudienceShow}
		}),
		officerSub("find SUBJECT", "A person's or business's enrollments, certificates and registry events, by semantics identifier as certificates carry it (IDCKZ-880312448217, NTRPK-32778761)", cobra.ExactArgs(1), f, func(args []string, _ *cobra.Command) (string, string, jwsauth.Action) {
			// The identifier travels in the signed request, not in the URL.
			return http.MethodGet, ra.AudienceFind, jwsauth.Action{Action: jwsauth.ActionFind, Subject: args[0], Audience: ra.AudienceFind}
		}),
		officerSub("approve ID", "Approve an enrollment", cobra.ExactArgs(1), f, func(args []string, _ *cobra.Command) (string, string, jwsauth.Action) {
			return http.MethodPost, ra.AudienceActions, jwsauth.Action{Action: "approve", Enrollment: args[0], Audience: ra.AudienceActions}
		}),
		withReason(officerSub("reject ID", "Reject an enrollment", cobra.ExactArgs(1), f, func(args []string, cmd *cobra.Command) (string, string, jwsauth.Action) {
			reason, _ := cmd.Flags().GetString("reason")
			return http.MethodPost, ra.AudienceActions, jwsauth.Action{Action: "reject", Enrollment: args[0], Reason: reason, Audience: ra.AudienceActions}
		}), "why, shown to the applicant"),
		withReason(officerSub("revoke SERIAL", "Revoke a certificate (serial in hex, as openssl x509 -serial prints it); a CA certificate (OCSP signer, audit key) once two CA officers asked", cobra.ExactArgs(1), f, func(args []string, cmd *cobra.Command) (string, string, jwsauth.Action) {
			reason, _ := cmd.Flags().GetString("reason")
			serial := officerSerial(args[0])
			return http.MethodPost, ra.AudienceActions, jwsauth.Action{Action: "revoke", Serial: serial, Reason: reason, Audience: ra.AudienceActions}
		}), "RFC 5280 reason: "+strings.Join(jwsauth.RevocationReasons(), ", ")),
	)
	cmd.AddCommand(newOfficerAdminCmds(loadConfig)...)
	return cmd
}

func withReason(cmd *cobra.Command, help string) *cobra.Command {
	cmd.Flags().String("reason", "", help)
	_ = cmd.MarkFlagRequired("reason")
	return cmd
}

// officerSub is one officer command: build returns the HTTP method, the
// path and the action to sign.
func officerSub(use, short string, args cobra.PositionalArgs, f *officerFlags,
	build func(args []string, cmd *cobra.Command) (method, path string, a jwsauth.Action)) *cobra.Command {
	cmd := &cobra.Command{Use: use, Short: short, Args: args}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		oc, err := f.config()
		if err != nil {
			return err
		}
		defer oc.close()
		method, path, action := build(args, cmd)
		jws, err := jwsauth.Sign(action, oc.cert, oc.signer, time.Now())
		if err != nil {
			return err
		}
		_, err = sendSigned(cmd.Context(), cmd.OutOrStdout(), method, oc.url+path, jws)
		return err
	}
	return cmd
}

// load finds the officer's key, certificate and RA URL.
func (f *officerFlags) load(ctx context.Context, loadConfig func() (config.Config, error)) (officerContext, error) {
	key, certPath, url := f.key, f.cert, f.url
	if f.officer != "" {
		m, err := readDevManifest()
		if err != nil {
			return officerContext{}, usagef("--officer names a dev officer: %v; elsewhere give --key, --cert and --url", err)
		}
		found := false
		for _, o := range m.Officers {
			if o.Name == f.officer {
				key, certPath, found = o.Key, o.Cert, true
			}
		}
		if !found {
			return officerContext{}, usagef("--officer %q is not in ./var/dev.json", f.officer)
		}
		if url == "" {
			url = m.BaseURL
		}
	}
	if key == "" || certPath == "" || url == "" {
		return officerContext{}, usagef("an officer command needs --key, --cert and --url (or --officer NAME after sanad dev)")
	}
	cert, err := jwsauth.LoadCertificate(certPath)
	if err != nil {
		return officerContext{}, err
	}
	signer, closeKey, err := loadSigner(ctx, key, loadConfig)
	if err != nil {
		return officerContext{}, err
	}
	return officerContext{signer: signer, cert: cert, url: strings.TrimRight(url, "/"), close: closeKey}, nil
}

// loadSigner opens the signing key that key names, for sanad officer and
// sanad sign: "pkcs11:LABEL" is the key labelled LABEL on the token of the
// configuration loadConfig returns (PIN from its pin_file or environment);
// anything else is a PEM private key file, read by jwsauth.LoadSigner (mode
// 0600, unencrypted). Only the HSM is opened, never the database: a signer
// needs its key, not the CA's store. The caller calls closeKey when done.
func loadSigner(ctx context.Context, key string, loadConfig func() (config.Config, error)) (signer crypto.Signer, closeKey func(), err error) {
	label, onToken := strings.CutPrefix(key, "pkcs11:")
	if !onToken {
		if signer, err = jwsauth.LoadSigner(key); err != nil {
			return nil, nil, err
		}
		return signer, func() {}, nil
	}
	if label == "" {
		return nil, nil, usagef("--key pkcs11: names no key: give pkcs11:LABEL")
	}
	cfg, err := loadConfig()
	if err != nil {
		return nil, nil, err
	}
	module, err := loadModule(cfg.HSM)
	if err != nil {
		return nil, nil, fmt.Errorf("key %s: %w", key, err)
	}
	token, err := openToken(ctx, module, cfg.HSM, nil)
	if err != nil {
		module.Close()
		return nil, nil, fmt.Errorf("key %s: %w", key, err)
	}
	closeKey = func() {
		token.Close()
		module.Close()
	}
	k, err := token.FindKey(ctx, label)
	if err != nil {
		closeKey()
		return nil, nil, fmt.Errorf("key %s: %w", key, err)
	}
	return k, closeKey, nil
}

// sendSigned sends a signed request, prints the answer and returns it; a
// problem document is an error naming its type.
func sendSigned(ctx context.Context, out io.Writer, method, url, jws string) ([]byte, error) {
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader(jws)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return nil, err
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/jose")
	} else {
		req.Header.Set("Authorization", "JWS "+jws)
	}
	return send(req, out)
}

// send sends req to the RA, prints the answer and returns it; a problem
// document is a *problemAnswer. Redirects are not followed: a signed
// request goes to the RA it was signed for, or nowhere.
func send(req *http.Request, out io.Writer) ([]byte, error) {
	client := &http.Client{Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		p := &problemAnswer{status: resp.Status, raw: raw}
		_ = json.Unmarshal(raw, p)
		return nil, p
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, raw, "", "  ") != nil {
		pretty.Reset()
		pretty.Write(raw)
	}
	_, err = fmt.Fprintln(out, pretty.String())
	return raw, err
}

// problemAnswer is an error answer of the RA (RFC 9457), as sendSigned
// returns it: its message names the type, and raw is the document, for a
// caller that reads its extension members.
type problemAnswer struct {
	status              string
	Type, Title, Detail string
	raw                 []byte
}

func (p *problemAnswer) Error() string {
	return fmt.Sprintf("%s: %s (%s) %s", p.status, p.Title, p.Type, p.Detail)
}

// readDevManifest reads var/dev.json in the current directory, or in the
// nearest directory above it that has one, up to the top of the checkout
// (a directory holding go.mod or .git): the quick start's commands work
// from anywhere inside the checkout it runs in. What it names is trusted
// (verify's roots, officers' keys), so the file must be the user's own and
// writable by no one else: a dev.json planted in a shared directory above
// is refused.
func readDevManifest() (devManifest, error) {
	wd, err := os.Getwd()
	if err != nil {
		return devManifest{}, err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		path := filepath.Join(dir, "var", "dev.json")
		if info, err := os.Lstat(path); err == nil {
			return loadDevManifest(path, info)
		} else if !errors.Is(err, os.ErrNotExist) {
			return devManifest{}, err
		}
		if checkoutTop(dir) || filepath.Dir(dir) == dir {
			break
		}
	}
	// The commands that fall back on it say what to give instead.
	return devManifest{}, usagef("no var/dev.json in %s or above it in its checkout (sanad dev writes it in the directory it runs from)", wd)
}

// checkoutTop says whether dir is the top of a checkout.
func checkoutTop(dir string) bool {
	for _, name := range []string{"go.mod", ".git"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return true
		}
	}
	return false
}

// loadDevManifest reads the dev.json at path, whose Lstat is info, once it
// is known to be a regular file of the user's, writable by no one else.
func loadDevManifest(path string, info os.FileInfo) (devManifest, error) {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !info.Mode().IsRegular() || info.Mode().Perm()&0o022 != 0 || !ok || int(st.Uid) != os.Getuid() {
		return devManifest{}, fmt.Errorf("%s is not trusted: it must be a regular file of yours that no one else can write (mode %v)", path, info.Mode())
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return devManifest{}, err
	}
	m := devManifest{path: path}
	if err := json.Unmarshal(raw, &m); err != nil {
		return devManifest{}, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// officerSerial is a serial as an officer may type it (openssl's
// "serial=…", "0x…", lower case, or an odd number of digits as big.Int's
// %X writes a serial whose first octet is below 0x10) in the form signed
// requests carry: upper-case hex, two digits per octet.
func officerSerial(arg string) string {
	serial := strings.ToUpper(strings.TrimPrefix(strings.TrimPrefix(arg, "serial="), "0x"))
	if len(serial)%2 == 1 {
		serial = "0" + serial
	}
	return serial
}
