package auth

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"icebox/internal/errdefs"
	"icebox/internal/policy"
)

// TestConsoleToken: a console token resolves to its key's identity as it
// is now with a CSRF token of its own; an altered, forged or expired token,
// or one whose key was deleted, resolves to nothing.
func TestConsoleToken(t *testing.T) {
	a, clk := open(t)
	ctx := context.Background()
	doc, err := policy.Parse([]byte(`{"Statement":[{"Effect":"Allow","Action":"lambda:ListFunctions","Resource":"*"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	ak, err := a.CreateAccessKey(ctx, "alice", doc)
	if err != nil {
		t.Fatal(err)
	}
	token, csrf, exp := a.ConsoleToken(ak.AccessKeyID, time.Hour)
	id, gotCSRF, gotExp, err := a.ConsoleIdentity(token)
	if err != nil || id.ARN != a.UserARN("alice") || id.Root || len(id.Policies) != 1 || id.AccessKeyID != ak.AccessKeyID {
		t.Fatalf("ConsoleIdentity = %+v, %v", id, err)
	}
	if gotCSRF != csrf || csrf == "" || !gotExp.Equal(exp) {
		t.Errorf("csrf %q exp %v, want %q %v", gotCSRF, gotExp, csrf, exp)
	}
	other, otherCSRF, _ := a.ConsoleToken(ak.AccessKeyID, time.Hour)
	if other == token || otherCSRF == csrf {
		t.Error("two sessions of one key share a token or a CSRF token")
	}
	root, _, _ := a.ConsoleToken(rootID, time.Hour)
	if id, _, _, err := a.ConsoleIdentity(root); err != nil || !id.Root {
		t.Errorf("root's session: %+v, %v", id, err)
	}

	var ae *errdefs.AuthError
	for name, bad := range map[string]string{
		"empty":         "",
		"no mac":        token[:len(token)-44],
		"altered":       "A" + token[1:],
		"unknown key":   func() string { s, _, _ := a.ConsoleToken("AKIANOSUCHKEYXXXXXXX", time.Hour); return s }(),
		"session mac":   token[:len(token)-1] + otherLast(token, 4),
		"non-canonical": token[:len(token)-1] + otherLast(token, 1),
		"garbage":       "x.y",
	} {
		if _, _, _, err := a.ConsoleIdentity(bad); !errors.As(err, &ae) || ae.Kind != errdefs.AuthUnknownKey {
			t.Errorf("%s: %v, want an unknown key", name, err)
		}
	}

	clk.t = clk.t.Add(time.Hour + time.Second)
	if _, _, _, err := a.ConsoleIdentity(token); !errors.As(err, &ae) || ae.Kind != errdefs.AuthExpiredToken {
		t.Errorf("after its lifetime: %v, want expired", err)
	}
	clk.t = clk.t.Add(-time.Hour)
	if err := a.DeleteAccessKey(ctx, ak.AccessKeyID); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := a.ConsoleIdentity(token); !errors.As(err, &ae) || ae.Kind != errdefs.AuthUnknownKey {
		t.Errorf("after its key was deleted: %v, want an unknown key", err)
	}
}

// otherLast is token's last base64url character with its 6-bit value
// xor-ed with bit: bit 4 changes the MAC's last byte, bit 1 only the
// padding bits a lax decoder ignores.
func otherLast(token string, bit byte) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alphabet, token[len(token)-1])
	return string(alphabet[byte(i)^bit])
}
