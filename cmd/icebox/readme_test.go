package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"icebox/internal/auth/authtest"
)

// TestReadmeQuickStart runs the README's quick start as written: every
// ```sh block under "## Quick start", in order, by bash -e, against a
// started `icebox serve`. Only two things are put in: the server's URL
// for http://127.0.0.1:9070 (it listens on a port the kernel picked), and
// the test's root credentials for the line that exports the ones `icebox
// serve` prints. The examples/ directory is copied, so the builds leave the
// tree clean. Each example must answer its hello.
func TestReadmeQuickStart(t *testing.T) {
	requireRoot(t)
	for _, tool := range []string{"aws", "zip", "bash", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the quick start needs %s: %v", tool, err)
		}
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	script := quickStart(t, string(readme))
	binaries(t)
	s := startServer(t, how{}, "serve", "--data-dir", t.TempDir())

	dir := t.TempDir()
	if out, err := exec.Command("cp", "-r", "../../examples", dir).CombinedOutput(); err != nil {
		t.Fatalf("copy examples: %v %s", err, out)
	}
	var lines []string
	for _, line := range strings.Split(script, "\n") {
		if strings.HasPrefix(line, "export AWS_ACCESS_KEY_ID=") {
			continue // the placeholders for what serve prints; the environment has them
		}
		lines = append(lines, strings.ReplaceAll(line, "http://127.0.0.1:9070", s.url))
	}
	cmd := exec.Command("bash", "-e", "-o", "pipefail", "-c", strings.Join(lines, "\n"))
	cmd.Dir = dir
	cmd.Env = append(append(envWithoutAWS(), authtest.Env()...),
		"PATH="+filepath.Dir(build.icebox)+string(os.PathListSeparator)+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	t.Logf("the quick start's output:\n%s", out)
	if err != nil {
		t.Fatalf("the quick start failed: %v", err)
	}
	// aws lambda invoke writes each function's answer to out.json, which the
	// quick start prints.
	if n := regexp.MustCompile(`\{"message": ?"Hello, world!"\}`).FindAll(out, -1); len(n) != 3 {
		t.Errorf("%d hello answers in the quick start's output, want 3 (Go, Python, Node.js)", len(n))
	}
	for _, fn := range []string{"hello-go", "hello-python", "hello-node"} {
		if !strings.Contains(string(out), fn) {
			t.Errorf("%s is not in the quick start's output", fn)
		}
	}
	if !strings.Contains(string(out), "saying hello to world") {
		t.Error("no function's own log line in the quick start's output")
	}
}

// quickStart is the shell blocks of the README's "## Quick start" section,
// joined.
func quickStart(t *testing.T, readme string) string {
	t.Helper()
	_, section, ok := strings.Cut(readme, "\n## Quick start\n")
	if !ok {
		t.Fatal(`README.md has no "## Quick start" section`)
	}
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	var blocks []string
	for _, m := range regexp.MustCompile("(?s)\n```sh\n(.*?)\n```").FindAllStringSubmatch(section, -1) {
		blocks = append(blocks, m[1])
	}
	script := strings.Join(blocks, "\n")
	for _, want := range []string{"examples/hello-go", "examples/hello-python", "examples/hello-node", "CGO_ENABLED=0 go build -o bootstrap", "AWS_ENDPOINT_URL="} {
		if !strings.Contains(script, want) {
			t.Fatalf("the quick start's shell blocks do not mention %q:\n%s", want, script)
		}
	}
	return script
}
