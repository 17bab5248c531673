package invoke_test

import (
	"errors"
	"strings"
	"testing"

	"icebox/internal/errdefs"
	"icebox/internal/invoke"
	"icebox/internal/model"
)

// FuzzParseFunctionRefRoundTrip complements FuzzParseFunctionRef (which
// checks that an accepted name is valid and part of the reference): whatever
// a reference resolves to must resolve the same way when written in every
// other form Lambda accepts, so the cache key for one function never depends
// on how the caller spelled it.
func FuzzParseFunctionRefRoundTrip(f *testing.F) {
	for _, s := range []string{
		"f", "f:1", "f:$LATEST", "my-fn_2:prod", "f:", ":", "f::",
		"000000000000:function:f", "000000000000:function:f:prod", "111111111111:function:f",
		"arn:aws:lambda:us-east-1:000000000000:function:f",
		"arn:aws:lambda:us-east-1:000000000000:function:f:7",
		"arn:aws:lambda:eu-west-1:000000000000:function:f",
		"arn:aws:lambda:us-east-1:000000000000:function:f:1:2",
		"f:\x00", "f: ", "🙂:🙂",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ref string) {
		name, qual, err := invoke.ParseFunctionRef(ref, region, account)
		if err != nil {
			switch colons := strings.Count(ref, ":"); {
			case errors.Is(err, errdefs.ErrInvalid):
			case errors.Is(err, errdefs.ErrNotFound) && (colons == 2 || colons == 3 || colons == 6 || colons == 7):
				// Only an ARN or partial ARN names another account or
				// region; such a function cannot be here.
			default:
				t.Fatalf("ParseFunctionRef(%q): %v, want ErrInvalid (or ErrNotFound for a foreign ARN)", ref, err)
			}
			return
		}
		if name == "" || model.ValidateName(name) != nil {
			t.Fatalf("ParseFunctionRef(%q) accepted name %q", ref, name)
		}
		suffix := ""
		if qual != "" {
			suffix = ":" + qual
		}
		forms := []string{
			name + suffix,
			account + ":function:" + name + suffix,
			"arn:aws:lambda:" + region + ":" + account + ":function:" + name + suffix,
		}
		if qual != "" {
			// The unqualified name must also stand on its own.
			forms = append(forms, name)
		}
		for i, form := range forms {
			wantQual := qual
			if i == 3 {
				wantQual = ""
			}
			n, q, err := invoke.ParseFunctionRef(form, region, account)
			if err != nil || n != name || q != wantQual {
				t.Fatalf("ParseFunctionRef(%q) = %q, %q; re-parsing %q = %q, %q, %v", ref, name, qual, form, n, q, err)
			}
		}
	})
}
