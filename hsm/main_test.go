package hsm_test

import (
	"testing"

	"github.com/sanadpki/sanad/hsm/hsmtest"
)

func TestMain(m *testing.M) { hsmtest.Main(m) }
