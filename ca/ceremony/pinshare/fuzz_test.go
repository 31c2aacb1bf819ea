package pinshare_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/sanadpki/sanad/ca/ceremony/pinshare"
)

// FuzzParseShare feeds ParseShare arbitrary documents (seeds: a fresh share,
// and the files in testdata/fuzz/FuzzParseShare). ParseShare must not panic,
// must fail only with ErrCorruptShare or ErrForgedShare, and what it accepts
// must survive MarshalFile and ParseShare unchanged.
func FuzzParseShare(f *testing.F) {
	set := split3of5(f)
	f.Add(set[0].MarshalFile())
	f.Add([]byte(`{"version":1}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		s, err := pinshare.ParseShare(raw)
		if err != nil {
			if !errors.Is(err, pinshare.ErrCorruptShare) && !errors.Is(err, pinshare.ErrForgedShare) {
				t.Fatalf("error wraps neither ErrCorruptShare nor ErrForgedShare: %v", err)
			}
			return
		}
		again, err := pinshare.ParseShare(s.MarshalFile())
		if err != nil {
			t.Fatalf("accepted share does not reparse from MarshalFile: %v", err)
		}
		if !reflect.DeepEqual(again, s) {
			t.Fatalf("round trip changed the share: %v, then %v", s, again)
		}
	})
}
