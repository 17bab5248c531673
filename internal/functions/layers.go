package functions

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"icebox/internal/errdefs"
	"icebox/internal/model"
	"icebox/internal/policy"
	"icebox/internal/store/codezip"
)

// Layers share function code's storage: a layer version's zip is checked by
// codezip, stored once per CodeSha256 in the code store and unpacked into
// the same per-CodeSha256 cache directories. A function's /opt is the one
// layer's directory itself, or, for several, a merged tree built once per
// combination of layers (see OptDir).

var errNoLayers = fmt.Errorf("layers are not configured: %w", errdefs.ErrInvalid)

// PublishLayerVersion checks zip, stores its content (once per CodeSha256)
// and records it as the layer's next version.
func (s *Service) PublishLayerVersion(ctx context.Context, lv model.LayerVersion, zip []byte) (model.LayerVersion, error) {
	if s.cfg.Layers == nil {
		return model.LayerVersion{}, errNoLayers
	}
	if err := lv.Validate(); err != nil {
		return model.LayerVersion{}, err
	}
	info, err := s.storeCode(ctx, zip, nil, false)
	if err != nil {
		return model.LayerVersion{}, err
	}
	lv.CodeSha256, lv.CodeSize, lv.UnzippedSize = info.Sha256Base64, info.Size, info.UnzippedSize
	lv.Policy = nil
	return s.cfg.Layers.Publish(ctx, lv)
}

// GetLayerVersion returns one layer version; ErrNotFound if it does not exist.
func (s *Service) GetLayerVersion(ctx context.Context, name string, version int64) (model.LayerVersion, error) {
	if s.cfg.Layers == nil {
		return model.LayerVersion{}, errNoLayers
	}
	return s.cfg.Layers.Get(ctx, name, version)
}

// ListLayerVersions returns the versions of the layer name, or of every
// layer when name is "", by name and newest first.
func (s *Service) ListLayerVersions(ctx context.Context, name string) ([]model.LayerVersion, error) {
	if s.cfg.Layers == nil {
		return nil, errNoLayers
	}
	return s.cfg.Layers.List(ctx, name)
}

// DeleteLayerVersion deletes a layer version; its number is never reused.
// Functions using it keep their copy of what they need and their content
// stays stored, as on Lambda; content nothing uses any more is collected.
func (s *Service) DeleteLayerVersion(ctx context.Context, name string, version int64) error {
	if s.cfg.Layers == nil {
		return errNoLayers
	}
	lv, err := s.cfg.Layers.Get(ctx, name, version)
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil // DeleteLayerVersion of a missing version succeeds
	}
	if err != nil {
		return err
	}
	if err := s.cfg.Layers.Delete(ctx, name, version); err != nil {
		return err
	}
	s.collect(ctx, lv.CodeSha256)
	return nil
}

// AddLayerVersionPermission adds a statement to a layer version's policy.
// Its Sid must be new; revisionID, when set, must match.
func (s *Service) AddLayerVersionPermission(ctx context.Context, name string, version int64, revisionID string, st policy.Statement) (model.LayerVersion, error) {
	if s.cfg.Layers == nil {
		return model.LayerVersion{}, errNoLayers
	}
	return s.cfg.Layers.Update(ctx, name, version, func(lv *model.LayerVersion) error {
		if revisionID != "" && revisionID != lv.RevisionID {
			return errRevision
		}
		if lv.Policy == nil {
			lv.Policy = &policy.Document{Version: "2012-10-17", ID: "default"}
		}
		for _, old := range lv.Policy.Statement {
			if old.Sid == st.Sid {
				return fmt.Errorf("The statement id (%s) provided already exists. Please specify a new statement id, or remove the existing statement.: %w", st.Sid, errdefs.ErrConflict)
			}
		}
		lv.Policy.Statement = append(lv.Policy.Statement, st)
		if b, _ := json.Marshal(lv.Policy); len(b) > maxResourcePolicyBytes {
			return fmt.Errorf("The final policy size (%d) is bigger than the limit (%d).: %w", len(b), maxResourcePolicyBytes, errdefs.ErrInvalid)
		}
		return nil
	})
}

// RemoveLayerVersionPermission removes the statement sid from a layer
// version's policy; revisionID, when set, must match.
func (s *Service) RemoveLayerVersionPermission(ctx context.Context, name string, version int64, sid, revisionID string) error {
	if s.cfg.Layers == nil {
		return errNoLayers
	}
	_, err := s.cfg.Layers.Update(ctx, name, version, func(lv *model.LayerVersion) error {
		if revisionID != "" && revisionID != lv.RevisionID {
			return errRevision
		}
		if lv.Policy != nil {
			for i, st := range lv.Policy.Statement {
				if st.Sid == sid {
					lv.Policy.Statement = slices.Delete(lv.Policy.Statement, i, i+1)
					if len(lv.Policy.Statement) == 0 {
						lv.Policy = nil
					}
					return nil
				}
			}
		}
		return fmt.Errorf("Statement %s is not found in resource policy.: %w", sid, errdefs.ErrNotFound)
	})
	return err
}

// LayerZip returns a layer version's zip.
func (s *Service) LayerZip(ctx context.Context, lv model.LayerVersion) ([]byte, error) {
	return s.code.Get(ctx, lv.CodeSha256)
}

// unzippedSize is what fn's code unzips to. Code stored before the size was
// recorded is measured again.
func (s *Service) unzippedSize(ctx context.Context, fn *model.Function) (int64, error) {
	if fn.UnzippedSize > 0 {
		return fn.UnzippedSize, nil
	}
	zip, err := s.code.Get(ctx, fn.CodeSha256)
	if err != nil {
		return 0, err
	}
	info, err := codezip.Inspect(zip)
	return info.UnzippedSize, err
}

// OptDir returns the directory to mount at /opt for fn: "" without layers,
// the layer's own unpacked directory for one, and for several a tree
// merging them in order (later layers win on equal paths), built once per
// combination and shared read-only by every environment using it.
func (s *Service) OptDir(ctx context.Context, fn *model.Function) (string, error) {
	switch len(fn.Layers) {
	case 0:
		return "", nil
	case 1:
		return s.layerDir(ctx, fn, fn.Layers[0])
	}
	key := optKey(fn.Layers)
	dst := filepath.Join(s.cfg.CodeDir, key)
	m := s.lock(key)
	defer m.Unlock()
	// On the cold path: once the merged tree exists, one stat.
	if _, err := os.Stat(dst); err == nil {
		return dst, nil
	}
	dirs := make([]string, len(fn.Layers))
	for i, l := range fn.Layers {
		dir, err := s.layerDir(ctx, fn, l)
		if err != nil {
			return "", err
		}
		dirs[i] = dir
	}
	return dst, mergeTrees(dirs, dst)
}

// layerDir is the unpacked content of one of fn's layers.
func (s *Service) layerDir(ctx context.Context, fn *model.Function, l model.FunctionLayer) (string, error) {
	dir, err := s.codeDir(ctx, l.CodeSha256)
	if err != nil {
		return "", fmt.Errorf("fetch layer %s of %s: %w", l.Arn, fn.Name, err)
	}
	return dir, nil
}

// optKey names the merged tree of a combination of layers. Code cache
// directories are bare hex, so the prefix keeps the two apart.
func optKey(layers []model.FunctionLayer) string {
	h := sha256.New()
	for _, l := range layers {
		h.Write([]byte(l.CodeSha256 + "\n"))
	}
	return "opt-" + hex.EncodeToString(h.Sum(nil))
}

// collectLayers removes what only the layers old used: their merged tree
// (unless $LATEST or a version of some function still has the same
// combination) and, through collect, their content.
func (s *Service) collectLayers(ctx context.Context, old []model.FunctionLayer) {
	if len(old) > 1 {
		key := optKey(old)
		same := func(f model.Function) bool { return len(f.Layers) > 1 && optKey(f.Layers) == key }
		if !slices.ContainsFunc(s.catalog.List(), func(f model.Function) bool { return same(f) || slices.ContainsFunc(f.Versions, same) }) {
			m := s.lock(key)
			_ = os.RemoveAll(filepath.Join(s.cfg.CodeDir, key))
			m.Unlock()
		}
	}
	for _, l := range old {
		s.collect(ctx, l.CodeSha256)
	}
}

// mergeTrees builds dst from the unpacked layers srcs, in order, later
// ones winning: a path holds what the last layer having it holds there,
// and directories present in several layers merge. Layers are walked last
// first, so a path taken is never written again: nothing is ever replaced,
// and nothing is written below anything but a directory this function
// made, so no symlink of a layer is ever followed. Files are hard links to
// the layers' unpacked files (same file system, read-only in sandboxes),
// so a merge copies no data. Like codezip.Extract, the tree appears
// atomically by a rename.
func mergeTrees(srcs []string, dst string) (err error) {
	tmp, err := os.MkdirTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, os.RemoveAll(tmp))
		}
	}()
	root, err := os.OpenRoot(tmp)
	if err != nil {
		return err
	}
	defer root.Close()
	for i := len(srcs) - 1; i >= 0; i-- {
		src := srcs[i]
		err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(src, path)
			if err != nil || rel == "." {
				return err
			}
			if fi, err := root.Lstat(rel); err == nil {
				if fi.IsDir() && d.IsDir() {
					return nil // merge into the later layer's directory
				}
				if d.IsDir() {
					return fs.SkipDir // a later layer holds this path
				}
				return nil
			} else if !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			switch t := d.Type(); {
			case t.IsDir():
				if err := root.Mkdir(rel, 0o755); err != nil {
					return err
				}
				return root.Chmod(rel, 0o755)
			case t&fs.ModeSymlink != 0:
				target, err := os.Readlink(path)
				if err != nil {
					return err
				}
				return root.Symlink(target, rel)
			case t.IsRegular():
				// rel's parent is a directory made above (checked with
				// Lstat), so the link lands inside tmp.
				return os.Link(path, filepath.Join(tmp, rel))
			}
			return nil // codezip makes nothing else
		})
		if err != nil {
			return fmt.Errorf("merge layers into %s: %w", dst, err)
		}
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}
