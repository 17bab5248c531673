package policy

import (
	"encoding/json"
	"strings"
	"testing"
)

const fnArn = "arn:aws:lambda:us-east-1:000000000000:function:"

func mustParse(t *testing.T, s string) Document {
	t.Helper()
	d, err := Parse([]byte(s))
	if err != nil {
		t.Fatalf("Parse(%s): %v", s, err)
	}
	return d
}

func TestEvaluate(t *testing.T) {
	alice := "arn:aws:iam::000000000000:user/alice"
	invokeAll := mustParse(t, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"lambda:Invoke*","Resource":"`+fnArn+`*"}]}`)
	denyProd := mustParse(t, `{"Statement":[{"Effect":"Deny","Action":["lambda:*"],"Resource":["`+fnArn+`prod-*"]}]}`)
	notGet := mustParse(t, `{"Statement":[{"Effect":"Allow","NotAction":"lambda:Get*","Resource":"*"}]}`)
	grantAlice := mustParse(t, `{"Statement":[{"Sid":"a","Effect":"Allow","Principal":{"AWS":"`+alice+`"},"Action":"lambda:InvokeFunction","Resource":"`+fnArn+`shared"}]}`)
	grantAccount := mustParse(t, `{"Statement":[{"Sid":"a","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"lambda:InvokeFunction","Resource":"`+fnArn+`shared"}]}`)
	denyAny := mustParse(t, `{"Statement":[{"Effect":"Deny","Principal":"*","Action":"lambda:InvokeFunction","Resource":"`+fnArn+`shared"}]}`)
	grantRole := mustParse(t, `{"Statement":[{"Sid":"r","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:role/worker"},"Action":"lambda:InvokeFunction","Resource":"`+fnArn+`shared"}]}`)
	session := func(p string) Request {
		return Request{Principal: p, Account: "000000000000", Action: "lambda:InvokeFunction", Resource: fnArn + "shared"}
	}
	withSource := mustParse(t, `{"Statement":[{"Effect":"Allow","Principal":"*","Action":"lambda:InvokeFunction","Resource":"*","Condition":{"ArnLike":{"AWS:SourceArn":"arn:aws:s3:::bucket-*"}}}]}`)

	req := func(action, fn string) Request {
		return Request{Principal: alice, Account: "000000000000", Action: action, Resource: fnArn + fn}
	}
	cases := []struct {
		name     string
		req      Request
		identity []Document
		resource *Document
		want     Decision
	}{
		{"no policy", req("lambda:InvokeFunction", "f"), nil, nil, ImplicitDeny},
		{"wildcard action and resource", req("lambda:InvokeFunction", "f"), []Document{invokeAll}, nil, Allowed},
		{"action case-insensitive", req("LAMBDA:invokefunction", "f"), []Document{invokeAll}, nil, Allowed},
		{"other action", req("lambda:DeleteFunction", "f"), []Document{invokeAll}, nil, ImplicitDeny},
		{"explicit deny wins", req("lambda:InvokeFunction", "prod-api"), []Document{invokeAll, denyProd}, nil, ExplicitDeny},
		{"deny elsewhere no effect", req("lambda:InvokeFunction", "dev-api"), []Document{invokeAll, denyProd}, nil, Allowed},
		{"NotAction excludes", req("lambda:GetFunction", "f"), []Document{notGet}, nil, ImplicitDeny},
		{"NotAction allows others", req("lambda:DeleteFunction", "f"), []Document{notGet}, nil, Allowed},
		{"resource policy names caller", req("lambda:InvokeFunction", "shared"), nil, &grantAlice, Allowed},
		{"resource policy other function", req("lambda:InvokeFunction", "other"), nil, &grantAlice, ImplicitDeny},
		{"resource policy other caller", Request{Principal: "arn:aws:iam::000000000000:user/bob", Action: "lambda:InvokeFunction", Resource: fnArn + "shared"}, nil, &grantAlice, ImplicitDeny},
		{"role principal grants its sessions", session("arn:aws:sts::000000000000:assumed-role/worker/fn-a"), nil, &grantRole, Allowed},
		{"role principal, another role's session", session("arn:aws:sts::000000000000:assumed-role/worker2/fn-a"), nil, &grantRole, ImplicitDeny},
		{"role principal, another account's session", session("arn:aws:sts::111111111111:assumed-role/worker/fn-a"), nil, &grantRole, ImplicitDeny},
		{"role principal, a user of that name", session("arn:aws:iam::000000000000:user/worker"), nil, &grantRole, ImplicitDeny},
		{"account principal delegates", req("lambda:InvokeFunction", "shared"), nil, &grantAccount, ImplicitDeny},
		{"resource deny beats identity allow", req("lambda:InvokeFunction", "shared"), []Document{invokeAll}, &denyAny, ExplicitDeny},
		{"condition key absent", req("lambda:InvokeFunction", "f"), nil, &withSource, ImplicitDeny},
		{"condition key matches", Request{Principal: alice, Action: "lambda:InvokeFunction", Resource: fnArn + "f", Context: map[string]string{"aws:sourcearn": "arn:aws:s3:::bucket-1"}}, nil, &withSource, Allowed},
	}
	for _, c := range cases {
		if got := Evaluate(c.req, c.identity, c.resource); got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	for doc, want := range map[string]string{
		`{}`: "no Statement",
		`{"Statement":[{"Effect":"Maybe","Action":"lambda:*","Resource":"*"}]}`:                                                 "Effect must be Allow or Deny",
		`{"Statement":[{"Effect":"Allow","Resource":"*"}]}`:                                                                     "Action or NotAction is required",
		`{"Statement":[{"Effect":"Allow","Action":"lambda:*"}]}`:                                                                "Resource is required",
		`{"Statement":[{"Effect":"Allow","Action":"invoke","Resource":"*"}]}`:                                                   "must look like service:Operation",
		`{"Statement":[{"Effect":"Allow","Action":5,"Resource":"*"}]}`:                                                          "string or a list",
		`{"Statement":[{"Effect":"Allow","Action":"a:b","Resource":"*","Bogus":1}]}`:                                            "unknown field",
		`{"Version":"2020-01-01","Statement":[{"Effect":"Allow","Action":"a:b","Resource":"*"}]}`:                               "unknown Version",
		`{"Statement":[{"Effect":"Allow","Action":"a:b","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"1.2.3.4"}}}]}`: "not supported",
		`{"Statement":[]} {}`: "trailing data",
		`[`:                   "policy document",
		`{"Statement":[{"Effect":"Allow","Principal":"me","Action":"a:b","Resource":"*"}]}`: "Principal",
	} {
		_, err := Parse([]byte(doc))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%s) = %v, want error containing %q", doc, err, want)
		}
	}
	if _, err := Parse([]byte(`{"Statement":[{"Effect":"Allow","Action":"a:b","Resource":"` + strings.Repeat("x", MaxDocumentBytes) + `"}]}`)); err == nil {
		t.Error("oversized document accepted")
	}
}

func TestPrincipalRoundTrip(t *testing.T) {
	d := mustParse(t, `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::1:user/a","Service":["s3.amazonaws.com","sns.amazonaws.com"]},"Action":"a:b","Resource":"*"},{"Effect":"Allow","Principal":"*","Action":"a:b","Resource":"*"}]}`)
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	want := `"Principal":{"AWS":"arn:aws:iam::1:user/a","Service":["s3.amazonaws.com","sns.amazonaws.com"]}`
	if !strings.Contains(string(b), want) || !strings.Contains(string(b), `"Principal":"*"`) {
		t.Fatalf("marshalled %s", b)
	}
}

func TestMatch(t *testing.T) {
	for _, c := range []struct {
		p, s string
		want bool
	}{
		{"*", "", true}, {"*", "anything", true}, {"a*c", "abbbc", true}, {"a*c", "abbb", false},
		{"a?c", "abc", true}, {"a?c", "ac", false}, {"*:function:f", "arn:x:function:f", true},
		{"*a*a*a*a*a*b", strings.Repeat("a", 200), false}, {"", "", true}, {"", "a", false},
	} {
		if got := Match(c.p, c.s); got != c.want {
			t.Errorf("Match(%q, %q) = %v", c.p, c.s, got)
		}
	}
}

func FuzzParseEvaluate(f *testing.F) {
	f.Add([]byte(`{"Statement":[{"Effect":"Allow","Action":"lambda:*","Resource":"*"}]}`), "lambda:InvokeFunction", fnArn+"f")
	f.Add([]byte(`{"Statement":[{"Effect":"Deny","Principal":"*","NotAction":["a:*"],"Resource":["*"],"Condition":{"StringLike":{"k":["v*"]}}}]}`), "a:b", "*")
	f.Fuzz(func(t *testing.T, doc []byte, action, resource string) {
		d, err := Parse(doc)
		if err != nil {
			return
		}
		Evaluate(Request{Principal: "p", Action: action, Resource: resource}, []Document{d}, &d)
		if _, err := json.Marshal(d); err != nil {
			t.Fatalf("a parsed document does not marshal: %v", err)
		}
	})
}

func FuzzMatch(f *testing.F) {
	f.Add("a*b?c", "axxbyc")
	f.Fuzz(func(t *testing.T, p, s string) {
		if Match(p, s) != Match(p, s) {
			t.Fatal("not deterministic")
		}
		if !Match(s, s) && !strings.ContainsAny(s, "*?") {
			t.Fatalf("%q does not match itself", s)
		}
	})
}
