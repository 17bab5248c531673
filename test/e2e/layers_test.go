package e2e

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"

	"icebox/runtimes"
)

// Layers in real sandboxes: functions import what layers put under /opt,
// where each runtime looks on Lambda, in order (later layers win), a
// custom runtime starts from a layer's bootstrap, /opt is read-only, and a
// deleted layer version keeps working for the functions using it.

func (s *server) publishLayer(name string, zip []byte) string {
	s.t.Helper()
	out, err := s.client.PublishLayerVersion(context.Background(), &lambda.PublishLayerVersionInput{LayerName: aws.String(name),
		Content: &types.LayerVersionContentInput{ZipFile: zip}})
	if err != nil {
		s.t.Fatalf("publish layer %s: %v", name, err)
	}
	return aws.ToString(out.LayerVersionArn)
}

func (s *server) setLayers(name string, arns ...string) {
	s.t.Helper()
	if _, err := s.client.UpdateFunctionConfiguration(context.Background(), &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String(name), Layers: arns}); err != nil {
		s.t.Fatalf("layers of %s: %v", name, err)
	}
}

const layersPy = `import os, subprocess, greet, sitepkg

def handler(event, context):
    try:
        with open("/opt/python/written", "w") as f:
            f.write("x")
        wrote = "yes"
    except OSError as e:
        wrote = os.strerror(e.errno)
    tool = subprocess.run(["layer-tool"], capture_output=True).stdout.decode().strip()
    return {"greet": greet.hello(), "site": sitepkg.NAME, "wrote": wrote, "opt": sorted(os.listdir("/opt/python")),
            "tool": tool, "libPath": os.environ["LD_LIBRARY_PATH"]}
`

type layersPyResult struct {
	Greet, Site, Wrote, Tool, LibPath string
	Opt                               []string
}

func TestLayersPython(t *testing.T) {
	t.Parallel()
	needPython(t)
	s := startServer(t)
	a := s.publishLayer("py-a", zipOf(map[string][]byte{
		"python/greet.py": []byte("def hello():\n    return 'a'\n"),
		"python/lib/python3.11/site-packages/sitepkg/__init__.py": []byte("NAME = 'site-packages of a'\n"),
		"python/only_a.py": []byte(""),
	}))
	b := s.publishLayer("py-b", zipOf(map[string][]byte{"python/greet.py": []byte("def hello():\n    return 'b'\n")}))
	tools := s.publishLayer("tools", executableZip(t, "bin/layer-tool", "#!/bin/sh\necho from /opt/bin\n"))
	s.create("py", func(in *lambda.CreateFunctionInput) {
		in.Runtime, in.Handler = types.RuntimePython311, aws.String("app.handler")
		in.Code.ZipFile = zipOf(map[string][]byte{"app.py": []byte(layersPy)})
		in.Layers = []string{a, b, tools}
	})
	var r layersPyResult
	s.pyCall("py", map[string]any{}, &r)
	if r.Greet != "b" || r.Site != "site-packages of a" || !strings.Contains(r.Wrote, "Read-only") || strings.Join(r.Opt, ",") != "greet.py,lib,only_a.py" ||
		r.Tool != "from /opt/bin" || !strings.HasSuffix(r.LibPath, ":/opt/lib") {
		t.Errorf("layers a, b, tools: %+v", r)
	}
	// In the other order a wins: an environment of the old order would
	// have kept b's module.
	s.setLayers("py", b, a, tools)
	var r2 layersPyResult
	s.pyCall("py", map[string]any{}, &r2)
	if r2.Greet != "a" {
		t.Errorf("layers b, a: %+v", r2)
	}
	if out := s.invoke("py", map[string]any{}); !strings.Contains(string(out.Payload), `"greet": "a"`) {
		t.Errorf("warm call: %s", out.Payload)
	}
}

func TestLayersNodeAndCustomRuntime(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()

	// A custom runtime whose bootstrap is the layer's: the function's zip
	// has none. The layer version is deleted; the function keeps running
	// it, in new environments too.
	boot := s.publishLayer("runtime", functionZip(t))
	s.create("custom", func(in *lambda.CreateFunctionInput) {
		in.Code.ZipFile = zipOf(map[string][]byte{"README": []byte("the bootstrap is in a layer")})
		in.Layers = []string{boot}
	})
	if r := s.call("custom", map[string]any{}); r.Calls != 1 {
		t.Errorf("custom runtime from a layer: %+v", r)
	}
	if _, err := s.client.DeleteLayerVersion(ctx, &lambda.DeleteLayerVersionInput{LayerName: aws.String("runtime"), VersionNumber: aws.Int64(1)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("custom"),
		Environment: &types.Environment{Variables: map[string]string{"AFTER": "delete"}}}); err != nil {
		t.Fatal(err)
	}
	if r := s.call("custom", map[string]any{}); r.Calls != 1 {
		t.Errorf("after the layer version's delete, in a new environment: %+v", r)
	}
	// Neither can its name come back as version 1.
	if again := s.publishLayer("runtime", functionZip(t)); !strings.HasSuffix(again, ":layer:runtime:2") {
		t.Errorf("republished as %s", again)
	}

	// Hostile layer zips are refused before anything is stored.
	for what, z := range map[string][]byte{
		"zip slip":         zipOf(map[string][]byte{"../../evil": []byte("x")}),
		"escaping symlink": symlinkZip(t, "nodejs/up", "../../.."),
	} {
		_, err := s.client.PublishLayerVersion(ctx, &lambda.PublishLayerVersionInput{LayerName: aws.String("hostile"), Content: &types.LayerVersionContentInput{ZipFile: z}})
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != "InvalidParameterValueException" {
			t.Errorf("%s: %v", what, err)
		}
	}
	if vs, _ := s.client.ListLayerVersions(ctx, &lambda.ListLayerVersionsInput{LayerName: aws.String("hostile")}); len(vs.LayerVersions) != 0 {
		t.Errorf("hostile layers stored: %+v", vs.LayerVersions)
	}

	needNode(t)
	mods := s.publishLayer("node-mods", zipOf(map[string][]byte{
		"nodejs/node_modules/pad/index.js":        []byte("module.exports = (s) => '[' + s + ']';\n"),
		"nodejs/node20/node_modules/ver/index.js": []byte("module.exports = 'node20 modules';\n"),
	}))
	s.create("node", func(in *lambda.CreateFunctionInput) {
		in.Runtime = types.RuntimeNodejs20x
		in.Handler = aws.String("index.handler")
		in.Code.ZipFile = zipOf(map[string][]byte{"index.js": []byte(`const pad = require('pad'); const ver = require('ver');
exports.handler = async () => ({ pad: pad('x'), ver, opt: require('fs').readdirSync('/opt/nodejs') });
`)})
		in.Layers = []string{mods}
	})
	var r struct {
		Pad, Ver string
		Opt      []string
	}
	s.nodeCall("node", map[string]any{}, &r)
	if r.Pad != "[x]" || r.Ver != "node20 modules" {
		t.Errorf("node modules from a layer: %+v", r)
	}
}

// javaLayer runs javaZip's example.Hello with its lib/greeting.jar moved
// into a layer's java/lib: only /opt/java/lib on the class path finds it.
func (s *server) javaLayer() {
	s.t.Helper()
	whole := javaZip(s.t, runtimes.JavaAPIJar(filepath.Join(s.cfg.DataDir, "runtime")))
	zr, err := zip.NewReader(bytes.NewReader(whole), int64(len(whole)))
	if err != nil {
		s.t.Fatal(err)
	}
	code, lib := map[string][]byte{}, map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			s.t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		if rest, ok := strings.CutPrefix(f.Name, "lib/"); ok {
			lib["java/lib/"+rest] = b
		} else {
			code[f.Name] = b
		}
	}
	if len(lib) == 0 {
		s.t.Fatal("javaZip has no lib/ to move")
	}
	layer := s.publishLayer("java-lib", zipOf(lib))
	s.createJava("jlayer", "example.Hello::handleRequest", func(in *lambda.CreateFunctionInput) {
		in.Code.ZipFile = zipOf(code)
		in.Layers = []string{layer}
	})
	var r map[string]any
	if err := json.Unmarshal([]byte(s.javaCall("jlayer", `{"name":"layer"}`)), &r); err != nil || r["greeting"] != "Hello, layer!" {
		s.t.Errorf("greeting from a layer's jar: %v %v", r, err)
	}
}

// executableZip is a zip holding one executable file.
func executableZip(t *testing.T, name, content string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	h := &zip.FileHeader{Name: name, Method: zip.Deflate}
	h.SetMode(0o755)
	w, err := zw.CreateHeader(h)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(content))
	zw.Close()
	return b.Bytes()
}

// symlinkZip is a zip holding one symlink.
func symlinkZip(t *testing.T, name, target string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	h := &zip.FileHeader{Name: name}
	h.SetMode(fs.ModeSymlink | 0o777)
	w, err := zw.CreateHeader(h)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(target))
	zw.Close()
	return b.Bytes()
}

// TestLayerPermissionsCLI: the AWS CLI publishes a layer and adds, reads
// and removes its permissions.
func TestLayerPermissionsCLI(t *testing.T) {
	s := startServer(t)
	cli := newAWSCLI(t, s)
	zipPath := filepath.Join(t.TempDir(), "layer.zip")
	if err := os.WriteFile(zipPath, zipOf(map[string][]byte{"bin/tool": []byte("#!/bin/sh\n")}), 0o644); err != nil {
		t.Fatal(err)
	}
	var pub struct {
		LayerVersionArn string
		Version         int64
	}
	cli.json(&pub, "lambda", "publish-layer-version", "--layer-name", "cli-layer", "--zip-file", "fileb://"+zipPath,
		"--compatible-runtimes", "python3.11", "provided.al2023", "--license-info", "MIT")
	if pub.Version != 1 || pub.LayerVersionArn != "arn:aws:lambda:us-east-1:000000000000:layer:cli-layer:1" {
		t.Fatalf("publish: %+v", pub)
	}
	var add struct{ Statement, RevisionId string }
	cli.json(&add, "lambda", "add-layer-version-permission", "--layer-name", "cli-layer", "--version-number", "1",
		"--statement-id", "xaccount", "--action", "lambda:GetLayerVersion", "--principal", "123456789012")
	var st map[string]any
	if err := json.Unmarshal([]byte(add.Statement), &st); err != nil || st["Sid"] != "xaccount" || add.RevisionId == "" {
		t.Errorf("add: %+v %v", add, err)
	}
	var pol struct{ Policy, RevisionId string }
	cli.json(&pol, "lambda", "get-layer-version-policy", "--layer-name", "cli-layer", "--version-number", "1")
	if !strings.Contains(pol.Policy, `"arn:aws:iam::123456789012:root"`) || pol.RevisionId != add.RevisionId {
		t.Errorf("policy: %+v", pol)
	}
	cli.json(nil, "lambda", "remove-layer-version-permission", "--layer-name", "cli-layer", "--version-number", "1", "--statement-id", "xaccount")
	if _, errOut, code := cli.run("lambda", "get-layer-version-policy", "--layer-name", "cli-layer", "--version-number", "1"); code == 0 || !strings.Contains(errOut, "ResourceNotFoundException") {
		t.Errorf("policy after the removal: exit %d %s", code, errOut)
	}
	var list struct {
		Layers []struct {
			LayerName             string
			LatestMatchingVersion struct{ Version int64 }
		}
	}
	cli.json(&list, "lambda", "list-layers", "--compatible-runtime", "python3.11")
	if len(list.Layers) != 1 || list.Layers[0].LayerName != "cli-layer" || list.Layers[0].LatestMatchingVersion.Version != 1 {
		t.Errorf("list-layers: %+v", list)
	}
}
