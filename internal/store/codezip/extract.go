package codezip

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Extract unpacks a code zip into dir, which must not exist yet; its parent
// must. The tree appears atomically: it is built in a sibling temp directory
// and renamed into place, so a reader sees either nothing or all of it. Code
// directories are named by content, so if dir already exists (an earlier or
// concurrent extraction) Extract does nothing and returns nil. On error
// nothing is left behind. Extract applies the same checks as Inspect and
// counts decompressed bytes as it writes, so it is safe on unchecked input.
//
// Leftover temp directories (".<base>.tmp-*") can only come from a crash and
// may be removed by whoever owns the parent.
func Extract(data []byte, dir string) error { return extract(data, dir, defaultLimits) }

func extract(data []byte, dir string, lim limits) (err error) {
	if fi, err := os.Lstat(dir); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("extract code to %s: exists and is not a directory", dir)
		}
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	p, err := scan(data, lim)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, os.RemoveAll(tmp))
		}
	}()
	if err := p.write(tmp); err != nil {
		return err
	}
	// MkdirTemp made it 0700; the sandbox's user must be able to read it.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		if fi, serr := os.Lstat(dir); serr == nil && fi.IsDir() {
			return os.RemoveAll(tmp) // lost the race to an identical tree
		}
		return err
	}
	return nil
}

// write creates the planned tree under dir. Every operation goes through an
// os.Root, so even if validation missed something, the kernel refuses to
// leave dir. Symlinks come last so no file is ever written through one, and
// O_EXCL refuses to reuse anything already there.
func (p *plan) write(dir string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	for _, n := range p.dirs {
		if err := root.Mkdir(n.path, 0o755); err != nil {
			return err
		}
		// Explicit modes make the tree independent of the daemon's umask.
		if err := root.Chmod(n.path, 0o755); err != nil {
			return err
		}
	}
	for _, n := range p.files {
		if err := p.writeFile(root, n); err != nil {
			return err
		}
	}
	for _, n := range p.links {
		if err := root.Symlink(n.target, n.path); err != nil {
			return err
		}
	}
	return nil
}

func (p *plan) writeFile(root *os.Root, n *node) error {
	f, err := root.OpenFile(n.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, n.mode)
	if err != nil {
		return err
	}
	err = f.Chmod(n.mode)
	if err == nil {
		err = p.copyOut(f, n.f)
	}
	return errors.Join(err, f.Close())
}
