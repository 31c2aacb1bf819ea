package jwsauth

import (
	"context"
	"testing"

	"github.com/sanadpki/sanad/hsm"
	"github.com/sanadpki/sanad/hsm/hsmtest"
)

func TestMain(m *testing.M) { hsmtest.Main(m) }

// TestSignWithPKCS11Key signs with keys in a real SoftHSM2 token, as sanad
// officer does: ECDSA signatures come back in DER and PSS with the token's
// salt length, and the RA must accept both.
func TestSignWithPKCS11Key(t *testing.T) {
	tok := hsmtest.NewToken(t)
	for _, kt := range []hsm.KeyType{hsm.ECDSAP256, hsm.ECDSAP384, hsm.RSA2048} {
		t.Run(string(kt), func(t *testing.T) {
			key, err := tok.Token.GenerateKey(context.Background(), hsm.KeySpec{Label: "officer-" + string(kt), Type: kt})
			if err != nil {
				t.Fatal(err)
			}
			cert := selfSigned(key, string(kt))
			for _, a := range []Action{validAction(), {Action: ActionRevoke, Serial: "0A1B2C", Reason: "superseded", Audience: testAudience}} {
				s, err := Sign(a, cert, key, testNow)
				if err != nil {
					t.Fatal(err)
				}
				p, err := Parse(s, testAudience, testNow, testSkew)
				if err != nil {
					t.Fatal(err)
				}
				if p.Action.Action != a.Action || !p.Certificate.Equal(cert) {
					t.Fatalf("parsed %+v", p.Action)
				}
			}
		})
	}
}
