package audit_test

import (
	"testing"

	"github.com/sanadpki/sanad/hsm/hsmtest"
)

// TestMain removes the SoftHSM2 token directory the tests create.
func TestMain(m *testing.M) { hsmtest.Main(m) }
