package api_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"

	"icebox/internal/daemon"
)

// Versions and aliases through aws-sdk-go-v2 against the whole daemon with
// fake sandboxes: publishing, qualified reads and calls, routing, deletion
// rules, and the errors Lambda gives for each misuse.

func sdkClient(d *daemon.Daemon, creds *aws.Credentials) *lambda.Client {
	return lambda.New(lambda.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://" + d.Addr()), Retryer: aws.NopRetryer{},
		Credentials: credentials.NewStaticCredentialsProvider(creds.AccessKeyID, creds.SecretAccessKey, "")})
}

// createAlias creates the alias name of fn routing to version.
func createAlias(t *testing.T, c *lambda.Client, fn, name, version string) {
	t.Helper()
	if _, err := c.CreateAlias(context.Background(), &lambda.CreateAliasInput{FunctionName: aws.String(fn), Name: aws.String(name), FunctionVersion: aws.String(version)}); err != nil {
		t.Fatal(err)
	}
}

func createSDK(t *testing.T, c *lambda.Client, name string, publish bool) *lambda.CreateFunctionOutput {
	t.Helper()
	zip, _ := base64.StdEncoding.DecodeString(codeZip())
	out, err := c.CreateFunction(context.Background(), &lambda.CreateFunctionInput{FunctionName: aws.String(name), Runtime: types.RuntimeProvidedal2023,
		Handler: aws.String("bootstrap"), Role: aws.String("arn:aws:iam::000000000000:role/r"), Code: &types.FunctionCode{ZipFile: zip}, Publish: publish})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// apiErr is the AWS error code and HTTP status of err ("" when nil).
func apiErr(err error) (string, int) {
	var ae smithy.APIError
	var re interface{ HTTPStatusCode() int }
	code, status := "", 0
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	return code, status
}

func wantErr(t *testing.T, what string, err error, code string, status int) {
	t.Helper()
	if c, s := apiErr(err); c != code || s != status {
		t.Errorf("%s: %v; want %d %s", what, err, status, code)
	}
}

func TestPublishAndQualifiedCalls(t *testing.T) {
	d := startDaemon(t)
	c := sdkClient(d, root)
	ctx := context.Background()
	created := createSDK(t, c, "f", true)
	if aws.ToString(created.Version) != "1" || !strings.HasSuffix(aws.ToString(created.FunctionArn), ":function:f:1") {
		t.Fatalf("create with Publish answered version %s %s; want 1 and its ARN", aws.ToString(created.Version), aws.ToString(created.FunctionArn))
	}
	again, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("f")})
	if err != nil || aws.ToString(again.Version) != "1" {
		t.Errorf("publish with nothing changed: %v %v; want version 1 again", again, err)
	}
	_, err = c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("f"), CodeSha256: aws.String("d3Jvbmc=")})
	wantErr(t, "publish with another CodeSha256", err, "PreconditionFailedException", 412)
	_, err = c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("f"), RevisionId: aws.String("stale")})
	wantErr(t, "publish with a stale RevisionId", err, "PreconditionFailedException", 412)

	if _, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("f"), MemorySize: aws.Int32(256)}); err != nil {
		t.Fatal(err)
	}
	v2, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("f"), Description: aws.String("second"), CodeSha256: created.CodeSha256})
	if err != nil || aws.ToString(v2.Version) != "2" || aws.ToString(v2.Description) != "second" || aws.ToInt32(v2.MemorySize) != 256 {
		t.Fatalf("publish after a change: %+v %v", v2, err)
	}
	// Version 1 stays as it was published, however it is named.
	for _, in := range []*lambda.GetFunctionConfigurationInput{
		{FunctionName: aws.String("f"), Qualifier: aws.String("1")},
		{FunctionName: aws.String("f:1")},
		{FunctionName: aws.String("arn:aws:lambda:us-east-1:000000000000:function:f:1")},
	} {
		got, err := c.GetFunctionConfiguration(ctx, in)
		if err != nil || aws.ToInt32(got.MemorySize) != 128 || aws.ToString(got.Version) != "1" {
			t.Errorf("GetFunctionConfiguration %s %s: %+v %v; want version 1 at 128 MB", aws.ToString(in.FunctionName), aws.ToString(in.Qualifier), got, err)
		}
	}
	if fn, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("f"), Qualifier: aws.String("2")}); err != nil || aws.ToString(fn.Configuration.Version) != "2" {
		t.Errorf("GetFunction of version 2: %v", err)
	} else if resp, err := http.Get(aws.ToString(fn.Code.Location)); err != nil || resp.StatusCode != 200 {
		t.Errorf("code of version 2 from %s: %v %v", aws.ToString(fn.Code.Location), resp, err)
	}
	_, err = c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("f"), Qualifier: aws.String("9")})
	wantErr(t, "a version never published", err, "ResourceNotFoundException", 404)
	_, err = c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("f:1"), Timeout: aws.Int32(9)})
	wantErr(t, "changing a published version", err, "InvalidParameterValueException", 400)

	// Paging: $LATEST first, then the versions in order.
	p1, err := c.ListVersionsByFunction(ctx, &lambda.ListVersionsByFunctionInput{FunctionName: aws.String("f"), MaxItems: aws.Int32(2)})
	if err != nil || len(p1.Versions) != 2 || aws.ToString(p1.Versions[0].Version) != "$LATEST" || aws.ToString(p1.Versions[1].Version) != "1" || p1.NextMarker == nil {
		t.Fatalf("first page: %+v %v", p1, err)
	}
	p2, err := c.ListVersionsByFunction(ctx, &lambda.ListVersionsByFunctionInput{FunctionName: aws.String("f"), Marker: p1.NextMarker})
	if err != nil || len(p2.Versions) != 1 || aws.ToString(p2.Versions[0].Version) != "2" || p2.NextMarker != nil {
		t.Errorf("second page: %+v %v", p2, err)
	}

	// Calls run the version named, and say so.
	for _, tc := range []struct{ name, qualifier, want string }{
		{"f", "", "$LATEST"}, {"f", "1", "1"}, {"f:2", "", "2"},
		{"arn:aws:lambda:us-east-1:000000000000:function:f:1", "", "1"},
	} {
		out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(tc.name), Qualifier: aws.String(tc.qualifier), LogType: types.LogTypeTail})
		if tc.qualifier == "" {
			out, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(tc.name), LogType: types.LogTypeTail})
		}
		if err != nil {
			t.Fatalf("invoke %s %s: %v", tc.name, tc.qualifier, err)
		}
		tail, _ := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
		if aws.ToString(out.ExecutedVersion) != tc.want || !strings.Contains(string(tail), " Version: "+tc.want+"\n") {
			t.Errorf("invoke %s %s: executed %s, log %q; want version %s", tc.name, tc.qualifier, aws.ToString(out.ExecutedVersion), tail, tc.want)
		}
	}

	_, err = c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("f"), Qualifier: aws.String("$LATEST")})
	wantErr(t, "deleting $LATEST alone", err, "InvalidParameterValueException", 400)
	if _, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("f"), Qualifier: aws.String("2")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("f:2")})
	wantErr(t, "a deleted version", err, "ResourceNotFoundException", 404)
	if _, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("f"), MemorySize: aws.Int32(512)}); err != nil {
		t.Fatal(err)
	}
	if v3, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("f")}); err != nil || aws.ToString(v3.Version) != "3" {
		t.Errorf("publish after deleting version 2: %v %v; want 3 (numbers are never reused)", v3, err)
	}
	if _, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("f"), Qualifier: aws.String("1")}); err != nil {
		t.Errorf("version 1 after deleting 2: %v", err)
	}
}

func TestAliases(t *testing.T) {
	d := startDaemon(t)
	c := sdkClient(d, root)
	ctx := context.Background()
	createSDK(t, c, "f", true)
	if _, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("f"), Timeout: aws.Int32(5)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("f")}); err != nil {
		t.Fatal(err)
	}
	// Version 3 runs as another role.
	if _, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("f"), Role: aws.String("arn:aws:iam::000000000000:role/other")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("f")}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		what   string
		in     lambda.CreateAliasInput
		code   string
		status int
	}{
		{"a numeric name", lambda.CreateAliasInput{Name: aws.String("12"), FunctionVersion: aws.String("1")}, "InvalidParameterValueException", 400},
		{"a version never published", lambda.CreateAliasInput{Name: aws.String("a"), FunctionVersion: aws.String("7")}, "ResourceNotFoundException", 404},
		{"a weight over 1", lambda.CreateAliasInput{Name: aws.String("a"), FunctionVersion: aws.String("2"),
			RoutingConfig: &types.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{"1": 1.5}}}, "InvalidParameterValueException", 400},
		{"two extra versions", lambda.CreateAliasInput{Name: aws.String("a"), FunctionVersion: aws.String("2"),
			RoutingConfig: &types.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{"1": 0.1, "9": 0.1}}}, "InvalidParameterValueException", 400},
		{"versions with different roles", lambda.CreateAliasInput{Name: aws.String("a"), FunctionVersion: aws.String("3"),
			RoutingConfig: &types.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{"1": 0.1}}}, "InvalidParameterValueException", 400},
		{"weights from $LATEST", lambda.CreateAliasInput{Name: aws.String("a"), FunctionVersion: aws.String("$LATEST"),
			RoutingConfig: &types.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{"1": 0.1}}}, "InvalidParameterValueException", 400},
	} {
		in := tc.in
		in.FunctionName = aws.String("f")
		_, err := c.CreateAlias(ctx, &in)
		wantErr(t, tc.what, err, tc.code, tc.status)
	}
	live, err := c.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("f"), Name: aws.String("live"), FunctionVersion: aws.String("2"),
		RoutingConfig: &types.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{"1": 0.1}}})
	if err != nil || !strings.HasSuffix(aws.ToString(live.AliasArn), ":function:f:live") || aws.ToString(live.RevisionId) == "" {
		t.Fatalf("create alias: %+v %v", live, err)
	}
	_, err = c.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("f"), Name: aws.String("live"), FunctionVersion: aws.String("1")})
	wantErr(t, "an alias that exists", err, "ResourceConflictException", 409)

	// 90/10: each call says which version ran.
	counts := map[string]int{}
	const calls = 1000
	for range calls {
		out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("f:live")})
		if err != nil {
			t.Fatal(err)
		}
		counts[aws.ToString(out.ExecutedVersion)]++
	}
	if share := float64(counts["1"]) / calls; counts["1"]+counts["2"] != calls || share < 0.05 || share > 0.15 {
		t.Errorf("alias 90/10 over %d calls ran %v; want version 1 at 10%% ± 5 points", calls, counts)
	}

	_, err = c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("f"), Qualifier: aws.String("1")})
	wantErr(t, "deleting a version an alias routes to", err, "ResourceConflictException", 409)
	_, err = c.UpdateAlias(ctx, &lambda.UpdateAliasInput{FunctionName: aws.String("f"), Name: aws.String("live"), RevisionId: aws.String("stale")})
	wantErr(t, "update with a stale RevisionId", err, "PreconditionFailedException", 412)
	up, err := c.UpdateAlias(ctx, &lambda.UpdateAliasInput{FunctionName: aws.String("f"), Name: aws.String("live"), RevisionId: live.RevisionId,
		FunctionVersion: aws.String("1"), RoutingConfig: &types.AliasRoutingConfiguration{}})
	if err != nil || aws.ToString(up.FunctionVersion) != "1" || up.RoutingConfig != nil || aws.ToString(up.RevisionId) == aws.ToString(live.RevisionId) {
		t.Fatalf("update alias: %+v %v", up, err)
	}
	if out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("f"), Qualifier: aws.String("live")}); err != nil || aws.ToString(out.ExecutedVersion) != "1" {
		t.Errorf("invoke through the moved alias: %v", err)
	}
	if list, err := c.ListAliases(ctx, &lambda.ListAliasesInput{FunctionName: aws.String("f"), FunctionVersion: aws.String("2")}); err != nil || len(list.Aliases) != 0 {
		t.Errorf("aliases of version 2: %+v %v", list, err)
	}
	if list, err := c.ListAliases(ctx, &lambda.ListAliasesInput{FunctionName: aws.String("f")}); err != nil || len(list.Aliases) != 1 {
		t.Errorf("aliases: %+v %v", list, err)
	}
	if _, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("f"), Qualifier: aws.String("2")}); err != nil {
		t.Errorf("deleting a version no alias routes to: %v", err)
	}
	if _, err := c.DeleteAlias(ctx, &lambda.DeleteAliasInput{FunctionName: aws.String("f"), Name: aws.String("live")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetAlias(ctx, &lambda.GetAliasInput{FunctionName: aws.String("f"), Name: aws.String("live")})
	wantErr(t, "a deleted alias", err, "ResourceNotFoundException", 404)
	_, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("f:live")})
	wantErr(t, "invoking a deleted alias", err, "ResourceNotFoundException", 404)
}

// TestQualifiedPermissions: a permission on an alias admits calls through
// that alias only, not the function or its versions.
func TestQualifiedPermissions(t *testing.T) {
	d := startDaemon(t)
	c := sdkClient(d, root)
	ctx := context.Background()
	createSDK(t, c, "f", true)
	createAlias(t, c, "f", "live", "1")
	bob := sdkClient(d, user(t, d, "bob"))
	_, err := c.AddPermission(ctx, &lambda.AddPermissionInput{FunctionName: aws.String("f"), Qualifier: aws.String("$LATEST"), StatementId: aws.String("s"),
		Action: aws.String("lambda:InvokeFunction"), Principal: aws.String("arn:aws:iam::000000000000:user/bob")})
	wantErr(t, "a permission on $LATEST", err, "InvalidParameterValueException", 400)
	if _, err := c.AddPermission(ctx, &lambda.AddPermissionInput{FunctionName: aws.String("f"), Qualifier: aws.String("live"), StatementId: aws.String("bob"),
		Action: aws.String("lambda:InvokeFunction"), Principal: aws.String("arn:aws:iam::000000000000:user/bob")}); err != nil {
		t.Fatal(err)
	}
	pol, err := c.GetPolicy(ctx, &lambda.GetPolicyInput{FunctionName: aws.String("f"), Qualifier: aws.String("live")})
	if err != nil || !strings.Contains(aws.ToString(pol.Policy), `function:f:live"`) {
		t.Errorf("alias policy: %v %v", pol, err)
	}
	_, err = c.GetPolicy(ctx, &lambda.GetPolicyInput{FunctionName: aws.String("f")})
	wantErr(t, "the function's own policy", err, "ResourceNotFoundException", 404)
	if out, err := bob.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("f:live")}); err != nil || aws.ToString(out.ExecutedVersion) != "1" {
		t.Errorf("bob through the alias: %v", err)
	}
	for _, name := range []string{"f", "f:1", "f:$LATEST"} {
		_, err := bob.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(name)})
		wantErr(t, "bob invoking "+name, err, "AccessDeniedException", 403)
	}
	_, err = c.RemovePermission(ctx, &lambda.RemovePermissionInput{FunctionName: aws.String("f"), Qualifier: aws.String("live"), StatementId: aws.String("bob"), RevisionId: aws.String("stale")})
	wantErr(t, "removing with a stale RevisionId", err, "PreconditionFailedException", 412)
	if _, err := c.RemovePermission(ctx, &lambda.RemovePermissionInput{FunctionName: aws.String("f"), Qualifier: aws.String("live"), StatementId: aws.String("bob"), RevisionId: pol.RevisionId}); err != nil {
		t.Fatal(err)
	}
	_, err = bob.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("f:live")})
	wantErr(t, "bob after the removal", err, "AccessDeniedException", 403)
}

// TestProvisionedConcurrencyAPI: provisioned concurrency on an alias goes
// IN_PROGRESS → READY as its environments initialize; the first calls find
// them warm (no Init Duration); the limits and misuses answer as on Lambda.
func TestProvisionedConcurrencyAPI(t *testing.T) {
	d := startDaemon(t)
	c := sdkClient(d, root)
	ctx := context.Background()
	createSDK(t, c, "f", true)
	createAlias(t, c, "f", "live", "1")
	createAlias(t, c, "f", "head", "$LATEST")
	for _, tc := range []struct {
		what, qualifier string
		n               int32
		code            string
		status          int
	}{
		{"$LATEST", "$LATEST", 1, "InvalidParameterValueException", 400},
		{"an alias of $LATEST", "head", 1, "InvalidParameterValueException", 400},
		{"no such alias", "gone", 1, "ResourceNotFoundException", 404},
		{"zero", "live", 0, "InvalidParameterValueException", 400},
		{"the whole account", "live", 100, "InvalidParameterValueException", 400},
	} {
		_, err := c.PutProvisionedConcurrencyConfig(ctx, &lambda.PutProvisionedConcurrencyConfigInput{FunctionName: aws.String("f"),
			Qualifier: aws.String(tc.qualifier), ProvisionedConcurrentExecutions: aws.Int32(tc.n)})
		wantErr(t, "provisioning "+tc.what, err, tc.code, tc.status)
	}
	put, err := c.PutProvisionedConcurrencyConfig(ctx, &lambda.PutProvisionedConcurrencyConfigInput{FunctionName: aws.String("f"),
		Qualifier: aws.String("live"), ProvisionedConcurrentExecutions: aws.Int32(3)})
	if err != nil || aws.ToInt32(put.RequestedProvisionedConcurrentExecutions) != 3 {
		t.Fatalf("put: %+v %v", put, err)
	}
	var got *lambda.GetProvisionedConcurrencyConfigOutput
	for range 500 {
		if got, err = c.GetProvisionedConcurrencyConfig(ctx, &lambda.GetProvisionedConcurrencyConfigInput{FunctionName: aws.String("f"), Qualifier: aws.String("live")}); err != nil || got.Status != types.ProvisionedConcurrencyStatusEnumInProgress {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil || got.Status != types.ProvisionedConcurrencyStatusEnumReady || aws.ToInt32(got.AvailableProvisionedConcurrentExecutions) != 3 {
		t.Fatalf("get: %+v %v; want READY with 3 available", got, err)
	}
	// With a reservation, provisioned concurrency over all qualifiers stays within it.
	if _, err := c.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("f"), ReservedConcurrentExecutions: aws.Int32(5)}); err != nil {
		t.Fatal(err)
	}
	_, err = c.PutProvisionedConcurrencyConfig(ctx, &lambda.PutProvisionedConcurrencyConfigInput{FunctionName: aws.String("f"),
		Qualifier: aws.String("1"), ProvisionedConcurrentExecutions: aws.Int32(3)})
	wantErr(t, "provisioning beyond the reservation", err, "InvalidParameterValueException", 400)

	type called struct {
		out *lambda.InvokeOutput
		err error
	}
	results := make(chan called, 3)
	for range 3 {
		go func() {
			out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("f:live"), LogType: types.LogTypeTail, Payload: []byte(`{}`)})
			results <- called{out, err}
		}()
	}
	for range 3 {
		r := <-results
		if r.err != nil {
			t.Fatal(r.err)
		}
		tail, _ := base64.StdEncoding.DecodeString(aws.ToString(r.out.LogResult))
		if strings.Contains(string(tail), "Init Duration") || !strings.Contains(string(tail), "REPORT") {
			t.Errorf("a call within provisioned concurrency: %q; want a REPORT without Init Duration", tail)
		}
	}
	list, err := c.ListProvisionedConcurrencyConfigs(ctx, &lambda.ListProvisionedConcurrencyConfigsInput{FunctionName: aws.String("f")})
	if err != nil || len(list.ProvisionedConcurrencyConfigs) != 1 || !strings.HasSuffix(aws.ToString(list.ProvisionedConcurrencyConfigs[0].FunctionArn), ":f:live") {
		t.Errorf("list: %+v %v", list, err)
	}
	if _, err := c.DeleteProvisionedConcurrencyConfig(ctx, &lambda.DeleteProvisionedConcurrencyConfigInput{FunctionName: aws.String("f"), Qualifier: aws.String("live")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetProvisionedConcurrencyConfig(ctx, &lambda.GetProvisionedConcurrencyConfigInput{FunctionName: aws.String("f"), Qualifier: aws.String("live")})
	wantErr(t, "after the delete", err, "ProvisionedConcurrencyConfigNotFoundException", 404)
	_, err = c.DeleteProvisionedConcurrencyConfig(ctx, &lambda.DeleteProvisionedConcurrencyConfigInput{FunctionName: aws.String("f"), Qualifier: aws.String("live")})
	wantErr(t, "deleting it again", err, "ProvisionedConcurrencyConfigNotFoundException", 404)

	// A weighted alias's is split over both versions by the weights: READY
	// once each has its share.
	if _, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("f"), Timeout: aws.Int32(7)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("f")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateAlias(ctx, &lambda.UpdateAliasInput{FunctionName: aws.String("f"), Name: aws.String("live"), FunctionVersion: aws.String("2"),
		RoutingConfig: &types.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{"1": 0.5}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutProvisionedConcurrencyConfig(ctx, &lambda.PutProvisionedConcurrencyConfigInput{FunctionName: aws.String("f"),
		Qualifier: aws.String("live"), ProvisionedConcurrentExecutions: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	for range 500 {
		if got, err = c.GetProvisionedConcurrencyConfig(ctx, &lambda.GetProvisionedConcurrencyConfigInput{FunctionName: aws.String("f"), Qualifier: aws.String("live")}); err != nil || got.Status != types.ProvisionedConcurrencyStatusEnumInProgress {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil || got.Status != types.ProvisionedConcurrencyStatusEnumReady {
		t.Fatalf("weighted alias: %+v %v; want READY", got, err)
	}
	for _, v := range []string{"1", "2"} {
		out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("f:" + v), LogType: types.LogTypeTail})
		if tail, _ := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult)); err != nil || strings.Contains(string(tail), "Init Duration") {
			t.Errorf("version %s of a weighted alias with provisioned concurrency: %q %v; want a warm environment", v, tail, err)
		}
	}
}

// TestQualifiedIdentityPolicies: a call by version or alias is decided on
// its qualified ARN, as IAM decides it: a policy naming the function alone
// does not cover its aliases, one naming function:f:* does.
func TestQualifiedIdentityPolicies(t *testing.T) {
	d := startDaemon(t)
	c := sdkClient(d, root)
	ctx := context.Background()
	createSDK(t, c, "f", true)
	createAlias(t, c, "f", "live", "1")
	keyFor := func(user, resource string) *lambda.Client {
		policy := map[string]any{"Statement": []map[string]any{{"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": resource}}}
		a, raw := send(t, d, root, "POST", "/icebox/v1/access-keys", mustJSON(map[string]any{"UserName": user, "Policy": policy}), nil)
		var out struct {
			AccessKey struct{ AccessKeyId, SecretAccessKey string }
		}
		if err := json.Unmarshal(raw, &out); err != nil || a.status != http.StatusCreated {
			t.Fatalf("key for %s: %d %s", user, a.status, raw)
		}
		return sdkClient(d, &aws.Credentials{AccessKeyID: out.AccessKey.AccessKeyId, SecretAccessKey: out.AccessKey.SecretAccessKey})
	}
	plain := keyFor("plain", "arn:aws:lambda:us-east-1:000000000000:function:f")
	if _, err := plain.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("f")}); err != nil {
		t.Errorf("function:f invoking f: %v", err)
	}
	_, err := plain.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("f"), Qualifier: aws.String("live")})
	wantErr(t, "function:f invoking f:live", err, "AccessDeniedException", 403)
	any := keyFor("any", "arn:aws:lambda:us-east-1:000000000000:function:f:*")
	if _, err := any.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("f:live")}); err != nil {
		t.Errorf("function:f:* invoking f:live: %v", err)
	}
}

// TestQualifiedEventInvokeConfig: a version or alias has its own event
// invoke configuration; the list shows each.
func TestQualifiedEventInvokeConfig(t *testing.T) {
	d := startDaemon(t)
	c := sdkClient(d, root)
	ctx := context.Background()
	createSDK(t, c, "f", true)
	createAlias(t, c, "f", "live", "1")
	put, err := c.PutFunctionEventInvokeConfig(ctx, &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String("f"), Qualifier: aws.String("live"), MaximumRetryAttempts: aws.Int32(0)})
	if err != nil || !strings.HasSuffix(aws.ToString(put.FunctionArn), ":f:live") {
		t.Fatalf("put on the alias: %+v %v", put, err)
	}
	_, err = c.GetFunctionEventInvokeConfig(ctx, &lambda.GetFunctionEventInvokeConfigInput{FunctionName: aws.String("f")})
	wantErr(t, "the function's own, never set", err, "ResourceNotFoundException", 404)
	if _, err := c.PutFunctionEventInvokeConfig(ctx, &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String("f:1"), MaximumRetryAttempts: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	list, err := c.ListFunctionEventInvokeConfigs(ctx, &lambda.ListFunctionEventInvokeConfigsInput{FunctionName: aws.String("f")})
	if err != nil || len(list.FunctionEventInvokeConfigs) != 2 {
		t.Fatalf("list: %+v %v", list, err)
	}
	got, err := c.GetFunctionEventInvokeConfig(ctx, &lambda.GetFunctionEventInvokeConfigInput{FunctionName: aws.String("f"), Qualifier: aws.String("live")})
	if err != nil || aws.ToInt32(got.MaximumRetryAttempts) != 0 {
		t.Errorf("get on the alias: %+v %v", got, err)
	}
	if _, err := c.DeleteFunctionEventInvokeConfig(ctx, &lambda.DeleteFunctionEventInvokeConfigInput{FunctionName: aws.String("f"), Qualifier: aws.String("live")}); err != nil {
		t.Fatal(err)
	}
	if got, err := c.GetFunctionEventInvokeConfig(ctx, &lambda.GetFunctionEventInvokeConfigInput{FunctionName: aws.String("f:1")}); err != nil || aws.ToInt32(got.MaximumRetryAttempts) != 2 {
		t.Errorf("version 1's after deleting the alias's: %+v %v", got, err)
	}
}

// TestListFunctionsAllVersions: ListFunctions with FunctionVersion ALL
// lists every version of every function, pages included.
func TestListFunctionsAllVersions(t *testing.T) {
	d := startDaemon(t)
	c := sdkClient(d, root)
	ctx := context.Background()
	createSDK(t, c, "a", true)
	createSDK(t, c, "b", false)
	var got []string
	pages := lambda.NewListFunctionsPaginator(c, &lambda.ListFunctionsInput{FunctionVersion: types.FunctionVersionAll, MaxItems: aws.Int32(2)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range page.Functions {
			got = append(got, aws.ToString(f.FunctionArn)[strings.LastIndex(aws.ToString(f.FunctionArn), ":function:")+10:])
		}
	}
	if strings.Join(got, ",") != "a:$LATEST,a:1,b:$LATEST" {
		t.Errorf("every version: %v", got)
	}
	if plain, err := c.ListFunctions(ctx, &lambda.ListFunctionsInput{}); err != nil || len(plain.Functions) != 2 {
		t.Errorf("without FunctionVersion: %+v %v", plain, err)
	}
	_, err := c.ListFunctions(ctx, &lambda.ListFunctionsInput{FunctionVersion: "SOME"})
	wantErr(t, "FunctionVersion SOME", err, "InvalidParameterValueException", 400)
}

// TestQualifiedEventInvoke: an asynchronous call of a version or an alias
// runs that version later, in its own environment (its log stream names
// it).
func TestQualifiedEventInvoke(t *testing.T) {
	d := startDaemon(t)
	c := sdkClient(d, root)
	ctx := context.Background()
	createSDK(t, c, "f", true)
	createAlias(t, c, "f", "live", "1")
	out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("f:live"), InvocationType: types.InvocationTypeEvent, Payload: []byte(`{}`)})
	if err != nil || out.StatusCode != 202 {
		t.Fatalf("event invoke of the alias: %v %v", out, err)
	}
	logs := cloudwatchlogs.New(cloudwatchlogs.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://" + d.Addr()), Retryer: aws.NopRetryer{},
		Credentials: credentials.NewStaticCredentialsProvider(root.AccessKeyID, root.SecretAccessKey, "")})
	var streams []string
	for range 500 {
		res, err := logs.DescribeLogStreams(ctx, &cloudwatchlogs.DescribeLogStreamsInput{LogGroupName: aws.String("/aws/lambda/f")})
		if err == nil && len(res.LogStreams) > 0 {
			for _, st := range res.LogStreams {
				streams = append(streams, aws.ToString(st.LogStreamName))
			}
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(streams) != 1 || !strings.Contains(streams[0], "/[1]") {
		t.Errorf("log streams after an event to f:live: %v; want one of version 1", streams)
	}
}
