// Package testkit holds what icebox's tests share: the one gate for tests
// that need root, and the one way to wait for a condition.
package testkit

import (
	"os"
	"testing"
	"time"
)

// NeedRoot skips tb unless it runs as root. Tests that build real sandboxes
// (namespaces, cgroups, mounts) use it; CI runs as root, and everything
// above the sandbox is tested without root through sandbox/sandboxtest.
func NeedRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("builds real sandboxes (namespaces, cgroups, mounts) and needs root; CI runs as root")
	}
}

// WaitFor polls cond until it holds, failing tb once within has passed.
func WaitFor(tb testing.TB, within time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
