package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/sanadpki/sanad/ca/ceremony"
	"github.com/sanadpki/sanad/ca/ceremony/pinshare"
	"github.com/sanadpki/sanad/ca/ceremony/transcript"
	"github.com/sanadpki/sanad/ca/profile"
	"github.com/sanadpki/sanad/hsm"
	"github.com/sanadpki/sanad/policies"
)

func newCeremonyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ceremony",
		Short: "Run CA key ceremonies from YAML scripts (root, intermediate, ocsp-signer, crl, audit-key, key)",
	}
	cmd.AddCommand(newCeremonyCheckCmd(), newCeremonyRunCmd(), newSplitPINCmd(), newVerifyTranscriptCmd())
	return cmd
}

func ceremonyOptions() (ceremony.Options, error) {
	profiles, err := profile.LoadAll(policies.FS)
	if err != nil {
		return ceremony.Options{}, err
	}
	linter, err := ceremony.NewLinter()
	if err != nil {
		return ceremony.Options{}, err
	}
	return ceremony.Options{Profiles: profiles, Linter: linter, Now: time.Now, Version: buildVersion()}, nil
}

func newCeremonyCheckCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "check SCRIPT.yaml",
		Short: "Validate a ceremony script without opening the HSM; lists every problem with its line",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := ceremonyOptions()
			if err != nil {
				return err
			}
			s, err := ceremony.Load(args[0])
			if err != nil {
				return err
			}
			now := opts.Now().UTC().Truncate(time.Second)
			if err := s.Check(opts.Profiles, now); err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			// The certificate's lints too, with a stand-in key: what run
			// would refuse only after making the key.
			linted, err := s.CheckDraft(now, opts)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			note := ""
			if !linted && s.Certificate != nil {
				note = "; its certificate is linted once its issuer's certificate exists"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: OK (%s ceremony)%s\n", args[0], s.Ceremony, note)
			return nil
		},
	}
}

func newCeremonyRunCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "run SCRIPT.yaml",
		Short: "Run a ceremony: check the script, then generate, sign and record every step in a signed transcript",
		Long: `run checks the script (and refuses it if check fails), then runs it against the
HSM. A script whose PIN is split asks for the custodians' shares: give the
share files with --share (repeat), or type each at a no-echo prompt (the path
of a share file, or the share file's JSON on one line). The PIN is combined
in memory only.`,
		Args: cobra.ExactArgs(1),
	}
	shareFiles := cmd.Flags().StringArray("share", nil, "a custodian share file (repeat for each custodian present)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		opts, err := ceremonyOptions()
		if err != nil {
			return err
		}
		opts.Shares = func(_ context.Context, need int) ([]pinshare.Share, error) {
			if len(*shareFiles) > 0 {
				return readShareFiles(*shareFiles)
			}
			return promptShares(cmd.InOrStdin(), cmd.ErrOrStderr(), need)
		}
		s, err := ceremony.Load(args[0])
		if err != nil {
			return err
		}
		res, err := ceremony.Run(cmd.Context(), s, opts)
		if err != nil {
			return err
		}
		w := cmd.OutOrStdout()
		fmt.Fprintf(w, "%s ceremony complete\n", s.Ceremony)
		if res.KeyLabel != "" {
			fmt.Fprintf(w, "  key          %s (public key SHA-256 %s)\n", res.KeyLabel, res.KeySHA256)
		}
		if res.CertificatePath != "" {
			fmt.Fprintf(w, "  certificate  %s\n", res.CertificatePath)
		}
		if res.CRLPath != "" {
			fmt.Fprintf(w, "  CRL          %s\n", res.CRLPath)
		}
		if res.RequestPath != "" {
			fmt.Fprintf(w, "  request      %s (for the ceremony that certifies the key, with this transcript)\n", res.RequestPath)
			fmt.Fprintf(w, "  request SHA-256 %s\n", res.RequestSHA256)
			fmt.Fprintf(w, "               (the witnesses write it down: the certifying script's key.request_sha256)\n")
		}
		// The transcript is signed by the key the ceremony made, or else
		// (a CRL, a key certified from its request) by its issuer: the
		// certificate of that key, or a key ceremony's request, binds the
		// check.
		check := "--cert " + res.CertificatePath
		switch {
		case res.RequestPath != "":
			check = "--request " + res.RequestPath
		case s.Issuer != nil && (s.Key == nil || s.Key.Request != ""):
			check = "--cert " + s.Resolve(s.Issuer.Certificate)
		}
		fmt.Fprintf(w, "  transcript   %s (check it: sanad ceremony verify-transcript %s %s)\n", res.TranscriptPath, res.TranscriptPath, check)
		return nil
	}
	return cmd
}

func readShareFiles(paths []string) ([]pinshare.Share, error) {
	shares := make([]pinshare.Share, 0, len(paths))
	for _, p := range paths {
		s, err := pinshare.ReadShareFile(p)
		if err != nil {
			return nil, fmt.Errorf("share %s: %w", p, err)
		}
		shares = append(shares, s)
	}
	return shares, nil
}

// promptShares asks for need shares at no-echo prompts when stdin is a
// terminal (each answer a share file's path or its one-line JSON).
func promptShares(in io.Reader, out io.Writer, need int) ([]pinshare.Share, error) {
	f, ok := in.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil, errors.New("the script needs PIN shares: pass them with --share FILE, or run on a terminal to type them")
	}
	shares := make([]pinshare.Share, 0, need)
	for i := 1; i <= need; i++ {
		fmt.Fprintf(out, "Custodian %d of %d: share file path or share JSON (not shown): ", i, need)
		line, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(out)
		if err != nil {
			return nil, err
		}
		s, err := shareAnswer(strings.TrimSpace(string(line)))
		if err != nil {
			return nil, fmt.Errorf("custodian %d: %w", i, err)
		}
		shares = append(shares, s)
	}
	return shares, nil
}

// shareAnswer reads a custodian's typed answer: one-line share JSON, or a
// share file's path. The answer was typed unseen and may be a share's
// value pasted alone (for a one-of-one split, the PIN itself): an answer
// that names no file is never echoed in the error.
func shareAnswer(answer string) (pinshare.Share, error) {
	if strings.HasPrefix(answer, "{") {
		return pinshare.ParseShare([]byte(answer))
	}
	if _, err := os.Stat(answer); err != nil {
		return pinshare.Share{}, errors.New("the answer is neither share JSON (starting with {) nor the path of a file (it is not shown: it may be a share)")
	}
	return pinshare.ReadShareFile(answer)
}

func newSplitPINCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "split-pin",
		Short: "Split a token PIN into N custodian share files, any M of which unlock it",
		Args:  cobra.NoArgs,
	}
	shares := cmd.Flags().Int("shares", 0, "number of shares N (one per custodian)")
	threshold := cmd.Flags().Int("threshold", 0, "shares M needed to unlock")
	custodians := cmd.Flags().StringSlice("custodians", nil, "custodian names, comma-separated, N of them")
	tokenLabel := cmd.Flags().String("token-label", "", "label of the token whose PIN this is")
	pinFile := cmd.Flags().String("pin-file", "", "0600 file holding the PIN (default: no-echo prompt)")
	outDir := cmd.Flags().String("out", ".", "directory for the share files")
	module := cmd.Flags().String("module", "", "PKCS#11 module of the token (default: SoftHSM2's), to check the PIN opens it before splitting")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if *shares < 1 || *threshold < 1 || *threshold > *shares {
			return usagef("need 1 <= --threshold <= --shares")
		}
		if len(*custodians) != *shares {
			return usagef("--custodians names %d people; --shares is %d", len(*custodians), *shares)
		}
		if *tokenLabel == "" {
			return usagef("--token-label is required")
		}
		pin, err := readPINForSplit(cmd, *pinFile)
		if err != nil {
			return err
		}
		// A PIN that does not open the token would be found out only on
		// ceremony day, with every custodian in the room: it is tried
		// once now (one login).
		if err := checkTokenPIN(cmd.Context(), *module, *tokenLabel, pin); err != nil {
			return fmt.Errorf("nothing was split: %w", err)
		}
		set, err := pinshare.Split(pin, *tokenLabel, *custodians, *threshold)
		if err != nil {
			return err
		}
		// Every file is new, or none is written: a set half written
		// beside an older one's files would mix two splits.
		if err := os.MkdirAll(*outDir, 0o700); err != nil {
			return err
		}
		paths := make([]string, len(set))
		for i, s := range set {
			name := slug(s.Custodian)
			if name == "" { // a name of symbols only
				name = "custodian"
			}
			paths[i] = filepath.Join(*outDir, fmt.Sprintf("%s-share-%d-%s.json", *tokenLabel, s.Index, name))
			if _, err := os.Lstat(paths[i]); !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("%s exists (a share file is never overwritten); nothing was written", paths[i])
			}
		}
		for i, s := range set {
			if err := pinshare.WriteShareFile(paths[i], s); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "share %d of %d for %s: %s\n", s.Index, s.Total, s.Custodian, paths[i])
		}
		fmt.Fprintf(cmd.OutOrStdout(), "any %d of these %d shares unlock token %s; hand each file to its custodian only\n", *threshold, *shares, *tokenLabel)
		return nil
	}
	return cmd
}

// checkTokenPIN logs in to the token labelled label with pin, and out.
func checkTokenPIN(ctx context.Context, modulePath, label string, pin hsm.PIN) error {
	mod, err := hsm.LoadModule(modulePath)
	if err != nil {
		return err
	}
	defer mod.Close()
	tok, err := mod.OpenToken(ctx, hsm.TokenConfig{Label: label, PIN: pin, MaxSessions: 1})
	if err != nil {
		return fmt.Errorf("token %q with this PIN: %w", label, err)
	}
	return tok.Close()
}

func readPINForSplit(cmd *cobra.Command, pinFile string) (hsm.PIN, error) {
	if pinFile != "" {
		return hsm.PINFromFile(pinFile)
	}
	f, ok := cmd.InOrStdin().(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return hsm.PIN{}, usagef("give --pin-file, or run on a terminal to type the PIN")
	}
	fmt.Fprint(cmd.ErrOrStderr(), "Token PIN (not shown): ")
	first, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(cmd.ErrOrStderr())
	if err != nil {
		return hsm.PIN{}, err
	}
	fmt.Fprint(cmd.ErrOrStderr(), "Again: ")
	second, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(cmd.ErrOrStderr())
	if err != nil {
		return hsm.PIN{}, err
	}
	if string(first) != string(second) {
		return hsm.PIN{}, errors.New("the two PINs differ")
	}
	return hsm.NewPIN(first)
}

var nonSlug = regexp.MustCompile(`[^\p{L}\p{N}]+`)

func slug(name string) string {
	return strings.Trim(nonSlug.ReplaceAllString(strings.ToLower(name), "-"), "-")
}

func newVerifyTranscriptCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "verify-transcript FILE",
		Short: "Verify a ceremony transcript's hash chain and signature and print what happened",
		Args:  cobra.ExactArgs(1),
	}
	certPath := cmd.Flags().String("cert", "", "certificate (PEM) whose key must have signed the transcript")
	requestPath := cmd.Flags().String("request", "", "for a key ceremony: the certificate request (PEM) it wrote, whose key must have signed the transcript, and which it must have generated, protected and issued as the certifying ceremony checks")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if *certPath != "" && *requestPath != "" {
			return usagef("give --cert or --request, not both")
		}
		f, err := os.Open(args[0])
		if err != nil {
			return err
		}
		defer f.Close()
		res, err := transcript.Verify(f)
		if err != nil {
			return fmt.Errorf("%s: %w", args[0], err)
		}
		if *requestPath != "" {
			// A key ceremony's: checked as the certifying ceremony will.
			kc, err := ceremony.VerifyKeyCeremony(*requestPath, args[0])
			if err != nil {
				return err
			}
			res.Summary(cmd.OutOrStdout())
			fmt.Fprintf(cmd.OutOrStdout(), "transcript OK: %d lines, hash chain intact, signed by the key of %s, which this key ceremony generated on token %s as %s (%s) and protected as a CA key; request SHA-256 %s (the certifying script's key.request_sha256)\n",
				len(res.Lines), *requestPath, kc.TokenLabel, kc.Label, kc.Type, kc.RequestSHA256)
			return nil
		}
		if *certPath != "" {
			cert, err := readCertificateFile(*certPath)
			if err != nil {
				return err
			}
			if err := res.SignedBy(cert.PublicKey); err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
		}
		res.Summary(cmd.OutOrStdout())
		if *certPath == "" {
			// Anyone can sign a transcript with a key of their own and
			// embed it: only --cert (or --request) binds the signature to
			// the ceremony's certificate (or request).
			fmt.Fprintf(cmd.OutOrStdout(), "transcript consistent: %d lines, hash chain intact, signed by the key it names (SHA-256 of its public key above); give --cert (or --request for a key ceremony) to check that key is the certificate's\n", len(res.Lines))
			return nil
		}
		fmt.Fprintf(cmd.OutOrStdout(), "transcript OK: %d lines, hash chain intact, signature valid by the key of %s\n", len(res.Lines), *certPath)
		return nil
	}
	return cmd
}
