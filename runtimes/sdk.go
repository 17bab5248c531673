package runtimes

import (
	"bufio"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"icebox/internal/errdefs"
)

// The AWS SDK ships with Lambda's managed runtimes: a function imports
// boto3 or requires @aws-sdk/client-* without bundling it. icebox does the
// same. The versions are pinned in sdk/<family>/ (a hash-locked pip
// requirements file; an npm package.json with its package-lock.json), the
// way Lambda pins a runtime version's SDK. Each family's SDK is installed
// with the ecosystem's own client (pip, npm; so their configured index,
// proxy and certificates apply), once per host and manifest:
//
//	CacheDir/sdk/python-<hash>/site-packages/   boto3, botocore, …
//	CacheDir/sdk/nodejs-<hash>/node_modules/     @aws-sdk/…, @smithy/…
//
// and hard-linked (copied across file systems) into the runtime client
// directory of each data dir, which sandboxes mount read-only at
// /var/runtime:
//
//	/var/runtime/site-packages   on sys.path after /var/task and the
//	                             layers, before the interpreter's own
//	                             site-packages (bootstrap.py)
//	/var/runtime/node_modules    in NODE_PATH after the layers; a
//	                             function's own node_modules comes first
//
// so a function's bundled SDK wins, as on Lambda. A host that cannot reach
// the registries is given the trees in the same layout under
// --runtimes-dir (RuntimesDir/python/site-packages,
// RuntimesDir/nodejs/node_modules).

//go:embed sdk
var sdkFiles embed.FS

// sdkSpec is one family's SDK.
type sdkSpec struct {
	// subdir is the tree's name under the family's client directory, the
	// cache entry and RuntimesDir/<family>.
	subdir string
	// what names the SDK in messages.
	what string
	// pinned reads the manifest's versions; found reads a tree's.
	pinned func() string
	found  func(tree string) string
	// install installs the manifest (already written to work) into
	// work/<subdir>, with r's interpreter, writing progress to out.
	install func(ctx context.Context, h *Host, r Runtime, work string, out io.Writer) error
}

var sdks = map[string]sdkSpec{
	"python": {subdir: "site-packages", what: "the AWS SDK for Python (boto3)",
		pinned: pythonPinned, found: pythonFound, install: pythonInstall},
	"nodejs": {subdir: "node_modules", what: "the AWS SDK for JavaScript v3",
		pinned: nodePinned, found: nodeFound, install: nodeInstall},
}

// sdkStamp, inside a linked tree, names the tree it was linked from.
const sdkStamp = ".icebox-sdk"

// sdkRetry is how long a failed install is reported before the next use
// of the runtime tries again.
const sdkRetry = 30 * time.Second

// sdkState is one family's SDK in one Host.
type sdkState struct {
	ready atomic.Bool // linked under Dir: the cold-start fast path

	mu       sync.Mutex
	running  chan struct{} // closed when the attempt in progress ends
	err      error         // the last attempt's failure
	failedAt time.Time
}

// Check says whether functions of runtime id can be created here. It puts
// the runtime's SDK in place if that has not happened yet: at once when it
// is on this host already (linking takes a fraction of a second, better
// paid by the create than by the first call), in the background when it
// must be downloaded. A failed install reported within the last sdkRetry
// is an error wrapping errdefs.ErrInvalid.
func (h *Host) Check(id string) error {
	if IsProvided(id) {
		return nil
	}
	r, err := h.Lookup(id)
	if err != nil {
		return err
	}
	st, ok := h.sdks[r.Family]
	if !ok || st.ready.Load() || h.cfg.Dir == "" {
		return nil
	}
	st.mu.Lock()
	if st.err != nil && time.Since(st.failedAt) < sdkRetry {
		defer st.mu.Unlock()
		return h.sdkError(r, st.err)
	}
	done := h.startLocked(r, st)
	st.mu.Unlock()
	if !h.onHost(r) {
		return nil
	}
	<-done
	if st.ready.Load() {
		return nil
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	return h.sdkError(r, st.err)
}

// onHost says whether r's family's SDK can be provided without a
// download: from RuntimesDir, or from the cache.
func (h *Host) onHost(r Runtime) bool {
	if h.cfg.RuntimesDir != "" {
		return true
	}
	sum, err := manifestHash(r.Family)
	return err == nil && h.cfg.CacheDir != "" && exists(filepath.Join(h.cfg.CacheDir, "sdk", r.Family+"-"+sum, sdkStamp))
}

// Ensure waits until runtime id's SDK is in place under Dir, installing it
// the first time. After that it costs an atomic load. The install runs on
// even if ctx ends first. A failed install is an error naming what is
// missing, wrapping errdefs.ErrInvalid; the next call after sdkRetry tries
// again.
func (h *Host) Ensure(ctx context.Context, id string) error {
	r, ok := h.runtimes[id]
	if !ok {
		return unsupported(id)
	}
	st, ok := h.sdks[r.Family]
	if !ok || st.ready.Load() {
		return nil
	}
	st.mu.Lock()
	if st.err != nil && time.Since(st.failedAt) < sdkRetry {
		err := st.err
		st.mu.Unlock()
		return h.sdkError(r, err)
	}
	done := h.startLocked(r, st)
	st.mu.Unlock()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if st.ready.Load() {
		return nil
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	return h.sdkError(r, st.err)
}

func (h *Host) sdkError(r Runtime, err error) error {
	fix := "run `icebox runtimes install " + r.ID + "` on this host, or serve with --runtimes-dir holding " + r.Family + "/" + sdks[r.Family].subdir
	if h.cfg.RuntimesDir != "" {
		fix = "fix --runtimes-dir " + h.cfg.RuntimesDir
	}
	return fmt.Errorf("The runtime %s cannot run on this icebox host: %s is not installed (%v); %s: %w",
		r.ID, sdks[r.Family].what, err, fix, errdefs.ErrInvalid)
}

// startLocked starts the install of r's family's SDK unless one is in
// progress, and returns the channel closed when it ends.
// Preconditions: st.mu held.
func (h *Host) startLocked(r Runtime, st *sdkState) chan struct{} {
	if st.running != nil {
		return st.running
	}
	done := make(chan struct{})
	st.running = done
	go func() {
		// Not the caller's context: a cancelled invoke must not leave a
		// half-done install for the next one.
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		err := h.provide(ctx, r)
		st.mu.Lock()
		st.err, st.running = err, nil
		if err != nil {
			st.failedAt = time.Now()
			h.cfg.Log.Error("runtime SDK", "family", r.Family, "err", err)
		} else {
			st.ready.Store(true)
		}
		st.mu.Unlock()
		close(done)
	}()
	return done
}

// provide links r's family's SDK under Dir from RuntimesDir or the cache,
// installing it into the cache first if needed. It does nothing when the
// tree linked there already is that one.
func (h *Host) provide(ctx context.Context, r Runtime) error {
	spec := sdks[r.Family]
	src, source, err := h.source(ctx, r)
	if err != nil {
		return err
	}
	dst := filepath.Join(h.cfg.Dir, r.Family, spec.subdir)
	if b, err := os.ReadFile(filepath.Join(dst, sdkStamp)); err == nil && string(b) == source {
		return nil
	}
	start := time.Now()
	if err := linkTree(src, dst, source); err != nil {
		return fmt.Errorf("link %s into %s: %w", src, dst, err)
	}
	h.cfg.Log.Info("runtime SDK linked", "family", r.Family, "sdk", spec.found(dst), "from", src, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// source finds the tree to link for r's family and a string naming it:
// RuntimesDir's, or the cache's, installed now if missing.
func (h *Host) source(ctx context.Context, r Runtime) (tree, name string, err error) {
	spec := sdks[r.Family]
	if h.cfg.RuntimesDir != "" {
		tree = filepath.Join(h.cfg.RuntimesDir, r.Family, spec.subdir)
		fi, err := os.Stat(tree)
		if err != nil || !fi.IsDir() {
			return "", "", fmt.Errorf("%s is missing: --runtimes-dir must hold python/site-packages and nodejs/node_modules, as `icebox runtimes install --runtimes-dir` writes them", tree)
		}
		return tree, "runtimes-dir " + tree + " " + fi.ModTime().UTC().Format(time.RFC3339Nano), nil
	}
	entry, err := h.installCached(ctx, r)
	if err != nil {
		return "", "", err
	}
	return filepath.Join(entry, spec.subdir), "cache " + filepath.Base(entry), nil
}

// Install installs runtime id's SDK into the cache unless it is there
// already and, when RuntimesDir is set, writes it into RuntimesDir in the
// layout --runtimes-dir reads. It is `icebox runtimes install`.
func (h *Host) Install(ctx context.Context, id string) error {
	r, err := h.Lookup(id)
	if err != nil {
		return err
	}
	spec, ok := sdks[r.Family]
	if !ok {
		h.cfg.Log.Info("no SDK to install", "runtime", id)
		return nil
	}
	if h.cfg.RuntimesDir == "" && h.onHost(r) {
		h.cfg.Log.Info("runtime SDK already installed", "runtime", id, "sdk", spec.pinned())
	}
	entry, err := h.installCached(ctx, r)
	if err != nil {
		return err
	}
	if h.cfg.RuntimesDir == "" {
		return nil
	}
	dst := filepath.Join(h.cfg.RuntimesDir, r.Family, spec.subdir)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if err := linkTree(filepath.Join(entry, spec.subdir), dst, "cache "+filepath.Base(entry)); err != nil {
		return err
	}
	h.cfg.Log.Info("runtime SDK written", "family", r.Family, "sdk", spec.found(dst), "into", dst)
	return nil
}

// sdkInstallMu serialises installs within a process; across processes the
// cache entry appears by rename, and the first one wins.
var sdkInstallMu sync.Mutex

// installCached returns the cache entry of r's family's SDK for the
// embedded manifest, installing it if missing.
func (h *Host) installCached(ctx context.Context, r Runtime) (string, error) {
	spec := sdks[r.Family]
	if h.cfg.CacheDir == "" {
		return "", errors.New("no cache directory to install into")
	}
	sum, err := manifestHash(r.Family)
	if err != nil {
		return "", err
	}
	root := filepath.Join(h.cfg.CacheDir, "sdk")
	final := filepath.Join(root, r.Family+"-"+sum)
	if exists(filepath.Join(final, sdkStamp)) {
		return final, nil
	}
	sdkInstallMu.Lock()
	defer sdkInstallMu.Unlock()
	if exists(filepath.Join(final, sdkStamp)) {
		return final, nil
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", err
	}
	work, err := os.MkdirTemp(root, ".build-"+r.Family+"-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	if err := writeManifest(r.Family, work); err != nil {
		return "", err
	}
	log := h.cfg.Log.With("family", r.Family)
	log.Info("installing runtime SDK (once per host)", "sdk", spec.pinned(), "into", final)
	start := time.Now()
	out := logLines(log)
	err = spec.install(ctx, h, r, work, out)
	out.Close()
	if err != nil {
		return "", fmt.Errorf("install %s: %w", spec.pinned(), err)
	}
	if err := os.WriteFile(filepath.Join(work, sdkStamp), []byte(sum+"\n"), 0o644); err != nil {
		return "", err
	}
	if err := os.Rename(work, final); err != nil {
		if !exists(filepath.Join(final, sdkStamp)) {
			return "", err
		}
	}
	log.Info("runtime SDK installed", "sdk", spec.found(filepath.Join(final, spec.subdir)), "took", time.Since(start).Round(time.Millisecond))
	// Entries for other manifests are of no use to this binary. Builds in
	// progress (.build-*) belong to other processes: the cache is shared.
	if old, err := os.ReadDir(root); err == nil {
		for _, e := range old {
			if strings.HasPrefix(e.Name(), r.Family+"-") && e.Name() != filepath.Base(final) {
				os.RemoveAll(filepath.Join(root, e.Name()))
			}
		}
	}
	return final, nil
}

// manifestHash identifies a family's pinned SDK.
func manifestHash(family string) (string, error) {
	h := sha256.New()
	names, err := manifestFiles(family)
	if err != nil {
		return "", err
	}
	for _, n := range names {
		b, err := sdkFiles.ReadFile(n)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", filepath.Base(n), len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

func manifestFiles(family string) ([]string, error) {
	entries, err := sdkFiles.ReadDir("sdk/" + family)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		out = append(out, "sdk/"+family+"/"+e.Name())
	}
	sort.Strings(out)
	return out, nil
}

func writeManifest(family, dir string) error {
	names, err := manifestFiles(family)
	if err != nil {
		return err
	}
	for _, n := range names {
		b, err := sdkFiles.ReadFile(n)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(n)), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// sdkStatus describes the SDK functions of r get, for `icebox runtimes`.
func (h *Host) sdkStatus(r Runtime) string {
	spec, ok := sdks[r.Family]
	if !ok {
		return ""
	}
	if h.cfg.RuntimesDir != "" {
		tree := filepath.Join(h.cfg.RuntimesDir, r.Family, spec.subdir)
		if v := spec.found(tree); v != "" {
			return v + " (from --runtimes-dir)"
		}
		return "missing: " + tree + " holds no SDK"
	}
	if h.cfg.Dir != "" {
		if v := spec.found(filepath.Join(h.cfg.Dir, r.Family, spec.subdir)); v != "" {
			return v
		}
	}
	if sum, err := manifestHash(r.Family); err == nil && h.cfg.CacheDir != "" {
		if v := spec.found(filepath.Join(h.cfg.CacheDir, "sdk", r.Family+"-"+sum, spec.subdir)); v != "" {
			return v + " (installed)"
		}
	}
	return spec.pinned() + " (not installed yet: on first use, or `icebox runtimes install " + r.ID + "`)"
}

// linkTree makes dst a copy of the tree src, hard-linking files where it
// can, with a stamp naming the source; dst appears whole, by rename.
func linkTree(src, dst, source string) error {
	tmp := dst + ".new"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(tmp, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			// npm's .bin links; relative, inside the tree.
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case d.Name() == sdkStamp && rel == sdkStamp:
			return nil
		}
		return linkFile(p, target)
	})
	if err == nil {
		err = os.WriteFile(filepath.Join(tmp, sdkStamp), []byte(source), 0o644)
	}
	if err == nil {
		if err = os.RemoveAll(dst); err == nil {
			err = os.Rename(tmp, dst)
		}
	}
	if err != nil {
		os.RemoveAll(tmp)
	}
	return err
}

// linkFile hard-links src at dst or, across file systems, copies it with
// its mode and modification time: the JVM checks its runtime jar's size and
// time against those recorded in its class-data archive, Python a source's
// time against its bytecode's.
func linkFile(src, dst string) error {
	_ = os.Remove(dst)
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fi.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Chtimes(dst, fi.ModTime(), fi.ModTime())
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// run runs an installer, its output going to out, and says what failed
// with the output's last lines.
func run(ctx context.Context, dir string, out io.Writer, argv ...string) error {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	var tail tailBuffer
	w := io.MultiWriter(out, &tail)
	cmd.Stdout, cmd.Stderr = w, w
	// Installers may ask nothing, and root must not be warned about.
	cmd.Env = append(os.Environ(), "PIP_NO_INPUT=1", "PIP_ROOT_USER_ACTION=ignore", "PIP_DISABLE_PIP_VERSION_CHECK=1",
		"npm_config_update_notifier=false", "npm_config_fund=false", "npm_config_audit=false")
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(argv[:min(len(argv), 3)], " "), err, tail.last(4))
	}
	return nil
}

// tailBuffer keeps the last 8 KiB written to it.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 8<<10 {
		t.b = t.b[len(t.b)-8<<10:]
	}
	return len(p), nil
}

func (t *tailBuffer) last(n int) string { return strings.Join(lastLines(string(t.b), n), " | ") }

// lastLines is s's last n lines.
func lastLines(s string, n int) []string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[max(len(lines)-n, 0):]
}

// lineLogger turns an installer's output into log lines: the progress an
// operator sees during the first start of a runtime.
type lineLogger struct {
	pw   *io.PipeWriter
	done chan struct{}
}

func logLines(log interface{ Info(string, ...any) }) *lineLogger {
	pr, pw := io.Pipe()
	l := &lineLogger{pw: pw, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			if line := strings.TrimSpace(sc.Text()); line != "" {
				log.Info("runtime SDK install", "out", line)
			}
		}
		io.Copy(io.Discard, pr)
	}()
	return l
}

func (l *lineLogger) Write(p []byte) (int, error) { return l.pw.Write(p) }

func (l *lineLogger) Close() error {
	err := l.pw.Close()
	<-l.done
	return err
}
