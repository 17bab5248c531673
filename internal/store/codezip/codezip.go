// Package codezip inspects and extracts Lambda function code zips. Archives
// come from users, so every name, symlink and byte count is treated as
// hostile: a zip that passes Inspect or Extract cannot place anything outside
// its code directory, cannot hold a symlink that resolves outside it, and
// cannot decompress to more than Lambda's unzipped limit.
package codezip

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"icebox/internal/errdefs"
	"icebox/internal/model"
)

// Info describes a valid code zip.
type Info struct {
	Sha256       []byte // raw SHA-256 of the zip bytes
	Sha256Base64 string // the same, as Lambda reports CodeSha256
	Size         int64  // zip size in bytes
	UnzippedSize int64  // bytes actually decompressed from files and symlinks
	Files        int    // regular files and symlinks, directories not counted
}

// limits are passed explicitly so tests can exercise each one without
// building archives hundreds of megabytes large.
type limits struct {
	zip      int64
	unzipped int64
	entries  int // entries plus the directories they imply
}

var defaultLimits = limits{zip: model.MaxZipBytes, unzipped: model.MaxUnzippedBytes, entries: 100_000}

const (
	maxPath       = 4095 // PATH_MAX less the NUL
	maxComponent  = 255  // NAME_MAX
	maxLinkTarget = 1024 // keeps symlink resolution cheap; real targets are short
	maxLinkDepth  = 40   // the kernel's ELOOP limit
)

// errUnzip carries Lambda's wording for input that is not a readable zip.
var errUnzip = fmt.Errorf("Could not unzip uploaded file. Please check your file, then try to upload again.: %w", errdefs.ErrInvalid)

func badEntry(name, format string, args ...any) error {
	return fmt.Errorf("zip entry %q: %s: %w", name, fmt.Sprintf(format, args...), errdefs.ErrInvalidZip)
}

// Inspect validates a code zip, decompressing every entry, and describes it.
func Inspect(data []byte) (Info, error) { return inspect(data, defaultLimits) }

func inspect(data []byte, lim limits) (Info, error) {
	p, err := scan(data, lim)
	if err != nil {
		return Info{}, err
	}
	for _, n := range p.files {
		if err := p.copyOut(io.Discard, n.f); err != nil {
			return Info{}, err
		}
	}
	sum := sha256.Sum256(data)
	return Info{
		Sha256:       sum[:],
		Sha256Base64: base64.StdEncoding.EncodeToString(sum[:]),
		Size:         int64(len(data)),
		UnzippedSize: lim.unzipped - p.left,
		Files:        len(p.files) + len(p.links),
	}, nil
}

type kind uint8

const (
	kindImplicitDir kind = iota // a parent no entry names
	kindDir
	kindFile
	kindLink
)

// node is one path of the archive's tree. Validation happens on this tree
// rather than on name strings so that a path can be resolved the way the
// kernel will resolve it once extracted.
type node struct {
	parent   *node
	children map[string]*node // directories only
	kind     kind
	path     string // slash-separated, relative to the root
	f        *zip.File
	mode     fs.FileMode // regular files only
	target   string      // symlinks only

	// Symlink resolution memo: where the link lands, as an existing node plus
	// a count of components below it that exist nowhere in the archive.
	state    uint8 // 0 unresolved, 1 resolving, 2 resolved
	resAt    *node
	resExtra int
}

func (n *node) isDir() bool { return n.kind == kindImplicitDir || n.kind == kindDir }

// plan is a validated archive: what to create, parents before children.
type plan struct {
	root  *node
	dirs  []*node
	files []*node
	links []*node
	nodes int
	lim   limits
	left  int64 // decompression budget still available
}

// scan checks everything that can be checked without decompressing file
// contents: sizes, entry count, names, duplicates, and symlink targets.
func scan(data []byte, lim limits) (*plan, error) {
	if int64(len(data)) > lim.zip {
		return nil, fmt.Errorf("zip file is %d bytes, over the %d-byte limit: %w", len(data), lim.zip, errdefs.ErrInvalid)
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	// ErrInsecurePath comes with a usable reader; our own checks are stricter.
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return nil, errUnzip
	}
	if len(zr.File) > lim.entries {
		return nil, fmt.Errorf("zip has %d entries, more than %d: %w", len(zr.File), lim.entries, errdefs.ErrInvalidZip)
	}
	p := &plan{root: &node{kind: kindDir, children: map[string]*node{}}, lim: lim, left: lim.unzipped}
	for _, f := range zr.File {
		if err := p.add(f); err != nil {
			return nil, err
		}
	}
	if len(p.files)+len(p.links) == 0 {
		return nil, fmt.Errorf("Uploaded file must be a non-empty zip: %w", errdefs.ErrInvalid)
	}
	for _, n := range p.links {
		if err := p.readTarget(n); err != nil {
			return nil, err
		}
	}
	for _, n := range p.links {
		if _, _, err := p.resolve(n, 0); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func splitName(name string) ([]string, error) {
	switch {
	case name == "":
		return nil, badEntry(name, "empty name")
	case strings.IndexByte(name, 0) >= 0:
		return nil, badEntry(name, "NUL byte in name")
	case strings.IndexByte(name, '\\') >= 0:
		// Windows tools read it as a separator, so `..\x` would be a slip there.
		return nil, badEntry(name, "backslash in name")
	case name[0] == '/':
		return nil, badEntry(name, "absolute path")
	case len(name) > maxPath:
		return nil, badEntry(name, "name longer than %d bytes", maxPath)
	}
	var comps []string
	for c := range strings.SplitSeq(name, "/") {
		switch {
		case c == "" || c == ".":
		case c == "..":
			return nil, badEntry(name, "path has a .. component")
		case len(c) > maxComponent:
			return nil, badEntry(name, "name component longer than %d bytes", maxComponent)
		default:
			comps = append(comps, c)
		}
	}
	return comps, nil
}

func (p *plan) newNode(parent *node, name string, k kind) (*node, error) {
	// Implied directories count too, or deep unique paths would grow the tree
	// far beyond the entry cap.
	if p.nodes++; p.nodes > p.lim.entries {
		return nil, fmt.Errorf("zip has more than %d entries and directories: %w", p.lim.entries, errdefs.ErrInvalidZip)
	}
	n := &node{parent: parent, kind: k, path: name}
	if parent != p.root {
		n.path = parent.path + "/" + name
	}
	if n.isDir() {
		n.children = map[string]*node{}
		p.dirs = append(p.dirs, n)
	}
	parent.children[name] = n
	return n, nil
}

func (p *plan) add(f *zip.File) error {
	comps, err := splitName(f.Name)
	if err != nil {
		return err
	}
	var k kind
	switch mode := f.Mode(); mode.Type() {
	case fs.ModeDir:
		k = kindDir
	case fs.ModeSymlink:
		k = kindLink
	case 0:
		k = kindFile
	default:
		return badEntry(f.Name, "unsupported file type %v", mode.Type())
	}
	if len(comps) == 0 {
		if k == kindDir {
			return nil // "./" names the root itself
		}
		return badEntry(f.Name, "names the root directory")
	}
	at := p.root
	for _, c := range comps[:len(comps)-1] {
		next := at.children[c]
		if next == nil {
			if next, err = p.newNode(at, c, kindImplicitDir); err != nil {
				return err
			}
		} else if !next.isDir() {
			// Covers writing through a symlink as well as through a file.
			return badEntry(f.Name, "parent %q is not a directory", next.path)
		}
		at = next
	}
	last := comps[len(comps)-1]
	if old := at.children[last]; old != nil {
		if old.kind == kindImplicitDir && k == kindDir {
			old.kind = kindDir
			return nil
		}
		return badEntry(f.Name, "duplicate entry")
	}
	n, err := p.newNode(at, last, k)
	if err != nil {
		return err
	}
	n.f = f
	switch k {
	case kindFile:
		n.mode = 0o644
		// Zips from Windows carry no unix mode, and Lambda users expect a
		// root bootstrap to run regardless.
		if f.Mode()&0o111 != 0 || n.path == "bootstrap" {
			n.mode = 0o755
		}
		p.files = append(p.files, n)
	case kindLink:
		p.links = append(p.links, n)
	}
	return nil
}

func (p *plan) readTarget(n *node) error {
	rc, err := n.f.Open()
	if err != nil {
		return errUnzip
	}
	defer rc.Close()
	// Reading to EOF makes the zip reader verify the CRC.
	b, err := io.ReadAll(io.LimitReader(rc, maxLinkTarget+1))
	if err != nil {
		return errUnzip
	}
	if p.left -= int64(len(b)); p.left < 0 {
		return p.errUnzipped()
	}
	switch t := string(b); {
	case len(b) > maxLinkTarget:
		return badEntry(n.path, "symlink target longer than %d bytes", maxLinkTarget)
	case t == "":
		return badEntry(n.path, "empty symlink target")
	case strings.IndexByte(t, 0) >= 0:
		return badEntry(n.path, "NUL byte in symlink target")
	case t[0] == '/':
		return badEntry(n.path, "absolute symlink target %q", t)
	default:
		n.target = t
	}
	return nil
}

// resolve follows link n as the kernel would inside the extracted tree,
// following other links of the archive and applying ".." to the directory a
// link really lands in, which a lexical check of each target alone would miss
// (a/b/up -> ../.. then x -> a/b/up/../y). Components that exist nowhere in
// the archive are followed lexically: the kernel would stop there with
// ENOENT, but a target that would escape if they existed is rejected anyway.
func (p *plan) resolve(n *node, depth int) (*node, int, error) {
	switch {
	case n.state == 2:
		return n.resAt, n.resExtra, nil
	case n.state == 1:
		return nil, 0, badEntry(n.path, "symlink loop")
	case depth > maxLinkDepth:
		return nil, 0, badEntry(n.path, "more than %d levels of symlinks", maxLinkDepth)
	}
	n.state = 1
	at, extra := n.parent, 0
	for c := range strings.SplitSeq(n.target, "/") {
		switch {
		case c == "" || c == ".":
		case c == "..":
			if extra > 0 {
				extra--
			} else if at == p.root {
				return nil, 0, badEntry(n.path, "symlink target %q escapes the code directory", n.target)
			} else {
				at = at.parent
			}
		case extra > 0 || !at.isDir() || at.children[c] == nil:
			extra++
		case at.children[c].kind == kindLink:
			var err error
			if at, extra, err = p.resolve(at.children[c], depth+1); err != nil {
				return nil, 0, err
			}
		default:
			at = at.children[c]
		}
	}
	n.state, n.resAt, n.resExtra = 2, at, extra
	return at, extra, nil
}

func (p *plan) errUnzipped() error {
	return fmt.Errorf("Unzipped size must be smaller than %d bytes: %w", p.lim.unzipped, errdefs.ErrInvalid)
}

// copyOut decompresses f into w, charging every byte actually produced to the
// budget before it is written; sizes in the zip headers are never trusted.
func (p *plan) copyOut(w io.Writer, f *zip.File) error {
	rc, err := f.Open()
	if err != nil {
		return errUnzip
	}
	defer rc.Close()
	buf := make([]byte, 32<<10)
	for {
		n, rerr := rc.Read(buf)
		if n > 0 {
			if p.left -= int64(n); p.left < 0 {
				return p.errUnzipped()
			}
			if _, err := w.Write(buf[:n]); err != nil {
				return err // the platform's failure, not the zip's
			}
		}
		switch {
		case rerr == io.EOF:
			return nil
		case rerr != nil:
			return errUnzip
		}
	}
}
