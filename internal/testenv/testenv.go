// Package testenv decides what a test does when something it needs from the
// machine (SoftHSM2, PostgreSQL, an external judge such as openssl) is
// missing: on a developer's machine it skips with the reason, and in CI
// (CI=true) it fails, because no test may skip in CI.
//
// It is imported only by tests and test fixtures.
package testenv

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

// InCI reports whether the tests run in CI, where every dependency must be
// present.
func InCI() bool { return os.Getenv("CI") == "true" }

// Missing stops the test because a dependency is missing: it skips on a
// developer's machine and fails in CI.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf("missing test dependency (CI=true forbids skipping): "+format, args...)
	}
	t.Skipf("missing test dependency (would fail with CI=true): "+format, args...)
}

// Tool returns the path of an external program the test needs, or stops the
// test through Missing.
func Tool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, "%s not on PATH (make test installs it)", name)
	}
	return p
}

// PostgresDSN returns SANAD_TEST_PG, the connection string of a PostgreSQL
// database the tests may create schemas in, or stops the test through
// Missing.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("SANAD_TEST_PG")
	if dsn == "" {
		Missing(t, "SANAD_TEST_PG is not set (.ci/run starts PostgreSQL and sets it)")
	}
	return dsn
}

// WaitFor polls cond until it holds; a minute without is a failure. For
// what happens in the background (a CRL published, a responder synced),
// never as a timing assertion.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
