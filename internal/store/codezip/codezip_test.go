package codezip

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"icebox/internal/errdefs"
	"icebox/internal/model"
)

// entry is one archive member; mode 0 means no unix mode at all, as zips made
// on Windows carry.
type entry struct {
	name string
	mode fs.FileMode
	body string
}

func file(name, body string) entry   { return entry{name, 0o644, body} }
func link(name, target string) entry { return entry{name, fs.ModeSymlink | 0o777, target} }

func build(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		if e.mode != 0 {
			h.SetMode(e.mode)
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// setup returns a base directory and the code dir to extract into, two
// levels below it so that escapes of one or two ".." stay observable.
func setup(t testing.TB) (base, dir string) {
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(base, "p", "q"), 0o755); err != nil {
		t.Fatal(err)
	}
	return base, filepath.Join(base, "p", "q", "out")
}

// outside lists everything under base that is not dir or inside it.
func outside(t testing.TB, base, dir string) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(base, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case path == dir:
			return filepath.SkipDir
		case path == base || path == filepath.Join(base, "p") || path == filepath.Join(base, "p", "q"):
		default:
			found = append(found, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// mustFail checks that both Inspect and Extract reject data with class and a
// message containing msg, and that the failed extraction left nothing.
func mustFail(t *testing.T, lim limits, data []byte, class error, msg string) {
	t.Helper()
	if _, err := inspect(data, lim); !errors.Is(err, class) || !strings.Contains(err.Error(), msg) {
		t.Errorf("Inspect: got %v, want %v containing %q", err, class, msg)
	}
	base, dir := setup(t)
	if err := extract(data, dir, lim); !errors.Is(err, class) || !strings.Contains(err.Error(), msg) {
		t.Errorf("Extract: got %v, want %v containing %q", err, class, msg)
	}
	if _, err := os.Lstat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Extract failed but %s exists", dir)
	}
	if left := outside(t, base, dir); len(left) > 0 {
		t.Errorf("Extract failed but left %v", left)
	}
}

func TestExtractTree(t *testing.T) {
	data := build(t,
		entry{"bin/", fs.ModeDir | 0o700, ""},
		entry{"bin/tool", 0o700, "#!/bin/sh\n"},
		entry{"private.txt", 0o600, "p"},
		entry{"suid", fs.ModeSetuid | 0o755, ""}, // special bits never survive
		entry{"bootstrap", 0, "run"},             // no unix mode, as from Windows
		entry{"sub/bootstrap", 0, "not special"},
		file("lib/a/b.txt", "hello"),
		link("lib/cur", "a/b.txt"),
		link("lib/a/up", "../../bin"),
	)
	info, err := Inspect(data)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	want := Info{Sha256: sum[:], Sha256Base64: base64.StdEncoding.EncodeToString(sum[:]),
		Size: int64(len(data)), UnzippedSize: int64(len("#!/bin/sh\n" + "p" + "run" + "not special" + "hello" + "a/b.txt" + "../../bin")), Files: 8}
	if !bytes.Equal(info.Sha256, want.Sha256) || info.Sha256Base64 != want.Sha256Base64 || info.Size != want.Size ||
		info.UnzippedSize != want.UnzippedSize || info.Files != want.Files {
		t.Errorf("Inspect = %+v, want %+v", info, want)
	}

	base, dir := setup(t)
	// A strict umask must not leak into the tree the sandbox user reads.
	defer syscall.Umask(syscall.Umask(0o077))
	if err := Extract(data, dir); err != nil {
		t.Fatal(err)
	}
	modes := map[string]fs.FileMode{
		".": fs.ModeDir | 0o755, "bin": fs.ModeDir | 0o755, "bin/tool": 0o755, "private.txt": 0o644, "suid": 0o755,
		"bootstrap": 0o755, "sub": fs.ModeDir | 0o755, "sub/bootstrap": 0o644, "lib": fs.ModeDir | 0o755,
		"lib/a": fs.ModeDir | 0o755, "lib/a/b.txt": 0o644,
	}
	for name, want := range modes {
		fi, err := os.Lstat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode(), want)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "lib/cur")); err != nil || string(b) != "hello" {
		t.Errorf("lib/cur reads %q, %v", b, err)
	}
	if target, err := os.Readlink(filepath.Join(dir, "lib/a/up")); err != nil || target != "../../bin" {
		t.Errorf("lib/a/up -> %q, %v", target, err)
	}
	if left := outside(t, base, dir); len(left) > 0 {
		t.Errorf("left behind %v", left)
	}
}

func TestRejectsHostileNames(t *testing.T) {
	for _, tc := range []struct{ name, msg string }{
		{"../evil", ".. component"},
		{"../../evil", ".. component"},
		{"a/../../x", ".. component"},
		{"a/../b", ".. component"},
		{"/abs", "absolute path"},
		{`..\..\evil`, "backslash"},
		{`a\b`, "backslash"},
		{"nul\x00/../../x", "NUL byte"},
		{strings.Repeat("a", 256), "component longer"},
	} {
		t.Run(fmt.Sprintf("%.20q", tc.name), func(t *testing.T) {
			mustFail(t, defaultLimits, build(t, file("ok.txt", "fine"), file(tc.name, "evil")), errdefs.ErrInvalidZip, tc.msg)
		})
	}
}

// TestWriteConfinedByRoot covers the last line of defence: if validation ever
// let a hostile path through, the writes still could not leave the temp dir.
func TestWriteConfinedByRoot(t *testing.T) {
	for name, mutate := range map[string]func(p *plan, dir string) error{
		"file": func(p *plan, _ string) error { p.files[0].path = "../../evil"; return nil },
		"dir":  func(p *plan, _ string) error { p.dirs[0].path = "../../evil"; return nil },
		"through a link": func(p *plan, dir string) error {
			p.files[0].path, p.links = "l/evil", nil
			return os.Symlink("../..", filepath.Join(dir, "l"))
		},
	} {
		t.Run(name, func(t *testing.T) {
			p, err := scan(build(t, file("d/a", "x"), link("l", "d")), defaultLimits)
			if err != nil {
				t.Fatal(err)
			}
			base, dir := setup(t)
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := mutate(p, dir); err != nil {
				t.Fatal(err)
			}
			if err := p.write(dir); err == nil {
				t.Error("write succeeded")
			}
			if left := outside(t, base, dir); len(left) > 0 {
				t.Errorf("wrote outside: %v", left)
			}
		})
	}
}

func TestRejectsEscapingSymlinks(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries []entry
		msg     string
	}{
		{"dotdot", []entry{link("link", "../../etc")}, "escapes"},
		{"nested dotdot", []entry{link("a/b/link", "../../../etc")}, "escapes"},
		{"absolute", []entry{link("link", "/etc")}, "absolute symlink target"},
		{"through missing dir", []entry{link("link", "nope/../../x")}, "escapes"},
		// Each target alone stays inside; together they leave the root.
		{"chained", []entry{link("a/b/up", "../.."), link("esc", "a/b/up/../x")}, "escapes"},
		{"chained reversed", []entry{link("esc", "a/b/up/../x"), link("a/b/up", "../..")}, "escapes"},
		{"loop", []entry{link("x", "y"), link("y", "x")}, "symlink loop"},
		{"file through symlink", []entry{link("link", "sub"), file("sub/keep", ""), file("link/x", "evil")}, "not a directory"},
		{"file through escaping symlink", []entry{link("link", "../.."), file("link/evil", "evil")}, "not a directory"},
		{"symlink over dir", []entry{file("link/x", "evil"), link("link", "../..")}, "duplicate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mustFail(t, defaultLimits, build(t, append([]entry{file("ok.txt", "fine")}, tc.entries...)...), errdefs.ErrInvalidZip, tc.msg)
		})
	}
}

func TestZipBomb(t *testing.T) {
	lim := defaultLimits
	lim.unzipped = 1 << 20
	zeros := strings.Repeat("\x00", 1<<20)
	for _, tc := range []struct {
		name    string
		entries []entry
	}{
		{"one entry", []entry{file("bomb", zeros+"x")}},
		{"spread over entries", []entry{file("a", zeros[:1<<19]), file("b", zeros[:1<<19]), file("c", "x")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := build(t, tc.entries...)
			if len(data) > 64<<10 {
				t.Fatalf("bomb is %d bytes; it should be tiny", len(data))
			}
			mustFail(t, lim, data, errdefs.ErrInvalid, "Unzipped size must be smaller than 1048576 bytes")
		})
	}
	// Exactly at the limit is fine.
	if _, err := inspect(build(t, file("a", zeros)), lim); err != nil {
		t.Errorf("at the limit: %v", err)
	}
}

func TestRejectsJunk(t *testing.T) {
	good := build(t, file("a.txt", strings.Repeat("some text ", 100)), file("b.txt", "more"))
	corrupt := bytes.Clone(good)
	corrupt[40] ^= 0xff // inside a.txt's compressed data
	for name, data := range map[string][]byte{
		"text":      []byte("this is not a zip file at all"),
		"nothing":   nil,
		"truncated": good[:len(good)/2],
		"corrupt":   corrupt,
	} {
		t.Run(name, func(t *testing.T) {
			mustFail(t, defaultLimits, data, errdefs.ErrInvalid, "Could not unzip uploaded file. Please check your file, then try to upload again.")
		})
	}
}

func TestRejectsEmpty(t *testing.T) {
	mustFail(t, defaultLimits, build(t), errdefs.ErrInvalid, "non-empty zip")
	mustFail(t, defaultLimits, build(t, entry{"d/", fs.ModeDir | 0o755, ""}), errdefs.ErrInvalid, "non-empty zip")
}

func TestRejectsDuplicates(t *testing.T) {
	for name, entries := range map[string][]entry{
		"same file":      {file("a.txt", "1"), file("a.txt", "2")},
		"after cleaning": {file("a.txt", "1"), file("./a.txt", "2")},
		"same dir":       {entry{"d/", fs.ModeDir | 0o755, ""}, entry{"d/", fs.ModeDir | 0o755, ""}},
		"file then dir":  {file("a", "1"), entry{"a/", fs.ModeDir | 0o755, ""}},
		"dir then file":  {file("a/b", "1"), file("a", "2")},
		"file and link":  {file("a", "1"), link("a", "b")},
		"file as parent": {file("a", "1"), file("a/b", "2")},
	} {
		t.Run(name, func(t *testing.T) {
			mustFail(t, defaultLimits, build(t, entries...), errdefs.ErrInvalidZip, "zip entry")
		})
	}
}

func TestLimits(t *testing.T) {
	lim := defaultLimits
	lim.entries = 10
	var many []entry
	for i := range 11 {
		many = append(many, file(strings.Repeat("f", i+1), ""))
	}
	mustFail(t, lim, build(t, many...), errdefs.ErrInvalidZip, "more than 10")
	// Implied directories count, or a few deep names would build a huge tree.
	mustFail(t, lim, build(t, file("a/b/c/d/e/f/g/h/i/j/k", "")), errdefs.ErrInvalidZip, "more than 10")

	data := build(t, file("a", strings.Repeat("x", 1000)))
	lim = defaultLimits
	lim.zip = int64(len(data)) - 1
	mustFail(t, lim, data, errdefs.ErrInvalid, "over the")

	if defaultLimits.zip != model.MaxZipBytes || defaultLimits.unzipped != model.MaxUnzippedBytes {
		t.Errorf("default limits %+v differ from Lambda's", defaultLimits)
	}
}

func TestExtractIntoExistingDirIsNoop(t *testing.T) {
	base, dir := setup(t)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "marker"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Extract(build(t, file("a.txt", "a")), dir); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 || ents[0].Name() != "marker" {
		t.Errorf("existing dir changed: %v", ents)
	}
	if left := outside(t, base, dir); len(left) > 0 {
		t.Errorf("left behind %v", left)
	}
}

func TestConcurrentExtract(t *testing.T) {
	base, dir := setup(t)
	data := build(t, file("a.txt", "a"), file("d/b.txt", "b"))
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { errs[i] = Extract(data, dir) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "d/b.txt")); err != nil || string(b) != "b" {
		t.Errorf("d/b.txt: %q, %v", b, err)
	}
	if left := outside(t, base, dir); len(left) > 0 {
		t.Errorf("left behind %v", left)
	}
}

func FuzzExtract(f *testing.F) {
	f.Add(build(f, entry{"bin/tool", 0o755, "x"}, file("a/b", "c"), link("a/l", "b"), link("up", "a/../bin")))
	f.Add(build(f, file("../evil", "x")))
	f.Add(build(f, file("a/../../x", "x")))
	f.Add(build(f, link("l", "../../etc"), file("l/x", "y")))
	f.Add(build(f, link("a/b/up", "../.."), link("esc", "a/b/up/../x")))
	f.Add(build(f, file("bomb", strings.Repeat("\x00", 1<<16))))
	f.Add(build(f))
	f.Add([]byte("PK\x05\x06junk"))
	// Small limits keep each run fast; the checks are the same code.
	lim := limits{zip: 1 << 20, unzipped: 1 << 20, entries: 1000}
	f.Fuzz(func(t *testing.T, data []byte) {
		base, dir := setup(t)
		_, ierr := inspect(data, lim)
		err := extract(data, dir, lim)
		if left := outside(t, base, dir); len(left) > 0 {
			t.Fatalf("wrote outside %s: %v (err %v)", dir, left, err)
		}
		if (ierr == nil) != (err == nil) {
			t.Fatalf("Inspect says %v, Extract says %v", ierr, err)
		}
		if err != nil {
			if _, serr := os.Lstat(dir); !errors.Is(serr, fs.ErrNotExist) {
				t.Fatalf("failed extraction (%v) left %s", err, dir)
			}
			return
		}
		// Every symlink kept must resolve inside dir, or not at all.
		filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.Type() != fs.ModeSymlink {
				return err
			}
			target, _ := os.Readlink(path)
			if filepath.IsAbs(target) {
				t.Fatalf("%s -> %s is absolute", path, target)
			}
			if real, err := filepath.EvalSymlinks(path); err == nil && real != dir && !strings.HasPrefix(real, dir+"/") {
				t.Fatalf("%s -> %s resolves to %s, outside %s", path, target, real, dir)
			}
			return nil
		})
	})
}
