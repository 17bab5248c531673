package linux

import (
	"testing"
	"time"
)

// The prebuild loop's replacement waits until Creates have been quiet for
// refillQuiet, and stops waiting when the manager closes.
func TestRefillWaitsForQuiet(t *testing.T) {
	t.Parallel()
	m := &Manager{stop: make(chan struct{})}
	if !m.quiet() {
		t.Fatal("no Create yet: quiet() = false")
	}
	m.lastCreate.Store(time.Now().UnixNano())
	start := time.Now()
	if !m.quiet() {
		t.Fatal("quiet() = false with the manager open")
	}
	if d := time.Since(start); d < refillQuiet/2 {
		t.Fatalf("quiet() returned after %v, a Create just ran (want about %v)", d, refillQuiet)
	}
	m.lastCreate.Store(time.Now().Add(time.Hour).UnixNano())
	close(m.stop)
	if m.quiet() {
		t.Fatal("quiet() = true after the manager closed")
	}
}
