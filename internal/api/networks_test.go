package api_test

import (
	"context"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"icebox/internal/auth/authtest"
	"icebox/internal/daemon"
	"icebox/internal/sandbox/sandboxtest"
)

// TestNetworks: root defines networks; a function joins one through its
// VpcConfig, which GetFunctionConfiguration returns with a VpcId and its
// sandboxes get; bad definitions, callers without icebox rights, unknown subnets, narrow callers and
// deleting a network in use are refused, with nothing written.
func TestNetworks(t *testing.T) {
	factory := &sandboxtest.Factory{}
	d, err := daemon.Start(context.Background(), daemon.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), ShutdownTimeout: 5 * time.Second,
		RootAccessKeyID: authtest.AccessKeyID, RootSecretAccessKey: authtest.SecretAccessKey, Sandboxes: factory}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Shutdown() })
	const nets = "/icebox/v1/networks"
	var put struct{ Network struct{ Name, VpcId string } }
	getJSON(t, d, "PUT", nets+"/db", map[string]any{"Cidrs": []string{"10.1.0.0/16"}, "Allow": []string{"10.9.8.7/32"}}, 200, &put)
	if put.Network.Name != "db" || put.Network.VpcId != "vpc-icebox" {
		t.Errorf("put: %+v", put)
	}

	// Ranges that would open the host or icebox are refused by name.
	bad := map[string][]string{
		"127.0.0.0/8": {"127.0.0.0/8"}, "169.254.169.254/32": {"169.254"}, "10.192.0.0/16": {"10.192.0.0/10"},
		"0.0.0.0/0": {"overlaps"}, "10.1.0.1/16": {"host bits"}, "nope": {`"nope" is not a CIDR`},
	}
	if addrs, _ := net.InterfaceAddrs(); len(addrs) > 0 {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
				bad[n.IP.String()+"/32"] = []string{"an address of the host"}
				break
			}
		}
	}
	for cidr, want := range bad {
		a := call(t, d, root, "PUT", nets+"/x", "", map[string]any{"Cidrs": []string{cidr}})
		if a.status != 400 || a.code != "InvalidParameterValueException" || !strings.Contains(a.msg, want[0]) {
			t.Errorf("network %s: %d %s %q, want 400 naming %q", cidr, a.status, a.code, a.msg, want[0])
		}
	}
	if a := call(t, d, root, "PUT", nets+"/x", "", map[string]any{}); a.status != 400 {
		t.Errorf("a network without CIDRs: %d %s", a.status, a.msg)
	}
	// A caller with every lambda action still may not define networks.
	dev := user(t, d, "dev", "lambda:*", "iam:PassRole")
	for _, op := range []struct{ method, path string }{{"PUT", nets + "/x"}, {"GET", nets}, {"DELETE", nets + "/db"}} {
		if a := call(t, d, dev, op.method, op.path, "", map[string]any{"Cidrs": []string{"10.2.0.0/16"}}); a.status != 403 || a.code != "AccessDeniedException" {
			t.Errorf("%s %s by a lambda:* caller: %d %s", op.method, op.path, a.status, a.code)
		}
	}
	var list struct{ Networks []struct{ Name string } }
	getJSON(t, d, "GET", nets, nil, 200, &list)
	if len(list.Networks) != 1 || list.Networks[0].Name != "db" {
		t.Errorf("networks after refused puts: %+v", list)
	}

	ctx := context.Background()
	c := sdkClient(d, root)
	createSDK(t, c, "f", false)
	name := aws.String("f")
	cfg, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: name,
		VpcConfig: &types.VpcConfig{SubnetIds: []string{"db"}, SecurityGroupIds: []string{"sg-1"}}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: name})
	if err != nil {
		t.Fatal(err)
	}
	if v := got.VpcConfig; v == nil || !slices.Equal(v.SubnetIds, []string{"db"}) || !slices.Equal(v.SecurityGroupIds, []string{"sg-1"}) || aws.ToString(v.VpcId) != "vpc-icebox" {
		t.Errorf("VpcConfig read back: %+v", got.VpcConfig)
	}
	if _, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: name}); err != nil {
		t.Fatal(err)
	}
	made := factory.Made()
	if n := made[len(made)-1].Spec.Networks; !slices.Equal(n, []string{"db"}) {
		t.Errorf("the sandbox joined %v, want [db]", n)
	}

	// An unknown subnet is refused by name and changes nothing.
	_, err = c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: name,
		VpcConfig: &types.VpcConfig{SubnetIds: []string{"db", "subnet-nope"}}})
	wantErr(t, "unknown subnet", err, "InvalidParameterValueException", 400)
	if err == nil || !strings.Contains(err.Error(), "subnet-nope") {
		t.Errorf("unknown subnet: %v, want it named", err)
	}
	if now, _ := c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: name}); aws.ToString(now.RevisionId) != aws.ToString(cfg.RevisionId) {
		t.Error("a refused VpcConfig changed the function")
	}

	// A caller allowed UpdateFunctionConfiguration needs ec2:DescribeSubnets on the subnet too.
	narrow := sdkClient(d, user(t, d, "narrow", "lambda:UpdateFunctionConfiguration"))
	_, err = narrow.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: name,
		VpcConfig: &types.VpcConfig{SubnetIds: []string{"db"}, SecurityGroupIds: []string{"sg-2"}}})
	wantErr(t, "narrow caller", err, "AccessDeniedException", 403)
	wider := sdkClient(d, user(t, d, "wider", "lambda:UpdateFunctionConfiguration", "ec2:DescribeSubnets"))
	if _, err := wider.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: name,
		VpcConfig: &types.VpcConfig{SubnetIds: []string{"db"}, SecurityGroupIds: []string{"sg-2"}}}); err != nil {
		t.Errorf("a caller allowed ec2:DescribeSubnets: %v", err)
	}

	// A published version keeps its VpcConfig; $LATEST leaves the network
	// and its next environment is a new one, outside it.
	if _, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: name}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: name,
		VpcConfig: &types.VpcConfig{SubnetIds: []string{}, SecurityGroupIds: []string{}}}); err != nil {
		t.Fatal(err)
	}
	v1, _ := c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: name, Qualifier: aws.String("1")})
	latest, _ := c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: name})
	if v1.VpcConfig == nil || !slices.Equal(v1.VpcConfig.SubnetIds, []string{"db"}) {
		t.Errorf("version 1's VpcConfig: %+v", v1.VpcConfig)
	}
	if latest.VpcConfig != nil && len(latest.VpcConfig.SubnetIds) > 0 {
		t.Errorf("$LATEST's VpcConfig after leaving: %+v", latest.VpcConfig)
	}
	before := len(factory.Made())
	if _, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: name}); err != nil {
		t.Fatal(err)
	}
	if made := factory.Made(); len(made) != before+1 || made[len(made)-1].Spec.Networks != nil {
		t.Errorf("after leaving the network: %d sandboxes (was %d), the last in %v", len(made), before, made[len(made)-1].Spec.Networks)
	}

	// In use by version 1: 409, until the function is gone.
	if a := call(t, d, root, "DELETE", nets+"/db", "", nil); a.status != 409 || a.code != "ResourceConflictException" || !strings.Contains(a.msg, "f") {
		t.Errorf("deleting a network in use: %d %s %q", a.status, a.code, a.msg)
	}
	if _, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: name}); err != nil {
		t.Fatal(err)
	}
	getJSON(t, d, "DELETE", nets+"/db", nil, 204, nil)
	if a := call(t, d, root, "DELETE", nets+"/db", "", nil); a.status != 404 {
		t.Errorf("deleting it again: %d %s", a.status, a.code)
	}
}
