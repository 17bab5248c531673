package pool

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"icebox/internal/auth"
)

// Environments get their role's credentials, and are retired before those
// expire so no call runs with expired credentials.
func TestCredentialsAndRetirement(t *testing.T) {
	var issued atomic.Int32
	// The first environment's credentials expire within the retire margin;
	// later ones are good for hours.
	creds := func(role, fn string) (auth.Credentials, error) {
		n := issued.Add(1)
		life := time.Hour
		if n == 1 {
			life = retireMargin + 300*time.Millisecond
		}
		return auth.Credentials{AccessKeyID: "ASIATEST" + role + fn, SecretAccessKey: "s", SessionToken: "t", Expires: time.Now().Add(life)}, nil
	}
	p, f := newPool(t, Config{Credentials: creds, IdleTimeout: time.Hour}, always(echo))
	fn := function("f")
	invoke(t, p, fn, `{}`)
	env := strings.Join(f.made[0].spec.Env, "\n")
	for _, want := range []string{"AWS_ACCESS_KEY_ID=ASIATESTarn:aws:iam::000000000000:role/rf", "AWS_SESSION_TOKEN=t", "AWS_ENDPOINT_URL=http://127.0.0.1:9070"} {
		if !strings.Contains(env, want) {
			t.Errorf("environment lacks %s:\n%s", want, env)
		}
	}
	invoke(t, p, fn, `{}`)
	if f.count() != 1 {
		t.Fatalf("%d sandboxes before the credentials near expiry, want 1", f.count())
	}
	time.Sleep(400 * time.Millisecond)
	invoke(t, p, fn, `{}`)
	if f.count() != 2 {
		t.Errorf("%d sandboxes after the first environment's credentials neared expiry, want 2", f.count())
	}
	waitUntil(t, "the retired environment to be destroyed", func() bool {
		select {
		case <-f.made[0].Done():
			return true
		default:
			return false
		}
	})
}
