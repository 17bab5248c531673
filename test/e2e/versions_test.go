package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"icebox/internal/testkit"
)

// Versions, aliases and provisioned concurrency (issue 17, items 1-3) in
// real sandboxes, with aws-sdk-go-v2, boto3 and the AWS CLI.

// weightedSplit calls through alias n times and returns how often each
// version ran, checking that every call reported its version.
func weightedSplit(t *testing.T, s *server, name string, n int) map[string]int {
	t.Helper()
	counts := map[string]int{}
	for range n {
		out, err := s.client.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String(name), Payload: []byte(`{}`)})
		if err != nil {
			t.Fatal(err)
		}
		counts[aws.ToString(out.ExecutedVersion)]++
	}
	return counts
}

func TestVersionsAndAliases(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx := context.Background()
	c := s.client
	v1 := s.create("ver", func(in *lambda.CreateFunctionInput) {
		in.Publish = true
		in.Environment = &types.Environment{Variables: map[string]string{"RELEASE": "one"}}
	})
	if aws.ToString(v1.Version) != "1" {
		t.Fatalf("create with Publish: version %q", aws.ToString(v1.Version))
	}
	if _, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("ver"),
		Environment: &types.Environment{Variables: map[string]string{"RELEASE": "two"}}}); err != nil {
		t.Fatal(err)
	}
	if v2, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("ver")}); err != nil || aws.ToString(v2.Version) != "2" {
		t.Fatalf("publish: %v %v", v2, err)
	}
	if _, err := c.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("ver"), Name: aws.String("live"), FunctionVersion: aws.String("2"),
		RoutingConfig: &types.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{"1": 0.1}}}); err != nil {
		t.Fatal(err)
	}

	// Each version runs its own frozen configuration in its own environments.
	for _, tc := range []struct{ name, version, release string }{
		{"ver", "$LATEST", "two"}, {"ver:1", "1", "one"}, {"ver:2", "2", "two"},
		{"arn:aws:lambda:us-east-1:000000000000:function:ver:1", "1", "one"},
	} {
		out := s.invoke(tc.name, map[string]string{}, func(in *lambda.InvokeInput) { in.LogType = types.LogTypeTail })
		var r result
		json.Unmarshal(out.Payload, &r)
		tail, _ := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
		if aws.ToString(out.ExecutedVersion) != tc.version || r.Env["AWS_LAMBDA_FUNCTION_VERSION"] != tc.version || r.Env["RELEASE"] != tc.release ||
			!strings.Contains(string(tail), "Version: "+tc.version+"\n") || !strings.Contains(r.Env["AWS_LAMBDA_LOG_STREAM_NAME"], "/["+tc.version+"]") {
			t.Errorf("invoke %s: executed %q, env version %q release %q stream %q, log %q", tc.name, aws.ToString(out.ExecutedVersion),
				r.Env["AWS_LAMBDA_FUNCTION_VERSION"], r.Env["RELEASE"], r.Env["AWS_LAMBDA_LOG_STREAM_NAME"], tail)
		}
	}

	// 90/10 over 1,000 calls of a cheap function.
	if _, err := c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("ver"), ZipFile: programZip(t, "echo")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("ver")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("ver"), Name: aws.String("canary"), FunctionVersion: aws.String("3"),
		RoutingConfig: &types.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{"2": 0.1}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("ver"), ZipFile: programZip(t, "echo"), Publish: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateAlias(ctx, &lambda.UpdateAliasInput{FunctionName: aws.String("ver"), Name: aws.String("live"), FunctionVersion: aws.String("3"),
		RoutingConfig: &types.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{"1": 0.1}}}); err != nil {
		t.Fatal(err)
	}
	counts := weightedSplit(t, s, "ver:canary", 1000)
	if share := float64(counts["2"]) / 1000; counts["2"]+counts["3"] != 1000 || share < 0.05 || share > 0.15 {
		t.Errorf("90/10 alias over 1,000 calls ran %v; want version 2 at 10%% ± 5 points", counts)
	}

	// Deleting versions: not one an alias routes to.
	_, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("ver"), Qualifier: aws.String("2")})
	wantAPIError(t, "delete a version an alias routes to", err, "ResourceConflictException", 409)
	if _, err := c.DeleteAlias(ctx, &lambda.DeleteAliasInput{FunctionName: aws.String("ver"), Name: aws.String("canary")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("ver"), Qualifier: aws.String("2")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("ver:2")})
	wantAPIError(t, "invoke a deleted version", err, "ResourceNotFoundException", 404)
	if r := s.call("ver:1", map[string]string{}); r.Env["RELEASE"] != "one" {
		t.Errorf("version 1 after deleting 2: %v", r.Env["RELEASE"])
	}
}

// TestProvisionedConcurrencyInSandboxes: provisioned concurrency 3 on an
// alias initializes three environments before the first call (their init
// is in the logs first), and the first three concurrent calls show no
// Init Duration.
func TestProvisionedConcurrencyInSandboxes(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	c := s.client
	s.create("prov", func(in *lambda.CreateFunctionInput) { in.Publish = true })
	if _, err := c.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("prov"), Name: aws.String("live"), FunctionVersion: aws.String("1")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutProvisionedConcurrencyConfig(ctx, &lambda.PutProvisionedConcurrencyConfigInput{FunctionName: aws.String("prov"),
		Qualifier: aws.String("live"), ProvisionedConcurrentExecutions: aws.Int32(3)}); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 20*time.Second, "provisioned concurrency READY", func() bool {
		got, err := c.GetProvisionedConcurrencyConfig(ctx, &lambda.GetProvisionedConcurrencyConfigInput{FunctionName: aws.String("prov"), Qualifier: aws.String("live")})
		if err == nil && got.Status == types.ProvisionedConcurrencyStatusEnumFailed {
			t.Fatalf("provisioning failed: %s", aws.ToString(got.StatusReason))
		}
		return err == nil && got.Status == types.ProvisionedConcurrencyStatusEnumReady && aws.ToInt32(got.AvailableProvisionedConcurrentExecutions) == 3
	})
	logs := cloudwatchlogs.New(cloudwatchlogs.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.url), Credentials: rootCredentials})
	streams := func() []string {
		out, err := logs.DescribeLogStreams(ctx, &cloudwatchlogs.DescribeLogStreamsInput{LogGroupName: aws.String("/aws/lambda/prov")})
		if err != nil {
			return nil
		}
		var names []string
		for _, st := range out.LogStreams {
			names = append(names, aws.ToString(st.LogStreamName))
		}
		sort.Strings(names)
		return names
	}
	var before []string
	testkit.WaitFor(t, 10*time.Second, "three log streams with their init", func() bool { before = streams(); return len(before) == 3 })
	for _, st := range before {
		ev, err := logs.GetLogEvents(ctx, &cloudwatchlogs.GetLogEventsInput{LogGroupName: aws.String("/aws/lambda/prov"), LogStreamName: aws.String(st)})
		if err != nil || len(ev.Events) == 0 || !strings.HasPrefix(aws.ToString(ev.Events[0].Message), "INIT_START") || !strings.Contains(st, "/[1]") {
			t.Errorf("stream %s before any call: %v %v", st, ev, err)
		}
		for _, e := range ev.Events {
			if strings.HasPrefix(aws.ToString(e.Message), "START") {
				t.Errorf("stream %s has a call before any was made", st)
			}
		}
	}

	var wg sync.WaitGroup
	tails := make([]string, 3)
	results := make([]result, 3)
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := s.invoke("prov:live", map[string]any{"action": "sleep", "ms": 300}, func(in *lambda.InvokeInput) { in.LogType = types.LogTypeTail })
			tail, _ := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
			tails[i] = string(tail)
			json.Unmarshal(out.Payload, &results[i])
		}()
	}
	wg.Wait()
	for i, tail := range tails {
		if !strings.Contains(tail, "REPORT") || strings.Contains(tail, "Init Duration") || results[i].Env["AWS_LAMBDA_INITIALIZATION_TYPE"] != "provisioned-concurrency" {
			t.Errorf("call %d within provisioned concurrency: init type %q, log %q", i, results[i].Env["AWS_LAMBDA_INITIALIZATION_TYPE"], tail)
		}
	}
	if after := streams(); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Errorf("calls within provisioned concurrency made new environments: %v, then %v", before, after)
	}
	// A fourth call at once goes to an on-demand environment.
	var fourth []*lambda.InvokeOutput
	var mu sync.Mutex
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := s.invoke("prov:live", map[string]any{"action": "sleep", "ms": 300})
			mu.Lock()
			fourth = append(fourth, out)
			mu.Unlock()
		}()
	}
	wg.Wait()
	onDemand := 0
	for _, out := range fourth {
		var r result
		json.Unmarshal(out.Payload, &r)
		if r.Env["AWS_LAMBDA_INITIALIZATION_TYPE"] == "on-demand" {
			onDemand++
		}
	}
	if onDemand != 1 {
		t.Errorf("4 concurrent calls with 3 provisioned: %d on-demand; want 1", onDemand)
	}
}

const versionsScript = `
import json, sys, boto3
url, name = sys.argv[1], sys.argv[2]
c = boto3.client("lambda", endpoint_url=url)
out = {}
out["v1"] = c.publish_version(FunctionName=name)["Version"]
c.update_function_configuration(FunctionName=name, Description="changed")
out["v2"] = c.publish_version(FunctionName=name)["Version"]
try:
    c.publish_version(FunctionName=name, RevisionId="stale")
except c.exceptions.PreconditionFailedException:
    out["stale"] = "PreconditionFailedException"
c.create_alias(FunctionName=name, Name="live", FunctionVersion="2", RoutingConfig={"AdditionalVersionWeights": {"1": 0.1}})
counts = {}
for _ in range(1000):
    v = c.invoke(FunctionName=name, Qualifier="live", Payload=b"{}")["ExecutedVersion"]
    counts[v] = counts.get(v, 0) + 1
out["counts"] = counts
out["byVersion"] = c.invoke(FunctionName=name, Qualifier="1", Payload=b"{}")["ExecutedVersion"]
arn = c.get_alias(FunctionName=name, Name="live")["AliasArn"]
out["byArn"] = c.invoke(FunctionName=arn, Payload=b"{}")["ExecutedVersion"]
try:
    c.delete_function(FunctionName=name, Qualifier="1")
except c.exceptions.ResourceConflictException:
    out["conflict"] = "ResourceConflictException"
c.update_alias(FunctionName=name, Name="live", FunctionVersion="2", RoutingConfig={"AdditionalVersionWeights": {}})
c.delete_function(FunctionName=name, Qualifier="1")
out["versions"] = [v["Version"] for v in c.list_versions_by_function(FunctionName=name)["Versions"]]
print(json.dumps(out))
`

func TestVersionsWithBoto3(t *testing.T) {
	t.Parallel()
	run := boto3(t)
	s := startServer(t)
	s.create("ver-boto", func(in *lambda.CreateFunctionInput) { in.Code.ZipFile = programZip(t, "echo") })
	var out struct {
		V1, V2, Stale, ByVersion, ByArn, Conflict string
		Counts                                    map[string]int
		Versions                                  []string
	}
	raw := run("-c", versionsScript, s.url, "ver-boto")
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("boto3 printed %q: %v", raw, err)
	}
	share := float64(out.Counts["1"]) / 1000
	if out.V1 != "1" || out.V2 != "2" || out.Stale == "" || out.ByVersion != "1" || out.ByArn == "" || out.Conflict == "" ||
		out.Counts["1"]+out.Counts["2"] != 1000 || share < 0.05 || share > 0.15 || strings.Join(out.Versions, ",") != "$LATEST,2" {
		t.Errorf("boto3 saw %s", raw)
	}
}

func TestVersionsWithCLI(t *testing.T) {
	s := startServer(t)
	cli := newAWSCLI(t, s)
	s.create("ver-cli", func(in *lambda.CreateFunctionInput) { in.Code.ZipFile = programZip(t, "echo") })
	var v struct{ Version, FunctionArn string }
	cli.json(&v, "lambda", "publish-version", "--function-name", "ver-cli")
	if v.Version != "1" || !strings.HasSuffix(v.FunctionArn, ":ver-cli:1") {
		t.Errorf("aws lambda publish-version: %+v", v)
	}
	var a struct{ AliasArn, FunctionVersion string }
	cli.json(&a, "lambda", "create-alias", "--function-name", "ver-cli", "--name", "live", "--function-version", "1")
	if a.FunctionVersion != "1" {
		t.Errorf("aws lambda create-alias: %+v", a)
	}
	dir := t.TempDir()
	for _, args := range [][]string{{"--qualifier", "1"}, {"--function-name", a.AliasArn}} {
		out := filepath.Join(dir, "out.json")
		full := append([]string{"lambda", "invoke", "--payload", "{}"}, args...)
		if args[0] != "--function-name" {
			full = append(full, "--function-name", "ver-cli")
		}
		if cli.v2 {
			full = append(full, "--cli-binary-format", "raw-in-base64-out")
		}
		var res struct{ ExecutedVersion string }
		cli.json(&res, append(full, out)...)
		if res.ExecutedVersion != "1" {
			t.Errorf("aws lambda invoke %v: executed %q", args, res.ExecutedVersion)
		}
		os.Remove(out)
	}
	if _, errOut, code := cli.run("lambda", "delete-function", "--function-name", "ver-cli", "--qualifier", "1"); code == 0 || !strings.Contains(errOut, "ResourceConflictException") {
		t.Errorf("aws lambda delete-function of an aliased version: exit %d %s", code, errOut)
	}
	cli.json(nil, "lambda", "delete-alias", "--function-name", "ver-cli", "--name", "live")
	cli.json(nil, "lambda", "delete-function", "--function-name", "ver-cli", "--qualifier", "1")
	list, err := s.client.ListVersionsByFunction(context.Background(), &lambda.ListVersionsByFunctionInput{FunctionName: aws.String("ver-cli")})
	if err != nil || len(list.Versions) != 1 || aws.ToString(list.Versions[0].Version) != "$LATEST" {
		t.Errorf("versions after aws lambda delete-function --qualifier 1: %+v %v", list, err)
	}
}
