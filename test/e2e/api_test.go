package e2e

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

const (
	testRole    = "arn:aws:iam::000000000000:role/lambda-role"
	testArnBase = "arn:aws:lambda:us-east-1:000000000000:function:"
)

// zipEntry is one member of a hand-made zip: a file, or a symlink when mode
// says so (its data is the link target).
type zipEntry struct {
	name string
	data string
	mode fs.FileMode
}

func rawZip(entries ...zipEntry) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		h.SetMode(e.mode)
		w, _ := zw.CreateHeader(h)
		w.Write([]byte(e.data))
	}
	zw.Close()
	return buf.Bytes()
}

// tinyZip is a valid deployment package for functions that are never invoked:
// uploading the real one costs seconds under the race detector.
var tinyZip = zipOf(map[string][]byte{"bootstrap": []byte("#!/bin/sh\nexit 0\n")})

func sha256Base64(b []byte) string {
	sum := sha256.Sum256(b)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// httpStatus is the status of the response a successful SDK call got.
func httpStatus(t *testing.T, md middleware.Metadata) int {
	t.Helper()
	resp, ok := awsmiddleware.GetRawResponse(md).(*smithyhttp.Response)
	if !ok {
		t.Fatalf("no raw response in result metadata")
	}
	return resp.StatusCode
}

// wantAPIError checks that err is the AWS error code, carried by the HTTP
// status, with a message naming the problem (containing every part).
func wantAPIError(t *testing.T, what string, err error, code string, status int, parts ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: succeeded, want %s (%d)", what, code, status)
		return
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Errorf("%s: %v is not an AWS API error; want %s", what, err, code)
		return
	}
	if ae.ErrorCode() != code {
		t.Errorf("%s: error code %s (%s), want %s", what, ae.ErrorCode(), ae.ErrorMessage(), code)
	}
	var re *awshttp.ResponseError
	if !errors.As(err, &re) {
		t.Errorf("%s: no HTTP response in %v", what, err)
	} else if re.HTTPStatusCode() != status {
		t.Errorf("%s: HTTP status %d, want %d", what, re.HTTPStatusCode(), status)
	}
	for _, p := range parts {
		if !strings.Contains(ae.ErrorMessage(), p) {
			t.Errorf("%s: message %q does not mention %q", what, ae.ErrorMessage(), p)
		}
	}
}

func TestAPIFunctionLifecycle(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx := context.Background()
	code := functionZip(t)
	before := time.Now()

	created, err := s.client.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String("crud"),
		Runtime:      types.RuntimeProvidedal2023,
		Handler:      aws.String("bootstrap"),
		Role:         aws.String(testRole),
		Code:         &types.FunctionCode{ZipFile: code},
	})
	if err != nil {
		t.Fatal(err)
	}
	if st := httpStatus(t, created.ResultMetadata); st != http.StatusCreated {
		t.Errorf("CreateFunction status %d, want 201", st)
	}
	checks := []struct {
		field, got, want string
	}{
		{"FunctionName", aws.ToString(created.FunctionName), "crud"},
		{"FunctionArn", aws.ToString(created.FunctionArn), testArnBase + "crud"},
		{"Runtime", string(created.Runtime), "provided.al2023"},
		{"Handler", aws.ToString(created.Handler), "bootstrap"},
		{"Role", aws.ToString(created.Role), testRole},
		{"CodeSha256", aws.ToString(created.CodeSha256), sha256Base64(code)},
		{"Version", aws.ToString(created.Version), "$LATEST"},
		{"State", string(created.State), "Active"},
		{"LastUpdateStatus", string(created.LastUpdateStatus), "Successful"},
		{"PackageType", string(created.PackageType), "Zip"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("created %s = %q, want %q", c.field, c.got, c.want)
		}
	}
	if aws.ToInt32(created.MemorySize) != 128 || aws.ToInt32(created.Timeout) != 3 {
		t.Errorf("created memory %d timeout %d, want defaults 128 and 3", aws.ToInt32(created.MemorySize), aws.ToInt32(created.Timeout))
	}
	if created.EphemeralStorage == nil || aws.ToInt32(created.EphemeralStorage.Size) != 512 {
		t.Errorf("created ephemeral storage %+v, want 512", created.EphemeralStorage)
	}
	if created.CodeSize != int64(len(code)) {
		t.Errorf("created CodeSize %d, want %d", created.CodeSize, len(code))
	}
	if !slices.Equal(created.Architectures, []types.Architecture{types.ArchitectureX8664}) {
		t.Errorf("created architectures %v", created.Architectures)
	}
	if aws.ToString(created.RevisionId) == "" {
		t.Error("created without RevisionId")
	}
	// Lambda's format: 2026-11-24T12:00:00.000+0000.
	lm, err := time.Parse("2006-01-02T15:04:05.000-0700", aws.ToString(created.LastModified))
	if err != nil {
		t.Errorf("LastModified: %v", err)
	} else if lm.Before(before.Add(-time.Minute)) || lm.After(time.Now().Add(time.Minute)) {
		t.Errorf("LastModified %v is not about now", lm)
	}

	// GetFunction: the configuration, and the code at a downloadable location.
	got, err := s.client.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("crud")})
	if err != nil {
		t.Fatal(err)
	}
	if c := got.Configuration; aws.ToString(c.FunctionArn) != testArnBase+"crud" || aws.ToString(c.CodeSha256) != sha256Base64(code) ||
		aws.ToString(c.RevisionId) != aws.ToString(created.RevisionId) || aws.ToString(c.LastModified) != aws.ToString(created.LastModified) {
		t.Errorf("GetFunction configuration differs from CreateFunction's: %+v", c)
	}
	if got.Code == nil || aws.ToString(got.Code.Location) == "" {
		t.Fatalf("GetFunction without Code.Location: %+v", got.Code)
	}
	if dl := download(t, aws.ToString(got.Code.Location)); !bytes.Equal(dl, code) {
		t.Errorf("code at %s is %d bytes, not the uploaded %d-byte zip", aws.ToString(got.Code.Location), len(dl), len(code))
	}

	// The same function by name, full ARN, partial ARN and explicit $LATEST.
	for _, ref := range []string{"crud", testArnBase + "crud", "000000000000:function:crud", "crud:$LATEST"} {
		c, err := s.client.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(ref)})
		if err != nil {
			t.Errorf("GetFunctionConfiguration(%s): %v", ref, err)
			continue
		}
		if aws.ToString(c.FunctionName) != "crud" || aws.ToString(c.RevisionId) != aws.ToString(created.RevisionId) {
			t.Errorf("GetFunctionConfiguration(%s) = %s rev %s", ref, aws.ToString(c.FunctionName), aws.ToString(c.RevisionId))
		}
	}
	for _, ref := range []string{testArnBase + "crud", "000000000000:function:crud"} {
		if r := s.call(ref, map[string]any{}); r.FunctionArn != testArnBase+"crud" {
			t.Errorf("invoke by %s ran %q", ref, r.FunctionArn)
		}
	}
	if q, err := s.client.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("crud"), Qualifier: aws.String("$LATEST")}); err != nil {
		t.Errorf("GetFunction Qualifier $LATEST: %v", err)
	} else if aws.ToString(q.Configuration.Version) != "$LATEST" {
		t.Errorf("GetFunction Qualifier $LATEST version %q", aws.ToString(q.Configuration.Version))
	}

	// ListFunctions pages through every function exactly once.
	want := []string{"crud"}
	for _, n := range []string{"page-a", "page-b", "page-c", "page-d", "page-e"} {
		s.create(n, func(in *lambda.CreateFunctionInput) { in.Code.ZipFile = tinyZip })
		want = append(want, n)
	}
	seen := map[string]int{}
	pages := 0
	p := lambda.NewListFunctionsPaginator(s.client, &lambda.ListFunctionsInput{MaxItems: aws.Int32(2)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if len(page.Functions) > 2 {
			t.Errorf("page %d has %d functions, MaxItems is 2", pages, len(page.Functions))
		}
		for _, f := range page.Functions {
			seen[aws.ToString(f.FunctionName)]++
			if aws.ToString(f.FunctionArn) != testArnBase+aws.ToString(f.FunctionName) || aws.ToString(f.CodeSha256) == "" {
				t.Errorf("listed function %+v", f)
			}
		}
		if pages > 10 {
			t.Fatal("ListFunctions paginator does not end")
		}
	}
	if pages != 3 {
		t.Errorf("6 functions with MaxItems=2 came in %d pages, want 3", pages)
	}
	for _, n := range want {
		if seen[n] != 1 {
			t.Errorf("function %s listed %d times, want once", n, seen[n])
		}
	}
	if len(seen) != len(want) {
		t.Errorf("listed %v, want exactly %v", seen, want)
	}

	// UpdateFunctionConfiguration, guarded by RevisionId.
	rev := aws.ToString(created.RevisionId)
	upd, err := s.client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String(testArnBase + "crud"),
		MemorySize:   aws.Int32(256),
		Timeout:      aws.Int32(10),
		Description:  aws.String("updated by the test"),
		Environment:  &types.Environment{Variables: map[string]string{"COLOR": "blue"}},
		RevisionId:   aws.String(rev),
	})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToInt32(upd.MemorySize) != 256 || aws.ToInt32(upd.Timeout) != 10 || aws.ToString(upd.Description) != "updated by the test" ||
		upd.Environment == nil || upd.Environment.Variables["COLOR"] != "blue" {
		t.Errorf("updated configuration %+v", upd)
	}
	if aws.ToString(upd.RevisionId) == "" || aws.ToString(upd.RevisionId) == rev {
		t.Errorf("RevisionId %q after update, was %q: want a new one", aws.ToString(upd.RevisionId), rev)
	}
	if aws.ToString(upd.CodeSha256) != sha256Base64(code) {
		t.Errorf("configuration update changed CodeSha256 to %s", aws.ToString(upd.CodeSha256))
	}
	_, err = s.client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String("crud"), MemorySize: aws.Int32(512), RevisionId: aws.String(rev),
	})
	wantAPIError(t, "update with a stale RevisionId", err, "PreconditionFailedException", http.StatusPreconditionFailed, "Revision")
	cfg, err := s.client.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("crud")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToInt32(cfg.MemorySize) != 256 || aws.ToString(cfg.RevisionId) != aws.ToString(upd.RevisionId) {
		t.Errorf("after a refused update: memory %d rev %s; want 256 and %s", aws.ToInt32(cfg.MemorySize), aws.ToString(cfg.RevisionId), aws.ToString(upd.RevisionId))
	}
	r := s.call("crud", map[string]any{})
	if r.Env["COLOR"] != "blue" || r.Env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] != "256" {
		t.Errorf("function after update sees COLOR=%q memory=%q", r.Env["COLOR"], r.Env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"])
	}

	// UpdateFunctionCode: a different zip, a different CodeSha256.
	code2 := withFile(t, code, "VERSION", "2")
	_, err = s.client.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{
		FunctionName: aws.String("crud"), ZipFile: tinyZip, RevisionId: aws.String(rev),
	})
	wantAPIError(t, "code update with a stale RevisionId", err, "PreconditionFailedException", http.StatusPreconditionFailed, "Revision")
	uc, err := s.client.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("000000000000:function:crud"), ZipFile: code2})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(uc.CodeSha256) != sha256Base64(code2) || uc.CodeSize != int64(len(code2)) {
		t.Errorf("after code update CodeSha256 %s size %d, want %s %d", aws.ToString(uc.CodeSha256), uc.CodeSize, sha256Base64(code2), len(code2))
	}
	if aws.ToString(uc.RevisionId) == aws.ToString(upd.RevisionId) {
		t.Error("code update kept the RevisionId")
	}
	if aws.ToInt32(uc.MemorySize) != 256 || uc.Environment == nil || uc.Environment.Variables["COLOR"] != "blue" {
		t.Errorf("code update lost the configuration: %+v", uc)
	}
	got, err = s.client.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("crud")})
	if err != nil {
		t.Fatal(err)
	}
	if dl := download(t, aws.ToString(got.Code.Location)); !bytes.Equal(dl, code2) {
		t.Error("GetFunction's code location serves the old zip after UpdateFunctionCode")
	}
	if r := s.call("crud", map[string]any{}); r.Calls != 1 {
		t.Errorf("first call after a code update: calls=%d, want a new environment", r.Calls)
	}

	// DeleteFunction, then the function is gone everywhere.
	del, err := s.client.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String(testArnBase + "crud")})
	if err != nil {
		t.Fatal(err)
	}
	if st := httpStatus(t, del.ResultMetadata); st != http.StatusNoContent {
		t.Errorf("DeleteFunction status %d, want 204", st)
	}
	_, err = s.client.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("crud")})
	wantAPIError(t, "get after delete", err, "ResourceNotFoundException", http.StatusNotFound, "crud")
	_, err = s.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("crud")})
	wantAPIError(t, "invoke after delete", err, "ResourceNotFoundException", http.StatusNotFound, "crud")
	_, err = s.client.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("crud")})
	wantAPIError(t, "delete twice", err, "ResourceNotFoundException", http.StatusNotFound, "crud")
	list, err := s.client.ListFunctions(ctx, &lambda.ListFunctionsInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range list.Functions {
		if aws.ToString(f.FunctionName) == "crud" {
			t.Error("deleted function still listed")
		}
	}
	if len(list.Functions) != 5 {
		t.Errorf("%d functions listed after the delete, want 5", len(list.Functions))
	}
}

func download(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("download code: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("download code: status %d err %v", resp.StatusCode, err)
	}
	return b
}

// withFile returns a copy of zip z with one more file. Entries are copied
// still compressed: recompressing the test function is slow under -race.
func withFile(t *testing.T, z []byte, name, data string) []byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(z), int64(len(z)))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range zr.File {
		if err := zw.Copy(f); err != nil {
			t.Fatal(err)
		}
	}
	w, err := zw.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(data))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestAPIErrors(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	code := functionZip(t)
	exists := s.create("exists")

	// A missing function, whatever the operation.
	missing := aws.String("nope")
	_, err := s.client.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: missing})
	wantAPIError(t, "GetFunction of a missing function", err, "ResourceNotFoundException", 404, "Function not found: "+testArnBase+"nope")
	_, err = s.client.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: missing})
	wantAPIError(t, "GetFunctionConfiguration of a missing function", err, "ResourceNotFoundException", 404, "nope")
	_, err = s.client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: missing, Timeout: aws.Int32(5)})
	wantAPIError(t, "UpdateFunctionConfiguration of a missing function", err, "ResourceNotFoundException", 404, "nope")
	_, err = s.client.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: missing, ZipFile: tinyZip})
	wantAPIError(t, "UpdateFunctionCode of a missing function", err, "ResourceNotFoundException", 404, "nope")
	_, err = s.client.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: missing})
	wantAPIError(t, "DeleteFunction of a missing function", err, "ResourceNotFoundException", 404, "Function not found: "+testArnBase+"nope")
	_, err = s.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: missing, Payload: []byte(`{}`)})
	wantAPIError(t, "Invoke of a missing function", err, "ResourceNotFoundException", 404, "Function not found: "+testArnBase+"nope")
	_, err = s.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(testArnBase + "nope")})
	wantAPIError(t, "Invoke of a missing function by ARN", err, "ResourceNotFoundException", 404, "nope")

	// A version that does not exist.
	_, err = s.client.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("exists"), Qualifier: aws.String("7")})
	wantAPIError(t, "GetFunction Qualifier 7", err, "ResourceNotFoundException", 404, "exists:7")
	_, err = s.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("exists"), Qualifier: aws.String("7")})
	wantAPIError(t, "Invoke Qualifier 7", err, "ResourceNotFoundException", 404, "exists:7")
	_, err = s.client.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("exists:7")})
	wantAPIError(t, "GetFunctionConfiguration exists:7", err, "ResourceNotFoundException", 404, "exists:7")

	// A name that is taken.
	_, err = s.client.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String("exists"), Runtime: types.RuntimeProvidedal2023, Handler: aws.String("bootstrap"),
		Role: aws.String(testRole), Code: &types.FunctionCode{ZipFile: tinyZip},
	})
	wantAPIError(t, "duplicate CreateFunction", err, "ResourceConflictException", 409, "exists")

	// Invalid parameters: 400, and no trace of the function afterwards.
	bigEnv := map[string]string{"BIG": strings.Repeat("v", 4100)}
	cases := []struct {
		name   string
		mutate func(*lambda.CreateFunctionInput)
		parts  []string
	}{
		{"mem-100", func(in *lambda.CreateFunctionInput) { in.MemorySize = aws.Int32(100) }, []string{"memorySize", "100"}},
		{"mem-10241", func(in *lambda.CreateFunctionInput) { in.MemorySize = aws.Int32(10241) }, []string{"memorySize", "10241"}},
		{"timeout-0", func(in *lambda.CreateFunctionInput) { in.Timeout = aws.Int32(0) }, []string{"timeout", "'0'"}},
		{"timeout-901", func(in *lambda.CreateFunctionInput) { in.Timeout = aws.Int32(901) }, []string{"timeout", "901"}},
		{"tmp-100", func(in *lambda.CreateFunctionInput) {
			in.EphemeralStorage = &types.EphemeralStorage{Size: aws.Int32(100)}
		}, []string{"ephemeralStorage", "100"}},
		{"env-key", func(in *lambda.CreateFunctionInput) {
			in.Environment = &types.Environment{Variables: map[string]string{"1X": "v"}}
		}, []string{"1X"}},
		{"env-reserved", func(in *lambda.CreateFunctionInput) {
			in.Environment = &types.Environment{Variables: map[string]string{"AWS_REGION": "eu-west-1", "OK": "v"}}
		}, []string{"reserved", "AWS_REGION"}},
		{"env-4kb", func(in *lambda.CreateFunctionInput) { in.Environment = &types.Environment{Variables: bigEnv} }, []string{"4KB"}},
		{"no-role", func(in *lambda.CreateFunctionInput) { in.Role = aws.String("") }, []string{"role"}},
		{"bad-role", func(in *lambda.CreateFunctionInput) { in.Role = aws.String("lambda-role") }, []string{"role", "lambda-role"}},
		{"python27", func(in *lambda.CreateFunctionInput) { in.Runtime = types.RuntimePython27 }, []string{"python2.7"}},
		{"empty-code", func(in *lambda.CreateFunctionInput) { in.Code.ZipFile = []byte{} }, []string{"code"}},
		{"empty-zip", func(in *lambda.CreateFunctionInput) { in.Code.ZipFile = rawZip() }, []string{"zip"}},
		{"junk-zip", func(in *lambda.CreateFunctionInput) {
			in.Code.ZipFile = []byte("this is not a zip archive, only some junk bytes")
		}, []string{"unzip"}},
		{"slip", func(in *lambda.CreateFunctionInput) {
			in.Code.ZipFile = rawZip(zipEntry{"bootstrap", "#!/bin/sh\n", 0o755}, zipEntry{"../evil", "x", 0o644})
		}, []string{"../evil"}},
		{"slip-deep", func(in *lambda.CreateFunctionInput) {
			in.Code.ZipFile = rawZip(zipEntry{"bootstrap", "#!/bin/sh\n", 0o755}, zipEntry{"a/../../../../evil", "x", 0o644})
		}, []string{"evil"}},
		{"symlink-escape", func(in *lambda.CreateFunctionInput) {
			in.Code.ZipFile = rawZip(zipEntry{"bootstrap", "#!/bin/sh\n", 0o755}, zipEntry{"up", "../../..", fs.ModeSymlink | 0o777})
		}, []string{"up", "symlink"}},
		{"symlink-write-through", func(in *lambda.CreateFunctionInput) {
			in.Code.ZipFile = rawZip(zipEntry{"bootstrap", "#!/bin/sh\n", 0o755}, zipEntry{"up", "../../..", fs.ModeSymlink | 0o777}, zipEntry{"up/evil", "x", 0o644})
		}, []string{"up"}},
	}
	for _, c := range cases {
		in := &lambda.CreateFunctionInput{
			FunctionName: aws.String("bad-" + c.name), Runtime: types.RuntimeProvidedal2023, Handler: aws.String("bootstrap"),
			Role: aws.String(testRole), Code: &types.FunctionCode{ZipFile: tinyZip},
		}
		c.mutate(in)
		_, err := s.client.CreateFunction(ctx, in)
		wantAPIError(t, "create "+c.name, err, "InvalidParameterValueException", 400, c.parts...)
		_, err = s.client.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: in.FunctionName})
		wantAPIError(t, "get after failed create "+c.name, err, "ResourceNotFoundException", 404)
	}
	list, err := s.client.ListFunctions(ctx, &lambda.ListFunctionsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Functions) != 1 || aws.ToString(list.Functions[0].FunctionName) != "exists" {
		t.Errorf("after failed creates the functions are %v, want only exists", names(list.Functions))
	}
	// Nothing escaped the data dir: no "evil" anywhere under its parent.
	filepath.WalkDir(filepath.Dir(s.cfg.DataDir), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == "evil" {
			t.Errorf("zip entry written outside the code directory: %s", p)
		}
		return nil
	})
	// The unpacked-code cache holds only the one function's code.
	if entries, err := os.ReadDir(filepath.Join(s.cfg.DataDir, "code")); err != nil || len(entries) != 1 {
		t.Errorf("code cache after failed creates: %v %v; want exactly one directory", dirNames(entries), err)
	}

	// Bad updates of an existing function change nothing.
	_, err = s.client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("exists"), MemorySize: aws.Int32(100)})
	wantAPIError(t, "update memory 100", err, "InvalidParameterValueException", 400, "memorySize")
	_, err = s.client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("exists"), Timeout: aws.Int32(0)})
	wantAPIError(t, "update timeout 0", err, "InvalidParameterValueException", 400, "timeout")
	_, err = s.client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String("exists"), Environment: &types.Environment{Variables: map[string]string{"AWS_LAMBDA_RUNTIME_API": "x"}},
	})
	wantAPIError(t, "update reserved env", err, "InvalidParameterValueException", 400, "AWS_LAMBDA_RUNTIME_API")
	_, err = s.client.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("exists"), ZipFile: []byte("junk")})
	wantAPIError(t, "update code with junk", err, "InvalidParameterValueException", 400, "unzip")
	_, err = s.client.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{
		FunctionName: aws.String("exists"), ZipFile: rawZip(zipEntry{"../evil", "x", 0o644}),
	})
	wantAPIError(t, "update code with zip slip", err, "InvalidParameterValueException", 400, "../evil")
	_, err = s.client.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{
		FunctionName: aws.String("exists"), ZipFile: withFile(t, tinyZip, "other", "x"), RevisionId: aws.String("not-the-revision"),
	})
	wantAPIError(t, "update code with a wrong RevisionId", err, "PreconditionFailedException", 412, "Revision")
	cfg, err := s.client.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("exists")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(cfg.RevisionId) != aws.ToString(exists.RevisionId) || aws.ToString(cfg.CodeSha256) != sha256Base64(code) || aws.ToInt32(cfg.MemorySize) != 128 {
		t.Errorf("failed updates changed the function: rev %s sha %s memory %d", aws.ToString(cfg.RevisionId), aws.ToString(cfg.CodeSha256), aws.ToInt32(cfg.MemorySize))
	}

	// Invoke payloads: not JSON, and one byte over 6 MB.
	_, err = s.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("exists"), Payload: []byte("not json")})
	wantAPIError(t, "invoke with a non-JSON payload", err, "InvalidRequestContentException", 400, "json")
	big := bytes.Repeat([]byte(" "), 6291456+1)
	big[0], big[1] = '{', '}'
	_, err = s.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("exists"), Payload: big})
	wantAPIError(t, "invoke with 6 MB + 1 byte", err, "RequestTooLargeException", 413)
	var ae smithy.APIError
	if errors.As(err, &ae) {
		if want := "6291457 byte payload is too large for the RequestResponse invocation type (limit 6291456 bytes)"; ae.ErrorMessage() != want {
			t.Errorf("413 message %q, want %q", ae.ErrorMessage(), want)
		}
	}
	// Exactly 6 MB is allowed.
	if out := s.invoke("exists", nil, func(in *lambda.InvokeInput) { in.Payload = big[:6291456] }); out.FunctionError != nil {
		t.Errorf("6 MB payload: function error %s: %s", aws.ToString(out.FunctionError), out.Payload)
	}

	// The daemon keeps serving after all of that.
	if r := s.call("exists", map[string]any{}); r.FunctionArn != testArnBase+"exists" {
		t.Errorf("after the errors: %+v", r)
	}
	if _, err := s.client.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("exists")}); err != nil {
		t.Errorf("after the errors: %v", err)
	}
}

func names(fns []types.FunctionConfiguration) []string {
	var out []string
	for _, f := range fns {
		out = append(out, aws.ToString(f.FunctionName))
	}
	return out
}

func dirNames(entries []os.DirEntry) []string {
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// TestAPIErrorShape checks the wire format of errors with a plain HTTP client:
// x-amzn-ErrorType names the code, the body carries Type and message (Message
// for ResourceNotFoundException, as Lambda spells it).
func TestAPIErrorShape(t *testing.T) {
	s := startServer(t)
	type shape struct {
		status  int
		errType string
		body    map[string]string
	}
	do := func(method, path, body string) shape {
		t.Helper()
		req, err := http.NewRequest(method, s.url+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := signingClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var sh shape
		sh.status, sh.errType = resp.StatusCode, resp.Header.Get("x-amzn-ErrorType")
		raw, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(raw, &sh.body); err != nil {
			t.Errorf("%s %s: error body %q is not a JSON object of strings: %v", method, path, raw, err)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("%s %s: Content-Type %q", method, path, ct)
		}
		return sh
	}

	nf := do("GET", "/2015-03-31/functions/ghost", "")
	if nf.status != 404 || nf.errType != "ResourceNotFoundException" || nf.body["Type"] != "User" ||
		nf.body["Message"] != "Function not found: "+testArnBase+"ghost" {
		t.Errorf("not found: %+v", nf)
	}

	create, _ := json.Marshal(map[string]any{
		"FunctionName": "norole", "Runtime": "provided.al2023", "Handler": "bootstrap",
		"Code": map[string]any{"ZipFile": functionZip(t)},
	})
	bad := do("POST", "/2015-03-31/functions", string(create))
	if bad.status != 400 || bad.errType != "InvalidParameterValueException" || bad.body["Type"] != "User" ||
		!strings.Contains(bad.body["message"], "role") {
		t.Errorf("missing role: %+v", bad)
	}
	if nf := do("GET", "/2015-03-31/functions/norole", ""); nf.status != 404 {
		t.Errorf("function created without a role: %+v", nf)
	}

	junk := do("POST", "/2015-03-31/functions", "{not json")
	if junk.status != 400 || junk.errType != "InvalidRequestContentException" || junk.body["Type"] != "User" || junk.body["message"] == "" {
		t.Errorf("non-JSON body: %+v", junk)
	}
}
