package e2e

import (
	"context"
	"encoding/json"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// Deploying as deploy tools do (issue 17, items 4-7), with aws-sdk-go-v2
// and the AWS CLI: tags, the waiters, fields icebox cannot honour refused
// by name, DryRun, and the reads tools make on every refresh.

func TestDeployTagsAndWaiters(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx := context.Background()
	out := s.create("dep-tags", func(in *lambda.CreateFunctionInput) {
		in.Tags = map[string]string{"team": "a"}
	})
	arn := aws.ToString(out.FunctionArn)

	// The waiters CloudFormation, CDK, SAM and Terraform wait on.
	if err := lambda.NewFunctionActiveV2Waiter(s.client).Wait(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("dep-tags")}, 10*time.Second); err != nil {
		t.Fatalf("function-active-v2: %v", err)
	}
	if _, err := s.client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("dep-tags"), Timeout: aws.Int32(9)}); err != nil {
		t.Fatal(err)
	}
	if err := lambda.NewFunctionUpdatedV2Waiter(s.client).Wait(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("dep-tags")}, 10*time.Second); err != nil {
		t.Fatalf("function-updated-v2: %v", err)
	}
	if err := lambda.NewFunctionUpdatedWaiter(s.client).Wait(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("dep-tags")}, 10*time.Second); err != nil {
		t.Fatalf("function-updated: %v", err)
	}

	// Tags with the SDK.
	got, err := s.client.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("dep-tags")})
	if err != nil || !maps.Equal(got.Tags, map[string]string{"team": "a"}) {
		t.Fatalf("GetFunction tags: %v %v", got.Tags, err)
	}
	if got.Configuration.State != types.StateActive || got.Configuration.LastUpdateStatus != types.LastUpdateStatusSuccessful {
		t.Errorf("state %s, last update %s", got.Configuration.State, got.Configuration.LastUpdateStatus)
	}
	if _, err := s.client.TagResource(ctx, &lambda.TagResourceInput{Resource: aws.String(arn), Tags: map[string]string{"env": "dev", "team": "b"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.client.UntagResource(ctx, &lambda.UntagResourceInput{Resource: aws.String(arn), TagKeys: []string{"env"}}); err != nil {
		t.Fatal(err)
	}
	lt, err := s.client.ListTags(ctx, &lambda.ListTagsInput{Resource: aws.String(arn)})
	if err != nil || !maps.Equal(lt.Tags, map[string]string{"team": "b"}) {
		t.Fatalf("ListTags: %v %v", lt.Tags, err)
	}
	_, err = s.client.TagResource(ctx, &lambda.TagResourceInput{Resource: aws.String(arn), Tags: map[string]string{"aws:owner": "x"}})
	wantAPIError(t, "tag aws:owner", err, "InvalidParameterValueException", 400, "aws:")
	_, err = s.client.ListTags(ctx, &lambda.ListTagsInput{Resource: aws.String(arn + "x")})
	wantAPIError(t, "tags of a missing function", err, "ResourceNotFoundException", 404)

	// The same round trip with the AWS CLI.
	cli := newAWSCLI(t, s)
	cli.json(nil, "lambda", "tag-resource", "--resource", arn, "--tags", "cli=yes,team=c")
	cli.json(nil, "lambda", "untag-resource", "--resource", arn, "--tag-keys", "team")
	var tags struct{ Tags map[string]string }
	cli.json(&tags, "lambda", "list-tags", "--resource", arn)
	if !maps.Equal(tags.Tags, map[string]string{"cli": "yes"}) {
		t.Errorf("aws lambda list-tags: %v", tags.Tags)
	}
	if _, errOut, code := cli.run("lambda", "wait", "function-active-v2", "--function-name", "dep-tags"); code != 0 {
		t.Errorf("aws lambda wait function-active-v2: exit %d %s", code, errOut)
	}
	if _, errOut, code := cli.run("lambda", "wait", "function-updated-v2", "--function-name", "dep-tags"); code != 0 {
		t.Errorf("aws lambda wait function-updated-v2: exit %d %s", code, errOut)
	}
}

func TestDeployRefusesWhatItCannotHonour(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	s.create("dep-cfg")
	name := aws.String("dep-cfg")

	_, err := s.client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: name,
		Layers: []string{"arn:aws:lambda:us-east-1:000000000000:layer:l:1"}})
	// Layers are honoured (layers_test.go): a version that does not exist is refused as Lambda refuses it.
	wantAPIError(t, "Layers", err, "InvalidParameterValueException", 400, "Layer version arn:aws:lambda:us-east-1:000000000000:layer:l:1 does not exist.")
	_, err = s.client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: name,
		VpcConfig: &types.VpcConfig{SubnetIds: []string{"subnet-1"}, SecurityGroupIds: []string{"sg-1"}}})
	wantAPIError(t, "VpcConfig", err, "InvalidParameterValueException", 400, "The subnet ID 'subnet-1' does not exist")
	_, err = s.client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: name,
		TracingConfig: &types.TracingConfig{Mode: types.TracingModeActive}})
	wantAPIError(t, "TracingConfig", err, "InvalidParameterValueException", 400, "TracingConfig")

	// What a tool sends with those features off is accepted.
	before, _ := s.client.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: name})
	if _, err := s.client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: name,
		Layers: []string{}, VpcConfig: &types.VpcConfig{SubnetIds: []string{}, SecurityGroupIds: []string{}},
		TracingConfig: &types.TracingConfig{Mode: types.TracingModePassThrough}, KMSKeyArn: aws.String(""),
		SnapStart: &types.SnapStart{ApplyOn: types.SnapStartApplyOnNone}}); err != nil {
		t.Errorf("defaults refused: %v", err)
	}

	// DryRun validates and changes nothing.
	other := zipOf(map[string][]byte{"bootstrap": []byte("#!/bin/sh\nexit 1\n")})
	if _, err := s.client.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: name, ZipFile: other, DryRun: true}); err != nil {
		t.Fatalf("DryRun: %v", err)
	}
	_, err = s.client.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: name, ZipFile: []byte("not a zip"), DryRun: true})
	if err == nil {
		t.Errorf("DryRun of a bad zip succeeded")
	}
	after, err := s.client.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: name})
	if err != nil || aws.ToString(after.CodeSha256) != aws.ToString(before.CodeSha256) {
		t.Errorf("DryRun changed the code: %s -> %s (%v)", aws.ToString(before.CodeSha256), aws.ToString(after.CodeSha256), err)
	}
}

func TestDeployReads(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	s.create("dep-reads")
	name := aws.String("dep-reads")

	csc, err := s.client.GetFunctionCodeSigningConfig(ctx, &lambda.GetFunctionCodeSigningConfigInput{FunctionName: name})
	if err != nil || aws.ToString(csc.CodeSigningConfigArn) != "" || aws.ToString(csc.FunctionName) != "dep-reads" {
		t.Errorf("GetFunctionCodeSigningConfig: %+v %v", csc, err)
	}
	rmc, err := s.client.GetRuntimeManagementConfig(ctx, &lambda.GetRuntimeManagementConfigInput{FunctionName: name})
	if err != nil || rmc.UpdateRuntimeOn != types.UpdateRuntimeOnAuto || rmc.RuntimeVersionArn != nil || !strings.HasSuffix(aws.ToString(rmc.FunctionArn), ":function:dep-reads") {
		t.Errorf("GetRuntimeManagementConfig: %+v %v", rmc, err)
	}
	rc, err := s.client.GetFunctionRecursionConfig(ctx, &lambda.GetFunctionRecursionConfigInput{FunctionName: name})
	if err != nil || rc.RecursiveLoop != types.RecursiveLoopTerminate {
		t.Errorf("GetFunctionRecursionConfig: %+v %v", rc, err)
	}
	urls, err := s.client.ListFunctionUrlConfigs(ctx, &lambda.ListFunctionUrlConfigsInput{FunctionName: name})
	if err != nil || urls.FunctionUrlConfigs == nil || len(urls.FunctionUrlConfigs) != 0 {
		t.Errorf("ListFunctionUrlConfigs: %+v %v", urls, err)
	}
	esm, err := s.client.ListEventSourceMappings(ctx, &lambda.ListEventSourceMappingsInput{FunctionName: name})
	if err != nil || len(esm.EventSourceMappings) != 0 {
		t.Errorf("ListEventSourceMappings: %+v %v", esm, err)
	}
	pc, err := s.client.ListProvisionedConcurrencyConfigs(ctx, &lambda.ListProvisionedConcurrencyConfigsInput{FunctionName: name})
	if err != nil || len(pc.ProvisionedConcurrencyConfigs) != 0 {
		t.Errorf("ListProvisionedConcurrencyConfigs: %+v %v", pc, err)
	}
	fc, err := s.client.GetFunctionConcurrency(ctx, &lambda.GetFunctionConcurrencyInput{FunctionName: name})
	if err != nil || fc.ReservedConcurrentExecutions != nil {
		t.Errorf("GetFunctionConcurrency: %+v %v", fc, err)
	}
	_, err = s.client.GetFunctionRecursionConfig(ctx, &lambda.GetFunctionRecursionConfigInput{FunctionName: aws.String("dep-missing")})
	wantAPIError(t, "recursion config of a missing function", err, "ResourceNotFoundException", 404)
}

// deployScript is what a Python deploy tool does through boto3 after
// creating a function: waiters, tags, and the reads of unset features.
const deployScript = `
import json, sys, boto3
c = boto3.client("lambda", endpoint_url=sys.argv[1], region_name="us-east-1")
name, arn = sys.argv[2], sys.argv[3]
c.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 5})
c.update_function_configuration(FunctionName=name, Description="d")
c.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 5})
c.tag_resource(Resource=arn, Tags={"py": "1", "drop": "x"})
c.untag_resource(Resource=arn, TagKeys=["drop"])
out = {"tags": c.list_tags(Resource=arn)["Tags"], "getTags": c.get_function(FunctionName=name)["Tags"]}
out["csc"] = c.get_function_code_signing_config(FunctionName=name)["CodeSigningConfigArn"]
out["runtime"] = c.get_runtime_management_config(FunctionName=name)["UpdateRuntimeOn"]
out["recursion"] = c.get_function_recursion_config(FunctionName=name)["RecursiveLoop"]
out["urls"] = c.list_function_url_configs(FunctionName=name)["FunctionUrlConfigs"]
out["esm"] = c.list_event_source_mappings(FunctionName=name)["EventSourceMappings"]
out["pc"] = c.list_provisioned_concurrency_configs(FunctionName=name)["ProvisionedConcurrencyConfigs"]
try:
    c.update_function_configuration(FunctionName=name, Layers=["arn:aws:lambda:us-east-1:000000000000:layer:l:1"])
    out["layers"] = "accepted"
except c.exceptions.InvalidParameterValueException as e:
    out["layers"] = str(e)
print(json.dumps(out))
`

func TestDeployWithBoto3(t *testing.T) {
	run := boto3(t)
	s := startServer(t)
	arn := aws.ToString(s.create("dep-boto").FunctionArn)
	raw := run("-c", deployScript, s.url, "dep-boto", arn)
	var out struct {
		Tags, GetTags           map[string]string
		CSC, Runtime, Recursion string
		URLs, ESM, PC           []any
		Layers                  string
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("boto3 printed %q: %v", raw, err)
	}
	want := map[string]string{"py": "1"}
	if !maps.Equal(out.Tags, want) || !maps.Equal(out.GetTags, want) || out.CSC != "" || out.Runtime != "Auto" || out.Recursion != "Terminate" ||
		out.URLs == nil || len(out.URLs)+len(out.ESM)+len(out.PC) != 0 || !strings.Contains(out.Layers, "layer:l:1 does not exist.") {
		t.Errorf("boto3 saw %s", raw)
	}
}
