package pool

import (
	"strings"
	"testing"
	"time"

	"icebox/internal/auth"
	"icebox/internal/testkit"
)

// Environments get their role's credentials, and are retired before those
// expire so no call runs with expired credentials.
func TestCredentialsAndRetirement(t *testing.T) {
	// The first environment's credentials come within the retire margin
	// of their expiry 300 ms after they are issued; later ones are good
	// for hours. Credentials are issued in the calling goroutine.
	var issued int
	var firstExpires time.Time
	creds := func(role, fn string) (auth.Credentials, error) {
		issued++
		expires := time.Now().Add(time.Hour)
		if issued == 1 {
			expires = time.Now().Add(retireMargin + 300*time.Millisecond)
			firstExpires = expires
		}
		return auth.Credentials{AccessKeyID: "ASIATEST" + role + fn, SecretAccessKey: "s", SessionToken: "t", Expires: expires}, nil
	}
	p, f := newPool(t, Config{Credentials: creds, IdleTimeout: time.Hour}, always(echo))
	fn := function("f")
	invoke(t, p, fn, `{}`)
	env := strings.Join(f.Made()[0].Spec.Env, "\n")
	for _, want := range []string{"AWS_ACCESS_KEY_ID=ASIATESTarn:aws:iam::000000000000:role/rf", "AWS_SESSION_TOKEN=t", "AWS_ENDPOINT_URL=http://127.0.0.1:9070"} {
		if !strings.Contains(env, want) {
			t.Errorf("environment lacks %s:\n%s", want, env)
		}
	}
	invoke(t, p, fn, `{}`)
	if n := len(f.Made()); n != 1 {
		t.Fatalf("%d sandboxes before the credentials near expiry, want 1", n)
	}
	// The pool reads the wall clock: wait for the moment it retires the
	// first environment.
	testkit.WaitFor(t, 5*time.Second, "the first credentials to come within the retire margin", func() bool {
		return time.Now().After(firstExpires.Add(-retireMargin))
	})
	invoke(t, p, fn, `{}`)
	if n := len(f.Made()); n != 2 {
		t.Errorf("%d sandboxes after the first environment's credentials neared expiry, want 2", n)
	}
	waitDone(t, f.Made()[0], "the retired environment to be destroyed")
}
