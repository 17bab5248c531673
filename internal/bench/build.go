package bench

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Packages of the bench's functions, relative to the icebox module root.
const (
	EchoPackage      = "./test/e2e/testdata/echo"
	SleepPackage     = "./internal/bench/testdata/sleep"
	ExtensionPackage = "./internal/bench/testdata/noopext"
)

// ModuleRoot finds the icebox source tree containing dir (or one of its
// parents), where the bench's functions are built from.
func ModuleRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(string(b), "module icebox\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the icebox source tree (pass the function's zip instead)")
		}
		dir = parent
	}
}

// BuildIcebox builds the icebox command of the module at root into a new
// temporary directory and returns the binary's path; the caller removes
// the directory.
func BuildIcebox(root string) (string, error) {
	dir, err := os.MkdirTemp("", "icebox-bench-daemon-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "icebox")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/icebox")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build ./cmd/icebox: %w\n%s", err, out)
	}
	return bin, nil
}

// BuildZips builds the aws-lambda-go programs pkgs of the module at root
// (in one go build) as static, stripped binaries and returns each zipped as
// a provided.al2023 bootstrap, in the order given. Stripping halves what
// every CreateFunction carries.
func BuildZips(root string, pkgs ...string) ([][]byte, error) {
	dir, err := os.MkdirTemp("", "icebox-bench-build-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	// go build -o DIR/ names each binary after its package's directory.
	names := map[string]bool{}
	for _, p := range pkgs {
		if names[filepath.Base(p)] {
			return nil, fmt.Errorf("build: two packages named %s", filepath.Base(p))
		}
		names[filepath.Base(p)] = true
	}
	cmd := exec.Command("go", append([]string{"build", "-ldflags=-s -w", "-o", dir + string(filepath.Separator)}, pkgs...)...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build %s: %w\n%s", strings.Join(pkgs, " "), err, out)
	}
	zips := make([][]byte, len(pkgs))
	for i, p := range pkgs {
		code, err := os.ReadFile(filepath.Join(dir, filepath.Base(p)))
		if err != nil {
			return nil, err
		}
		if zips[i], err = zipBootstrap(code); err != nil {
			return nil, err
		}
	}
	return zips, nil
}

func zipBootstrap(code []byte) ([]byte, error) { return zipExecutable("bootstrap", code) }

// ExtensionLayer turns a zip of BuildZips (a built ExtensionPackage) into
// a layer holding it as an external extension, extensions/noop-extension.
func ExtensionLayer(bootstrapZip []byte) ([]byte, error) {
	zr, err := zip.NewReader(bytes.NewReader(bootstrapZip), int64(len(bootstrapZip)))
	if err != nil {
		return nil, err
	}
	f, err := zr.Open("bootstrap")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	code, err := io.ReadAll(f)
	if err != nil {
		return nil, err
	}
	return zipExecutable("extensions/noop-extension", code)
}

// zipExecutable zips code as the one executable file name.
func zipExecutable(name string, code []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	h := &zip.FileHeader{Name: name, Method: zip.Deflate}
	h.SetMode(0o755)
	w, err := zw.CreateHeader(h)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(code); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
