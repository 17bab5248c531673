package api_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// TestTerraformReplay replays, with aws-sdk-go-v2 (the SDK the provider
// uses), the calls terraform-provider-aws makes for aws_lambda_function
// (publish = true, reserved concurrency), aws_lambda_alias and
// aws_lambda_permission (on an alias and on the function): create, read,
// update, import and delete, in the provider's order, reading the answers
// the way the provider does. docs/compatibility.md lists these calls.
func TestTerraformReplay(t *testing.T) {
	d := startDaemon(t)
	c := sdkClient(d, root)
	ctx := context.Background()
	code, _ := base64.StdEncoding.DecodeString(codeZip())
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}

	// aws_lambda_function read: GetFunction, the newest version from the
	// last page of ListVersionsByFunction, the code signing config.
	readFunction := func(name, qualifier string) (cfg *types.FunctionConfiguration, reserved *int32, latest string) {
		t.Helper()
		in := &lambda.GetFunctionInput{FunctionName: aws.String(name)}
		if qualifier != "" {
			in.Qualifier = aws.String(qualifier)
		}
		out, err := c.GetFunction(ctx, in)
		must("GetFunction", err)
		if out.Code == nil || out.Configuration == nil {
			t.Fatalf("GetFunction of %s without Code or Configuration", name)
		}
		if out.Concurrency != nil {
			reserved = out.Concurrency.ReservedConcurrentExecutions
		} else if qualifier != "" {
			gfc, err := c.GetFunctionConcurrency(ctx, &lambda.GetFunctionConcurrencyInput{FunctionName: aws.String(name)})
			must("GetFunctionConcurrency", err)
			reserved = gfc.ReservedConcurrentExecutions
		}
		if qualifier == "" {
			pages := lambda.NewListVersionsByFunctionPaginator(c, &lambda.ListVersionsByFunctionInput{FunctionName: aws.String(name), MaxItems: aws.Int32(10000)})
			for pages.HasMorePages() {
				page, err := pages.NextPage(ctx)
				must("ListVersionsByFunction", err)
				if len(page.Versions) > 0 && page.NextMarker == nil {
					latest = aws.ToString(page.Versions[len(page.Versions)-1].Version)
				}
			}
		}
		_, err = c.GetFunctionCodeSigningConfig(ctx, &lambda.GetFunctionCodeSigningConfigInput{FunctionName: aws.String(name)})
		must("GetFunctionCodeSigningConfig", err)
		return out.Configuration, reserved, latest
	}
	waitUpdated := func(name string) {
		t.Helper()
		out, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(name)})
		must("GetFunction (waiting for the update)", err)
		if out.Configuration.LastUpdateStatus != types.LastUpdateStatusSuccessful {
			t.Fatalf("LastUpdateStatus %s", out.Configuration.LastUpdateStatus)
		}
	}

	// Function: create with publish and reserved concurrency.
	_, err := c.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("tf"), Code: &types.FunctionCode{ZipFile: code},
		Description: aws.String(""), MemorySize: aws.Int32(128), PackageType: types.PackageTypeZip, Publish: true,
		Role: aws.String("arn:aws:iam::000000000000:role/r"), Tags: map[string]string{"managed-by": "terraform"}, Timeout: aws.Int32(3),
		Handler: aws.String("bootstrap"), Runtime: types.RuntimeProvidedal2023})
	must("CreateFunction", err)
	created, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("tf")})
	must("GetFunction after create", err)
	if created.Configuration.State != types.StateActive {
		t.Fatalf("State %s after create", created.Configuration.State)
	}
	_, err = c.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("tf"), ReservedConcurrentExecutions: aws.Int32(5)})
	must("PutFunctionConcurrency", err)
	cfg, reserved, latest := readFunction("tf", "")
	if latest != "1" || aws.ToInt32(reserved) != 5 || aws.ToString(cfg.Version) != "$LATEST" {
		t.Errorf("read after create: version %s, reserved %v, configuration version %s", latest, reserved, aws.ToString(cfg.Version))
	}

	// Function: update configuration and code, drop the reservation, publish.
	_, err = c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("tf"), MemorySize: aws.Int32(256)})
	must("UpdateFunctionConfiguration", err)
	waitUpdated("tf")
	other := zipWith(map[string]string{"bootstrap": "#!/bin/sh\n", "VERSION": "2"})
	_, err = c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("tf"), ZipFile: other})
	must("UpdateFunctionCode", err)
	waitUpdated("tf")
	_, err = c.DeleteFunctionConcurrency(ctx, &lambda.DeleteFunctionConcurrencyInput{FunctionName: aws.String("tf")})
	must("DeleteFunctionConcurrency", err)
	pub, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("tf")})
	must("PublishVersion", err)
	pubCfg, err := c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: pub.FunctionArn, Qualifier: pub.Version})
	must("GetFunctionConfiguration of the published version", err)
	if pubCfg.LastUpdateStatus != types.LastUpdateStatusSuccessful || aws.ToInt32(pubCfg.MemorySize) != 256 {
		t.Errorf("published version: %+v", pubCfg)
	}
	if _, reserved, latest := readFunction("tf", ""); latest != "2" || reserved != nil {
		t.Errorf("read after update: version %s, reserved %v", latest, reserved)
	}
	// A qualified read, and an import (a read by name).
	if cfg, _, _ := readFunction("tf", "1"); aws.ToInt32(cfg.MemorySize) != 128 || !strings.HasSuffix(aws.ToString(cfg.FunctionArn), ":tf:1") {
		t.Errorf("qualified read: %+v", cfg)
	}
	readFunction("tf", "")

	// Alias: created on the function's ARN, as the provider passes it, with
	// an empty routing configuration and description.
	fnARN := aws.ToString(created.Configuration.FunctionArn)
	readAlias := func(function, name string) *lambda.GetAliasOutput {
		t.Helper()
		out, err := c.GetAlias(ctx, &lambda.GetAliasInput{FunctionName: aws.String(function), Name: aws.String(name)})
		must("GetAlias", err)
		return out
	}
	al, err := c.CreateAlias(ctx, &lambda.CreateAliasInput{Description: aws.String(""), FunctionName: aws.String(fnARN), FunctionVersion: aws.String("1"),
		Name: aws.String("live"), RoutingConfig: &types.AliasRoutingConfiguration{}})
	must("CreateAlias", err)
	if got := readAlias(fnARN, "live"); aws.ToString(got.AliasArn) != aws.ToString(al.AliasArn) || aws.ToString(got.FunctionVersion) != "1" {
		t.Errorf("alias read after create: %+v", got)
	}
	_, err = c.UpdateAlias(ctx, &lambda.UpdateAliasInput{Description: aws.String("canary"), FunctionName: aws.String(fnARN), FunctionVersion: aws.String("2"),
		Name: aws.String("live"), RoutingConfig: &types.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{"1": 0.5}}})
	must("UpdateAlias with weights", err)
	if got := readAlias(fnARN, "live"); got.RoutingConfig == nil || got.RoutingConfig.AdditionalVersionWeights["1"] != 0.5 {
		t.Errorf("alias read after update: %+v", got)
	}
	_, err = c.UpdateAlias(ctx, &lambda.UpdateAliasInput{Description: aws.String("canary"), FunctionName: aws.String(fnARN), FunctionVersion: aws.String("2"),
		Name: aws.String("live"), RoutingConfig: &types.AliasRoutingConfiguration{}})
	must("UpdateAlias clearing the weights", err)
	// The provider waits for the weights to clear, then reads.
	if got := readAlias(fnARN, "live"); got.RoutingConfig != nil && len(got.RoutingConfig.AdditionalVersionWeights) > 0 {
		t.Errorf("weights not cleared: %+v", got.RoutingConfig)
	}
	// Import by FUNCTION/ALIAS and by the alias ARN.
	readAlias("tf", "live")
	fnFromARN, qualifierFromARN := tfFunctionAndQualifier(aws.ToString(al.AliasArn))
	readAlias(fnFromARN, qualifierFromARN)

	// Permission on the alias (Qualifier) and on the function.
	readStatement := func(function, qualifier, sid string) (tfStatement, bool) {
		t.Helper()
		in := &lambda.GetPolicyInput{FunctionName: aws.String(function)}
		if qualifier != "" {
			in.Qualifier = aws.String(qualifier)
		}
		out, err := c.GetPolicy(ctx, in)
		var nf *types.ResourceNotFoundException
		if errors.As(err, &nf) {
			return tfStatement{}, false
		}
		must("GetPolicy", err)
		var p struct{ Statement []tfStatement }
		if err := json.Unmarshal([]byte(aws.ToString(out.Policy)), &p); err != nil {
			t.Fatalf("the provider cannot decode the policy %s: %v", aws.ToString(out.Policy), err)
		}
		for _, st := range p.Statement {
			if st.Sid == sid {
				return st, true
			}
		}
		return tfStatement{}, false
	}
	_, err = c.AddPermission(ctx, &lambda.AddPermissionInput{Action: aws.String("lambda:InvokeFunction"), FunctionName: aws.String("tf"),
		Principal: aws.String("events.amazonaws.com"), StatementId: aws.String("AllowEvents"), Qualifier: aws.String("live"),
		SourceArn: aws.String("arn:aws:events:us-east-1:000000000000:rule/r")})
	must("AddPermission on the alias", err)
	st, ok := readStatement("tf", "live", "AllowEvents")
	if fn, q := tfFunctionAndQualifier(st.Resource); !ok || fn != "tf" || q != "live" || st.Principal.(map[string]any)["Service"] != "events.amazonaws.com" ||
		st.Condition["ArnLike"]["AWS:SourceArn"] != "arn:aws:events:us-east-1:000000000000:rule/r" || st.Action != "lambda:InvokeFunction" {
		t.Errorf("permission as the provider reads it: %+v (function %s, qualifier %s)", st, fn, q)
	}
	_, err = c.AddPermission(ctx, &lambda.AddPermissionInput{Action: aws.String("lambda:InvokeFunction"), FunctionName: aws.String(fnARN),
		Principal: aws.String("000000000000"), StatementId: aws.String("AllowAccount")})
	must("AddPermission on the function", err)
	if st, ok := readStatement(fnARN, "", "AllowAccount"); !ok || st.Resource != fnARN {
		t.Errorf("function permission: %+v", st)
	}
	// Import FUNCTION:QUALIFIER/SID.
	if _, ok := readStatement("tf", "live", "AllowEvents"); !ok {
		t.Error("import of the alias permission found nothing")
	}
	for _, p := range []struct{ function, qualifier, sid string }{{"tf", "live", "AllowEvents"}, {fnARN, "", "AllowAccount"}} {
		in := &lambda.RemovePermissionInput{FunctionName: aws.String(p.function), StatementId: aws.String(p.sid)}
		if p.qualifier != "" {
			in.Qualifier = aws.String(p.qualifier)
		}
		_, err := c.RemovePermission(ctx, in)
		must("RemovePermission", err)
		if _, ok := readStatement(p.function, p.qualifier, p.sid); ok {
			t.Errorf("statement %s still there after RemovePermission", p.sid)
		}
	}

	// Destroy: the alias, then the function, waiting for it to be gone.
	_, err = c.DeleteAlias(ctx, &lambda.DeleteAliasInput{FunctionName: aws.String(fnARN), Name: aws.String("live")})
	must("DeleteAlias", err)
	_, err = c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("tf")})
	must("DeleteFunction", err)
	_, err = c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("tf")})
	wantErr(t, "GetFunction after the delete", err, "ResourceNotFoundException", 404)
}

// tfStatement is a policy statement as the provider decodes it.
type tfStatement struct {
	Condition map[string]map[string]string
	Action    string
	Resource  string
	Effect    string
	Principal any
	Sid       string
}

// tfFunctionAndQualifier is the function name and qualifier of a function
// ARN, which the provider takes from a statement's Resource and from an
// alias ARN given to import.
func tfFunctionAndQualifier(arn string) (function, qualifier string) {
	parts := strings.Split(arn, ":")
	if len(parts) < 7 || parts[5] != "function" {
		return "", ""
	}
	if len(parts) == 8 {
		qualifier = parts[7]
	}
	return parts[6], qualifier
}

// zipWith is a deployment package holding files.
func zipWith(files map[string]string) []byte {
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	for name, data := range files {
		f, _ := w.Create(name)
		f.Write([]byte(data))
	}
	w.Close()
	return b.Bytes()
}
