package api_test

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"hash/crc32"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"
)

// Layers through aws-sdk-go-v2 against the daemon with fake sandboxes:
// what the control API stores and answers, and who may use a layer. The
// end-to-end tests run functions that import from layers.

// layerZip zips files.
func layerZip(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	for name, data := range files {
		f, err := w.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		f.Write(data)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// apiError is the SDK's view of an error answer: code and message.
func apiError(err error) (string, string) {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode(), ae.ErrorMessage()
	}
	return "", ""
}

func wantError(t *testing.T, what string, err error, code, msg string) {
	t.Helper()
	if c, m := apiError(err); c != code || !strings.Contains(m, msg) {
		t.Errorf("%s: %v, want %s containing %q", what, err, code, msg)
	}
}

const arnBase = "arn:aws:lambda:us-east-1:000000000000:layer:"

func TestLayerVersions(t *testing.T) {
	d := startDaemon(t)
	c := sdkClient(d, root)
	ctx := context.Background()
	zip1 := layerZip(t, map[string][]byte{"python/lib1.py": []byte("X = 1\n")})
	sum := sha256.Sum256(zip1)
	publish := func(name string, z []byte, runtimes ...types.Runtime) *lambda.PublishLayerVersionOutput {
		t.Helper()
		out, err := c.PublishLayerVersion(ctx, &lambda.PublishLayerVersionInput{LayerName: aws.String(name), Content: &types.LayerVersionContentInput{ZipFile: z},
			Description: aws.String("libs"), LicenseInfo: aws.String("MIT"), CompatibleRuntimes: runtimes,
			CompatibleArchitectures: []types.Architecture{types.ArchitectureX8664}})
		if err != nil {
			t.Fatalf("publish %s: %v", name, err)
		}
		return out
	}
	v1 := publish("libs", zip1, types.RuntimePython311)
	if aws.ToString(v1.LayerArn) != arnBase+"libs" || aws.ToString(v1.LayerVersionArn) != arnBase+"libs:1" || v1.Version != 1 ||
		aws.ToString(v1.Content.CodeSha256) != base64.StdEncoding.EncodeToString(sum[:]) || v1.Content.CodeSize != int64(len(zip1)) ||
		aws.ToString(v1.LicenseInfo) != "MIT" || aws.ToString(v1.Description) != "libs" || len(v1.CompatibleRuntimes) != 1 {
		t.Fatalf("publish: %+v %+v", v1, v1.Content)
	}
	if _, err := time.Parse("2006-01-02T15:04:05.000-0700", aws.ToString(v1.CreatedDate)); err != nil {
		t.Errorf("CreatedDate: %v", err)
	}
	// The content is downloadable from Location without a signature, and
	// only with its token.
	resp, err := http.Get(aws.ToString(v1.Content.Location))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(got, zip1) {
		t.Errorf("Location: %d, %d bytes", resp.StatusCode, len(got))
	}
	if a, _ := send(t, d, nil, "GET", "/icebox/v1/layers/libs/versions/1/content?token=1."+strings.Repeat("A", 43), nil, nil); a.status != 403 {
		t.Errorf("forged token: %d %s", a.status, a.code)
	}

	v2 := publish("libs", zip1, types.RuntimeNodejs20x)
	if v2.Version != 2 || aws.ToString(v2.Content.CodeSha256) != aws.ToString(v1.Content.CodeSha256) {
		t.Errorf("second version: %d %s", v2.Version, aws.ToString(v2.Content.CodeSha256))
	}
	publish("other", zip1)
	byArn, err := c.GetLayerVersionByArn(ctx, &lambda.GetLayerVersionByArnInput{Arn: aws.String(arnBase + "libs:1")})
	if err != nil || byArn.Version != 1 || aws.ToString(byArn.LayerVersionArn) != arnBase+"libs:1" {
		t.Errorf("by ARN: %+v %v", byArn, err)
	}
	get, err := c.GetLayerVersion(ctx, &lambda.GetLayerVersionInput{LayerName: aws.String(arnBase + "libs"), VersionNumber: aws.Int64(2)})
	if err != nil || get.Version != 2 || get.CompatibleRuntimes[0] != types.RuntimeNodejs20x {
		t.Errorf("get by layer ARN: %+v %v", get, err)
	}

	// Newest first, filtered, paged.
	vs, err := c.ListLayerVersions(ctx, &lambda.ListLayerVersionsInput{LayerName: aws.String("libs")})
	if err != nil || len(vs.LayerVersions) != 2 || vs.LayerVersions[0].Version != 2 || vs.LayerVersions[1].Version != 1 {
		t.Errorf("list versions: %+v %v", vs, err)
	}
	vs, err = c.ListLayerVersions(ctx, &lambda.ListLayerVersionsInput{LayerName: aws.String("libs"), CompatibleRuntime: types.RuntimePython311})
	if err != nil || len(vs.LayerVersions) != 1 || vs.LayerVersions[0].Version != 1 {
		t.Errorf("list python versions: %+v %v", vs, err)
	}
	page, err := c.ListLayerVersions(ctx, &lambda.ListLayerVersionsInput{LayerName: aws.String("libs"), MaxItems: aws.Int32(1)})
	if err != nil || len(page.LayerVersions) != 1 || page.NextMarker == nil {
		t.Fatalf("first page: %+v %v", page, err)
	}
	page, err = c.ListLayerVersions(ctx, &lambda.ListLayerVersionsInput{LayerName: aws.String("libs"), MaxItems: aws.Int32(1), Marker: page.NextMarker})
	if err != nil || len(page.LayerVersions) != 1 || page.LayerVersions[0].Version != 1 || page.NextMarker != nil {
		t.Errorf("second page: %+v %v", page, err)
	}
	ls, err := c.ListLayers(ctx, &lambda.ListLayersInput{})
	if err != nil || len(ls.Layers) != 2 || aws.ToString(ls.Layers[0].LayerName) != "libs" || ls.Layers[0].LatestMatchingVersion.Version != 2 {
		t.Errorf("list layers: %+v %v", ls, err)
	}
	ls, err = c.ListLayers(ctx, &lambda.ListLayersInput{CompatibleRuntime: types.RuntimePython311})
	if err != nil || len(ls.Layers) != 1 || ls.Layers[0].LatestMatchingVersion.Version != 1 {
		t.Errorf("list python layers: %+v %v", ls, err)
	}
	_, err = c.ListLayers(ctx, &lambda.ListLayersInput{MaxItems: aws.Int32(51)})
	wantError(t, "MaxItems 51", err, "InvalidParameterValueException", "maxItems")

	// A function uses a version; deleting the version keeps the function
	// whole, and its number is never handed out again.
	if _, err := c.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("f"), Runtime: types.RuntimeProvidedal2023,
		Handler: aws.String("bootstrap"), Role: aws.String("arn:aws:iam::000000000000:role/r"), Code: &types.FunctionCode{ZipFile: mustZip(t)},
		Layers: []string{arnBase + "libs:2", arnBase + "other:1"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteLayerVersion(ctx, &lambda.DeleteLayerVersionInput{LayerName: aws.String("libs"), VersionNumber: aws.Int64(2)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteLayerVersion(ctx, &lambda.DeleteLayerVersionInput{LayerName: aws.String("libs"), VersionNumber: aws.Int64(2)}); err != nil {
		t.Errorf("deleting a deleted version: %v", err)
	}
	_, err = c.GetLayerVersion(ctx, &lambda.GetLayerVersionInput{LayerName: aws.String("libs"), VersionNumber: aws.Int64(2)})
	wantError(t, "deleted version", err, "ResourceNotFoundException", "does not exist")
	if v3 := publish("libs", zip1); v3.Version != 3 {
		t.Errorf("after deleting 2, published %d, want 3", v3.Version)
	}
	fn, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("f")})
	if err != nil || len(fn.Configuration.Layers) != 2 || aws.ToString(fn.Configuration.Layers[0].Arn) != arnBase+"libs:2" ||
		fn.Configuration.Layers[0].CodeSize != int64(len(zip1)) || aws.ToString(fn.Configuration.Layers[1].Arn) != arnBase+"other:1" {
		t.Errorf("function's layers after the delete: %+v %v", fn.Configuration, err)
	}
	// A published version keeps its layers; an empty list removes
	// $LATEST's.
	if v, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("f")}); err != nil || len(v.Layers) != 2 {
		t.Fatalf("publish with layers: %+v %v", v, err)
	}
	up, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("f"), Layers: []string{}})
	if err != nil || len(up.Layers) != 0 {
		t.Errorf("remove layers: %+v %v", up, err)
	}
	if v, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("f")}); err != nil || aws.ToString(v.Version) != "2" || len(v.Layers) != 0 {
		t.Errorf("publish without layers: %+v %v", v, err)
	}
	if v1, err := c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("f"), Qualifier: aws.String("1")}); err != nil || len(v1.Layers) != 2 {
		t.Errorf("version 1 after $LATEST's layers were removed: %+v %v", v1, err)
	}

	// Layers a function may not name.
	six := []string{}
	for range 6 {
		six = append(six, arnBase+"libs:1")
	}
	for _, tc := range []struct {
		what   string
		layers []string
		msg    string
	}{
		{"six", six, "Cannot reference more than 5 layers."},
		{"missing version", []string{arnBase + "libs:9"}, "Layer version " + arnBase + "libs:9 does not exist."},
		{"deleted version", []string{arnBase + "libs:2"}, "Layer version " + arnBase + "libs:2 does not exist."},
		{"another account", []string{"arn:aws:lambda:us-east-1:123456789012:layer:libs:1"}, "does not exist"},
		{"another region", []string{"arn:aws:lambda:eu-west-1:000000000000:layer:libs:1"}, "does not exist"},
		{"two versions of one layer", []string{arnBase + "libs:1", arnBase + "libs:3"}, "Two different versions of the same layer"},
		{"no version", []string{arnBase + "libs"}, "failed to satisfy constraint"},
	} {
		_, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("f"), Layers: tc.layers})
		wantError(t, tc.what, err, "InvalidParameterValueException", tc.msg)
	}
	_, err = c.PublishLayerVersion(ctx, &lambda.PublishLayerVersionInput{LayerName: aws.String("bad"), Content: &types.LayerVersionContentInput{ZipFile: zip1},
		CompatibleRuntimes: []types.Runtime{"cobol"}})
	wantError(t, "unknown runtime", err, "InvalidParameterValueException", "compatibleRuntimes")
	_, err = c.PublishLayerVersion(ctx, &lambda.PublishLayerVersionInput{LayerName: aws.String("bad"), Content: &types.LayerVersionContentInput{ZipFile: []byte("no zip")}})
	wantError(t, "not a zip", err, "InvalidParameterValueException", "Could not unzip")
	if vs, _ := c.ListLayerVersions(ctx, &lambda.ListLayerVersionsInput{LayerName: aws.String("bad")}); len(vs.LayerVersions) != 0 {
		t.Errorf("refused publishes left versions: %+v", vs.LayerVersions)
	}
}

func mustZip(t *testing.T) []byte {
	b, err := base64.StdEncoding.DecodeString(codeZip())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestLayerPermissions: a layer version's policy round-trips, and a user
// may put a layer on a function only when its own policy or the layer's
// allows it lambda:GetLayerVersion.
func TestLayerPermissions(t *testing.T) {
	d := startDaemon(t)
	c := sdkClient(d, root)
	ctx := context.Background()
	if _, err := c.PublishLayerVersion(ctx, &lambda.PublishLayerVersionInput{LayerName: aws.String("shared"),
		Content: &types.LayerVersionContentInput{ZipFile: layerZip(t, map[string][]byte{"lib/x": []byte("x")})}}); err != nil {
		t.Fatal(err)
	}
	narrow := sdkClient(d, user(t, d, "deployer", "lambda:CreateFunction", "iam:PassRole"))
	create := func(name string) error {
		_, err := narrow.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String(name), Runtime: types.RuntimeProvidedal2023,
			Handler: aws.String("bootstrap"), Role: aws.String("arn:aws:iam::000000000000:role/r"), Code: &types.FunctionCode{ZipFile: mustZip(t)},
			Layers: []string{arnBase + "shared:1"}})
		return err
	}
	wantError(t, "without permission", create("f1"), "AccessDeniedException", "lambda:GetLayerVersion on resource: "+arnBase+"shared:1")
	_, err := narrow.GetLayerVersion(ctx, &lambda.GetLayerVersionInput{LayerName: aws.String("shared"), VersionNumber: aws.Int64(1)})
	wantError(t, "get without permission", err, "AccessDeniedException", "lambda:GetLayerVersion")
	if _, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("f1")}); err == nil {
		t.Error("a refused create made the function")
	}

	_, err = c.GetLayerVersionPolicy(ctx, &lambda.GetLayerVersionPolicyInput{LayerName: aws.String("shared"), VersionNumber: aws.Int64(1)})
	wantError(t, "no policy", err, "ResourceNotFoundException", "No policy is associated")
	add, err := c.AddLayerVersionPermission(ctx, &lambda.AddLayerVersionPermissionInput{LayerName: aws.String("shared"), VersionNumber: aws.Int64(1),
		StatementId: aws.String("everyone"), Action: aws.String("lambda:GetLayerVersion"), Principal: aws.String("*")})
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	if json.Unmarshal([]byte(aws.ToString(add.Statement)), &st); st["Sid"] != "everyone" || st["Principal"] != "*" ||
		st["Action"] != "lambda:GetLayerVersion" || st["Resource"] != arnBase+"shared:1" || add.RevisionId == nil {
		t.Errorf("statement: %s %v", aws.ToString(add.Statement), add.RevisionId)
	}
	if err := create("f2"); err != nil {
		t.Errorf("with the layer shared: %v", err)
	}
	if _, err := narrow.GetLayerVersion(ctx, &lambda.GetLayerVersionInput{LayerName: aws.String("shared"), VersionNumber: aws.Int64(1)}); err != nil {
		t.Errorf("get with the layer shared: %v", err)
	}

	for _, tc := range []struct {
		what string
		in   lambda.AddLayerVersionPermissionInput
		code string
	}{
		{"same sid", lambda.AddLayerVersionPermissionInput{StatementId: aws.String("everyone"), Action: aws.String("lambda:GetLayerVersion"), Principal: aws.String("*")}, "ResourceConflictException"},
		{"other action", lambda.AddLayerVersionPermissionInput{StatementId: aws.String("a"), Action: aws.String("lambda:InvokeFunction"), Principal: aws.String("*")}, "InvalidParameterValueException"},
		{"bad principal", lambda.AddLayerVersionPermissionInput{StatementId: aws.String("b"), Action: aws.String("lambda:GetLayerVersion"), Principal: aws.String("bob")}, "InvalidParameterValueException"},
		{"stale revision", lambda.AddLayerVersionPermissionInput{StatementId: aws.String("c"), Action: aws.String("lambda:GetLayerVersion"), Principal: aws.String("123456789012"), RevisionId: aws.String("old")}, "PreconditionFailedException"},
	} {
		tc.in.LayerName, tc.in.VersionNumber = aws.String("shared"), aws.Int64(1)
		_, err := c.AddLayerVersionPermission(ctx, &tc.in)
		wantError(t, tc.what, err, tc.code, "")
	}
	acct, err := c.AddLayerVersionPermission(ctx, &lambda.AddLayerVersionPermissionInput{LayerName: aws.String("shared"), VersionNumber: aws.Int64(1),
		StatementId: aws.String("acct"), Action: aws.String("lambda:GetLayerVersion"), Principal: aws.String("123456789012"), RevisionId: add.RevisionId})
	if err != nil || !strings.Contains(aws.ToString(acct.Statement), `"AWS":"arn:aws:iam::123456789012:root"`) {
		t.Errorf("account principal: %+v %v", acct, err)
	}
	pol, err := c.GetLayerVersionPolicy(ctx, &lambda.GetLayerVersionPolicyInput{LayerName: aws.String("shared"), VersionNumber: aws.Int64(1)})
	if err != nil || !strings.Contains(aws.ToString(pol.Policy), `"Sid":"everyone"`) || !strings.Contains(aws.ToString(pol.Policy), `"Sid":"acct"`) ||
		aws.ToString(pol.RevisionId) != aws.ToString(acct.RevisionId) {
		t.Errorf("policy: %+v %v", pol, err)
	}
	if _, err := c.RemoveLayerVersionPermission(ctx, &lambda.RemoveLayerVersionPermissionInput{LayerName: aws.String("shared"), VersionNumber: aws.Int64(1), StatementId: aws.String("everyone")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.RemoveLayerVersionPermission(ctx, &lambda.RemoveLayerVersionPermissionInput{LayerName: aws.String("shared"), VersionNumber: aws.Int64(1), StatementId: aws.String("everyone")})
	wantError(t, "removed twice", err, "ResourceNotFoundException", "Statement everyone is not found")
	wantError(t, "after the removal", create("f3"), "AccessDeniedException", "lambda:GetLayerVersion")
	// The function made while the layer was shared keeps it.
	if fn, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("f2")}); err != nil || len(fn.Configuration.Layers) != 1 {
		t.Errorf("f2: %+v %v", fn, err)
	}
}

// TestLayersUnzippedLimit: a function's code and layers together unzip to
// at most 250 MB; past it the create or update is refused with Lambda's
// message and nothing changes. One layer of 130 MB of zeros (a zip of a
// few hundred KB), published under two names, stored once.
func TestLayersUnzippedLimit(t *testing.T) {
	d := startDaemon(t)
	c := sdkClient(d, root)
	ctx := context.Background()
	big := zerosZip(t, "lib/zeros", 130)
	for _, name := range []string{"big-a", "big-b"} {
		if _, err := c.PublishLayerVersion(ctx, &lambda.PublishLayerVersionInput{LayerName: aws.String(name), Content: &types.LayerVersionContentInput{ZipFile: big}}); err != nil {
			t.Fatal(err)
		}
	}
	code := mustZip(t)
	total := strconv.Itoa(2*130<<20 + len("#!/bin/sh\n"))
	in := &lambda.CreateFunctionInput{FunctionName: aws.String("f"), Runtime: types.RuntimeProvidedal2023, Handler: aws.String("bootstrap"),
		Role: aws.String("arn:aws:iam::000000000000:role/r"), Code: &types.FunctionCode{ZipFile: code}, Layers: []string{arnBase + "big-a:1", arnBase + "big-b:1"}}
	_, err := c.CreateFunction(ctx, in)
	const msg = "Function code combined with layers exceeds the maximum allowed size of 262144000 bytes. The actual size is "
	wantError(t, "create", err, "InvalidParameterValueException", msg+total+" bytes.")
	if _, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("f")}); err == nil {
		t.Error("a refused create made the function")
	}
	in.Layers = in.Layers[:1]
	if _, err := c.CreateFunction(ctx, in); err != nil {
		t.Fatal(err)
	}
	_, err = c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("f"), Layers: []string{arnBase + "big-a:1", arnBase + "big-b:1"}})
	wantError(t, "update", err, "InvalidParameterValueException", msg+total+" bytes.")
	fn, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("f")})
	if err != nil || len(fn.Configuration.Layers) != 1 {
		t.Errorf("after the refused update: %+v %v", fn.Configuration, err)
	}
}

// zerosZip is a zip holding name, mb MiB of zeros, built without
// compressing them: a deflate stream of 1 MiB of zeros, flushed, repeats as
// is (its matches only ever copy zeros), and "03 00" is an empty final block.
func zerosZip(t *testing.T, name string, mb int) []byte {
	t.Helper()
	var chunk bytes.Buffer
	fw, _ := flate.NewWriter(&chunk, flate.BestSpeed)
	zeros := make([]byte, 1<<20)
	fw.Write(zeros)
	fw.Flush()
	var crc uint32
	for range mb {
		crc = crc32.Update(crc, crc32.IEEETable, zeros)
	}
	raw := append(bytes.Repeat(chunk.Bytes(), mb), 0x03, 0x00)
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	w, err := zw.CreateRaw(&zip.FileHeader{Name: name, Method: zip.Deflate, CRC32: crc,
		CompressedSize64: uint64(len(raw)), UncompressedSize64: uint64(mb) << 20})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(raw)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
