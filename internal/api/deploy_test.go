package api_test

import (
	"archive/zip"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"icebox/internal/daemon"
)

// What deploy tools need beyond create and invoke: tags, every
// configuration field honoured or refused by name, DryRun, and the reads
// they make on every refresh. Without root, against fake sandboxes.

func createBody(name string, extra map[string]any) map[string]any {
	in := map[string]any{"FunctionName": name, "Runtime": "provided.al2023", "Handler": "bootstrap",
		"Role": "arn:aws:iam::000000000000:role/r", "Code": map[string]string{"ZipFile": codeZip()}}
	for k, v := range extra {
		in[k] = v
	}
	return in
}

// getJSON sends a call as root and decodes a successful answer into out.
func getJSON(t *testing.T, d *daemon.Daemon, method, path string, body any, want int, out any) {
	t.Helper()
	var b []byte
	if body != nil {
		b, _ = json.Marshal(body)
	}
	a, raw := send(t, d, root, method, path, b, nil)
	if a.status != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, a.status, raw, want)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %s: %v", method, path, raw, err)
		}
	}
}

func TestTags(t *testing.T) {
	d := startDaemon(t)
	const fns = "/2015-03-31/functions"
	arn := "arn:aws:lambda:us-east-1:000000000000:function:tagged"
	tags := "/2017-03-31/tags/" + url.PathEscape(arn)
	getJSON(t, d, "POST", fns, createBody("tagged", map[string]any{"Tags": map[string]string{"team": "a", "env": "dev"}}), 201, nil)

	var got struct {
		Tags map[string]string
	}
	getJSON(t, d, "GET", fns+"/tagged", nil, 200, &got)
	if len(got.Tags) != 2 || got.Tags["team"] != "a" {
		t.Errorf("GetFunction Tags = %v", got.Tags)
	}
	getJSON(t, d, "POST", tags, map[string]any{"Tags": map[string]string{"team": "b", "cost": "1"}}, 204, nil)
	getJSON(t, d, "DELETE", tags+"?tagKeys=env&tagKeys=absent", nil, 204, nil)
	got.Tags = nil
	getJSON(t, d, "GET", tags, nil, 200, &got)
	if want := map[string]string{"team": "b", "cost": "1"}; fmt.Sprint(got.Tags) != fmt.Sprint(want) {
		t.Errorf("ListTags = %v, want %v", got.Tags, want)
	}

	many := map[string]string{}
	for i := range 49 {
		many[fmt.Sprintf("k%d", i)] = "v"
	}
	for _, tc := range []struct {
		what         string
		method, path string
		body         any
		want         string
	}{
		{"aws: prefix", "POST", tags, map[string]any{"Tags": map[string]string{"AWS:x": "v"}}, "aws:"},
		{"key of 129", "POST", tags, map[string]any{"Tags": map[string]string{strings.Repeat("k", 129): "v"}}, "128"},
		{"value of 257", "POST", tags, map[string]any{"Tags": map[string]string{"k": strings.Repeat("v", 257)}}, "256"},
		{"51 tags after merge", "POST", tags, map[string]any{"Tags": many}, "50"},
		{"no Tags", "POST", tags, map[string]any{}, "tags"},
		{"no tagKeys", "DELETE", tags, nil, "tagKeys"},
		{"a name, not an ARN", "GET", "/2017-03-31/tags/tagged", nil, "resource"},
		{"a qualified ARN", "GET", "/2017-03-31/tags/" + url.PathEscape(arn+":1"), nil, "unqualified"},
		{"aws: on create", "POST", fns, createBody("t2", map[string]any{"Tags": map[string]string{"aws:x": "v"}}), "aws:"},
	} {
		a := call(t, d, root, tc.method, tc.path, "", tc.body)
		if a.status != 400 || a.code != "InvalidParameterValueException" || !strings.Contains(a.msg, tc.want) {
			t.Errorf("%s: %d %s %q, want 400 InvalidParameterValueException mentioning %q", tc.what, a.status, a.code, a.msg, tc.want)
		}
	}
	getJSON(t, d, "GET", tags, nil, 200, &got)
	if len(got.Tags) != 2 {
		t.Errorf("refused tag calls changed the tags: %v", got.Tags)
	}
}

func TestConfigurationFieldsHonouredOrRefused(t *testing.T) {
	d := startDaemon(t)
	const fns = "/2015-03-31/functions"
	// What Terraform sends for a function with every optional feature off.
	defaults := map[string]any{
		"Layers": []string{}, "VpcConfig": map[string]any{"SubnetIds": []string{}, "SecurityGroupIds": []string{}, "Ipv6AllowedForDualStack": false},
		"KMSKeyArn": "", "TracingConfig": map[string]string{"Mode": "PassThrough"}, "FileSystemConfigs": []any{},
		"ImageConfig": map[string]any{}, "SnapStart": map[string]string{"ApplyOn": "None"},
		"LoggingConfig": map[string]string{"LogFormat": "Text", "LogGroup": "/aws/lambda/f"}, "DurableConfig": nil,
		"DeadLetterConfig": map[string]string{"TargetArn": ""}, "Environment": map[string]any{"Variables": map[string]string{}},
		"PackageType": "Zip", "Description": "", "NotALambdaField": 1,
	}
	var cfg struct {
		State, LastUpdateStatus string
		StateReasonCode         *string
		TracingConfig           struct{ Mode string }
	}
	getJSON(t, d, "POST", fns, createBody("f", defaults), 201, &cfg)
	if cfg.State != "Active" || cfg.LastUpdateStatus != "Successful" || cfg.StateReasonCode != nil || cfg.TracingConfig.Mode != "PassThrough" {
		t.Errorf("created: %+v", cfg)
	}
	delete(defaults, "PackageType")
	getJSON(t, d, "PUT", fns+"/f/configuration", defaults, 200, nil)

	for _, tc := range []struct{ field, json string }{
		{"VpcConfig.Ipv6AllowedForDualStack", `{"VpcConfig":{"SubnetIds":["subnet-1"],"Ipv6AllowedForDualStack":true}}`},
		{"KMSKeyArn", `{"KMSKeyArn":"arn:aws:kms:us-east-1:000000000000:key/k"}`},
		{"TracingConfig.Mode", `{"TracingConfig":{"Mode":"Active"}}`},
		{"FileSystemConfigs", `{"FileSystemConfigs":[{"Arn":"arn:aws:elasticfilesystem:us-east-1:000000000000:access-point/fsap-1","LocalMountPath":"/mnt/x"}]}`},
		{"ImageConfig", `{"ImageConfig":{"Command":["x"]}}`},
		{"SnapStart.ApplyOn", `{"SnapStart":{"ApplyOn":"PublishedVersions"}}`},
		{"DurableConfig", `{"DurableConfig":{"ExecutionTimeout":60}}`},
		{"CapacityProviderConfig", `{"CapacityProviderConfig":{"LambdaManagedInstancesCapacityProviderConfig":{"CapacityProviderArn":"x"}}}`},
	} {
		var extra map[string]any
		json.Unmarshal([]byte(tc.json), &extra)
		for _, req := range []struct {
			method, path string
			body         any
		}{{"POST", fns, createBody("g", extra)}, {"PUT", fns + "/f/configuration", extra}} {
			a := call(t, d, root, req.method, req.path, "", req.body)
			if a.status != 400 || a.code != "InvalidParameterValueException" || !strings.Contains(a.msg, tc.field) || !strings.Contains(a.msg, "icebox does not support") {
				t.Errorf("%s %s: %d %s %q, want 400 naming %s", req.method, tc.field, a.status, a.code, a.msg, tc.field)
			}
		}
	}
	for _, tc := range []struct{ field, json string }{
		{"CodeSigningConfigArn", `{"CodeSigningConfigArn":"arn:aws:lambda:us-east-1:000000000000:code-signing-config:csc-0123456789abcdefg"}`},
		{"SourceKMSKeyArn", `{"Code":{"ZipFile":"` + codeZip() + `","SourceKMSKeyArn":"arn:aws:kms:us-east-1:000000000000:key/k"}}`},
		{"TenancyConfig", `{"TenancyConfig":{"TenantIsolationMode":"PER_TENANT"}}`},
	} {
		var extra map[string]any
		json.Unmarshal([]byte(tc.json), &extra)
		if a := call(t, d, root, "POST", fns, "", createBody("g", extra)); a.status != 400 || !strings.Contains(a.msg, tc.field) {
			t.Errorf("create with %s: %d %s %q", tc.field, a.status, a.code, a.msg)
		}
	}
	if a := call(t, d, root, "GET", fns+"/g", "", nil); a.status != 404 {
		t.Errorf("a refused create left function g: %d", a.status)
	}
}

func TestUpdateCodeDryRun(t *testing.T) {
	d := startDaemon(t)
	const fns = "/2015-03-31/functions"
	var before, after, dry struct{ CodeSha256, RevisionId, LastModified string }
	getJSON(t, d, "POST", fns, createBody("f", nil), 201, &before)
	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	f, _ := zw.Create("bootstrap")
	f.Write([]byte("#!/bin/sh\necho other\n"))
	zw.Close()
	other := base64.StdEncoding.EncodeToString(zb.Bytes())
	getJSON(t, d, "PUT", fns+"/f/code", map[string]any{"ZipFile": other, "DryRun": true}, 200, &dry)
	getJSON(t, d, "GET", fns+"/f/configuration", nil, 200, &after)
	if after != before || dry != before {
		t.Errorf("DryRun changed the function: before %+v, dry run answered %+v, after %+v", before, dry, after)
	}
	for _, tc := range []struct {
		what   string
		body   map[string]any
		status int
	}{
		{"not a zip", map[string]any{"ZipFile": "bm90IGEgemlw", "DryRun": true}, 400},
		{"no code", map[string]any{"DryRun": true}, 400},
		{"stale revision", map[string]any{"ZipFile": other, "DryRun": true, "RevisionId": "stale"}, 412},
		{"publish", map[string]any{"ZipFile": other, "DryRun": true, "Publish": true}, 200},
	} {
		if a := call(t, d, root, "PUT", fns+"/f/code", "", tc.body); a.status != tc.status {
			t.Errorf("DryRun, %s: %d %s %q, want %d", tc.what, a.status, a.code, a.msg, tc.status)
		}
	}
	var versions struct{ Versions []struct{ Version string } }
	getJSON(t, d, "GET", fns+"/f/versions", nil, 200, &versions)
	if len(versions.Versions) != 1 {
		t.Errorf("a dry run with Publish published: %+v", versions)
	}
}

func TestUnconfiguredFeatureReads(t *testing.T) {
	d := startDaemon(t)
	getJSON(t, d, "POST", "/2015-03-31/functions", createBody("f", nil), 201, nil)
	for _, tc := range []struct{ path, want string }{
		{"/2020-06-30/functions/f/code-signing-config", `{"CodeSigningConfigArn":"","FunctionName":"f"}`},
		{"/2021-07-20/functions/f/runtime-management-config", `{"FunctionArn":"arn:aws:lambda:us-east-1:000000000000:function:f","RuntimeVersionArn":null,"UpdateRuntimeOn":"Auto"}`},
		{"/2024-08-31/functions/f/recursion-config", `{"RecursiveLoop":"Terminate"}`},
		{"/2021-10-31/functions/f/urls", `{"FunctionUrlConfigs":[]}`},
		{"/2015-03-31/event-source-mappings/?FunctionName=f", `{"EventSourceMappings":[]}`},
		{"/2019-09-30/functions/f/provisioned-concurrency?List=ALL", `{"ProvisionedConcurrencyConfigs":[]}`},
		{"/2019-09-30/functions/f/concurrency", `{}`},
	} {
		a, raw := send(t, d, root, "GET", tc.path, nil, nil)
		if a.status != 200 || strings.TrimSpace(string(raw)) != tc.want {
			t.Errorf("GET %s: %d %s, want 200 %s", tc.path, a.status, raw, tc.want)
		}
	}
	if a := call(t, d, root, "GET", "/2015-03-31/event-source-mappings/?FunctionName=missing", "", nil); a.status != 404 {
		t.Errorf("event source mappings of a missing function: %d %s", a.status, a.code)
	}
	if a := call(t, d, root, "GET", "/2019-09-30/functions/f/provisioned-concurrency?Qualifier=1", "", nil); a.status != 404 || a.code != "ProvisionedConcurrencyConfigNotFoundException" && a.code != "ResourceNotFoundException" {
		t.Errorf("GetProvisionedConcurrencyConfig: %d %s", a.status, a.code)
	}
}

// Tags and IAM as on Lambda: tagging on create needs lambda:TagResource,
// and GetFunction shows tags only to a caller allowed lambda:ListTags.
func TestTagsAuthorization(t *testing.T) {
	d := startDaemon(t)
	const fns = "/2015-03-31/functions"
	tagged := createBody("f", map[string]any{"Tags": map[string]string{"team": "a"}})
	creator := user(t, d, "creator", "lambda:CreateFunction", "iam:PassRole")
	if a := call(t, d, creator, "POST", fns, "", tagged); a.code != "AccessDeniedException" || !strings.Contains(a.msg, "lambda:TagResource") {
		t.Errorf("create with tags without lambda:TagResource: %d %s %q", a.status, a.code, a.msg)
	}
	tagger := user(t, d, "tagger", "lambda:CreateFunction", "iam:PassRole", "lambda:TagResource")
	if a := call(t, d, tagger, "POST", fns, "", tagged); a.status != 201 {
		t.Fatalf("create with tags and lambda:TagResource: %d %s %q", a.status, a.code, a.msg)
	}
	for _, tc := range []struct {
		who      string
		actions  []string
		wantTags bool
	}{{"reader", []string{"lambda:GetFunction"}, false}, {"tag-reader", []string{"lambda:GetFunction", "lambda:ListTags"}, true}} {
		_, raw := send(t, d, user(t, d, tc.who, tc.actions...), "GET", fns+"/f", nil, nil)
		var out map[string]json.RawMessage
		json.Unmarshal(raw, &out)
		if _, has := out["Tags"]; has != tc.wantTags || out["Configuration"] == nil {
			t.Errorf("GetFunction as %s: Tags present %v, want %v (%s)", tc.who, has, tc.wantTags, raw)
		}
	}
}
