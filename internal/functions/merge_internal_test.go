package functions

import (
	"os"
	"path/filepath"
	"testing"
)

// tree makes files ("name": content), directories ("name/": "") and
// symlinks ("name@": target) under a new directory.
func tree(t *testing.T, entries map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, v := range entries {
		p := filepath.Join(root, name)
		switch {
		case name[len(name)-1] == '/':
			err := os.MkdirAll(p, 0o755)
			check(t, err)
		case name[len(name)-1] == '@':
			check(t, os.MkdirAll(filepath.Dir(p), 0o755))
			check(t, os.Symlink(v, p[:len(p)-1]))
		default:
			check(t, os.MkdirAll(filepath.Dir(p), 0o755))
			check(t, os.WriteFile(p, []byte(v), 0o644))
		}
	}
	return root
}

func check(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestMergeTrees: later layers win on equal paths, whole (a file over a
// directory, a directory over a file), directories present in several
// merge, files are hard links, and nothing is written through a layer's
// symlink, even one pointing out of the tree where an earlier layer has a
// directory of files.
func TestMergeTrees(t *testing.T) {
	outside := t.TempDir()
	first := tree(t, map[string]string{
		"python/a.py": "1", "python/only1.py": "1", "d/inner": "1", "f": "1", "via/x": "1", "link@": "python/a.py",
	})
	second := tree(t, map[string]string{
		"python/a.py": "2", "d": "2", "f/inner": "2", "via@": outside,
	})
	dst := filepath.Join(t.TempDir(), "merged")
	if err := mergeTrees([]string{first, second}, dst); err != nil {
		t.Fatal(err)
	}
	read := func(rel string) string {
		b, err := os.ReadFile(filepath.Join(dst, rel))
		if err != nil {
			return "error: " + err.Error()
		}
		return string(b)
	}
	for rel, want := range map[string]string{"python/a.py": "2", "python/only1.py": "1", "d": "2", "f/inner": "2", "link": "2"} {
		if got := read(rel); got != want {
			t.Errorf("%s: %q, want %q", rel, got, want)
		}
	}
	if target, err := os.Readlink(filepath.Join(dst, "via")); err != nil || target != outside {
		t.Errorf("via: %q %v, want the later layer's symlink", target, err)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("merge wrote through a symlink: %v", ents)
	}
	a, _ := os.Stat(filepath.Join(dst, "python/only1.py"))
	b, _ := os.Stat(filepath.Join(first, "python/only1.py"))
	if a == nil || b == nil || !os.SameFile(a, b) {
		t.Error("files are copied, not linked")
	}
	if fi, err := os.Stat(dst); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("merged root: %v %v", fi, err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(dst)); len(ents) != 1 {
		t.Errorf("left behind: %v", ents)
	}
}
