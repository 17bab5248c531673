package pool

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"icebox/internal/auth"
	"icebox/internal/model"
	"icebox/internal/sandbox"
	"icebox/runtimes"
)

// ErrorTypeSDKUnavailable is the function error of a cold start whose
// runtime's SDK could not be installed.
const ErrorTypeSDKUnavailable = "Runtime.SDKUnavailable"

// Lambda's AWS_LAMBDA_INITIALIZATION_TYPE values icebox uses.
const (
	initOnDemand    = "on-demand"
	initProvisioned = "provisioned-concurrency"
)

// execWrapper names the wrapper script (an internal extension) a managed
// runtime starts through.
const execWrapper = "AWS_LAMBDA_EXEC_WRAPPER"

// bootstrapPaths are where a provided runtime's entry point may be, in order.
var bootstrapPaths = []string{"/var/task/bootstrap", "/opt/bootstrap"}

// entrypoint finds the runtime's argv for fn with code in codeDir and
// layers in optDir, and the runtime client directory to mount at
// /var/runtime (managed runtimes), with the runtime's SDK in it: the first cold start of a runtime waits
// for its install, later ones pay an atomic load. A missing bootstrap
// (Runtime.InvalidEntrypoint) or SDK (Runtime.SDKUnavailable) is a
// function error, returned as failure.
func (p *Pool) entrypoint(ctx context.Context, fn *model.Function, codeDir, optDir, requestID string) (args []string, runtimeDir string, failure []byte, err error) {
	if !runtimes.IsProvided(fn.Runtime) {
		rt, err := p.cfg.Runtimes.Lookup(fn.Runtime)
		if err != nil {
			return nil, "", nil, err
		}
		if err := p.cfg.Runtimes.Ensure(ctx, fn.Runtime); err != nil {
			if ctx.Err() != nil {
				return nil, "", nil, ctx.Err()
			}
			return nil, "", model.RequestErrorBody(requestID, ErrorTypeSDKUnavailable, err.Error()), nil
		}
		args := rt.Command(fn.Handler, fn.MemorySize)
		if w := fn.Environment[execWrapper]; w != "" {
			// Lambda runs a managed runtime's start-up through the
			// wrapper script the function names, which execs the rest.
			if !path.IsAbs(w) {
				msg := execWrapper + " must be an absolute path: " + w
				return nil, "", model.RequestErrorBody(requestID, model.ErrorTypeInvalidEntrypoint, msg), nil
			}
			args = append([]string{w}, args...)
		}
		return args, filepath.Join(p.cfg.Runtimes.Dir(), rt.Family), nil, nil
	}
	// The function's own bootstrap wins over a layer's, as on Lambda.
	for i, dir := range []string{codeDir, optDir} {
		if dir == "" {
			continue
		}
		if isFile(dir, "bootstrap") {
			return []string{bootstrapPaths[i]}, "", nil, nil
		}
	}
	msg := fmt.Sprintf("Couldn't find valid bootstrap(s): %v", bootstrapPaths)
	return nil, "", model.RequestErrorBody(requestID, model.ErrorTypeInvalidEntrypoint, msg), nil
}

// extensionsIn lists the external extensions of an /opt made from optDir:
// the executable regular files directly in its extensions directory, in
// name order, as paths inside the sandbox. Symbolic links are not followed
// here, on the host, nor out of optDir (see isFile).
func extensionsIn(optDir string) []string {
	if optDir == "" {
		return nil
	}
	root, err := os.OpenRoot(optDir)
	if err != nil {
		return nil
	}
	defer root.Close()
	ents, err := fs.ReadDir(root.FS(), "extensions")
	if err != nil {
		return nil
	}
	var exts []string
	for _, de := range ents {
		fi, err := de.Info()
		if err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			exts = append(exts, "/opt/extensions/"+de.Name())
		}
	}
	return exts
}

// isFile says whether name in dir is a file, resolved within dir: symlinks
// of several layers together can point above the tree (each layer's are
// checked alone), and the daemon must not follow them out of it.
func isFile(dir, name string) bool {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return false
	}
	defer root.Close()
	fi, err := root.Stat(name)
	return err == nil && !fi.IsDir()
}

// envVars builds the runtime's environment: Lambda's variables plus the
// user's. TZ, LANG, PATH, LD_LIBRARY_PATH, the X-Ray variables and
// PYTHONPATH are defaults the user may override, as on Lambda.
func envVars(fn *model.Function, region, logStream, initType string, creds auth.Credentials) []string {
	vars := map[string]string{
		"TZ":                       ":UTC",
		"LANG":                     "en_US.UTF-8",
		"PATH":                     "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin",
		"LD_LIBRARY_PATH":          "/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib",
		"AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
		"AWS_XRAY_DAEMON_ADDRESS":  "169.254.79.129:2000",
	}
	if strings.HasPrefix(fn.Runtime, "python") {
		vars["PYTHONPATH"] = "/var/runtime"
	}
	for k, v := range fn.Environment {
		vars[k] = v
	}
	reserved := map[string]string{
		"_HANDLER":                        fn.Handler,
		"AWS_REGION":                      region,
		"AWS_DEFAULT_REGION":              region,
		"AWS_LAMBDA_FUNCTION_NAME":        fn.Name,
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": strconv.Itoa(fn.MemorySize),
		"AWS_LAMBDA_FUNCTION_VERSION":     fn.VersionName(),
		"AWS_LAMBDA_INITIALIZATION_TYPE":  initType,
		"AWS_LAMBDA_LOG_GROUP_NAME":       fn.Logging.Group(fn.Name),
		"AWS_LAMBDA_LOG_FORMAT":           fn.Logging.Format(),
		"AWS_LAMBDA_LOG_STREAM_NAME":      logStream,
		"AWS_LAMBDA_RUNTIME_API":          "127.0.0.1:9001",
		// Where the runtime client writes framed log records (output.go).
		"_LAMBDA_TELEMETRY_LOG_FD": strconv.Itoa(sandbox.TelemetryFD),
		"LAMBDA_TASK_ROOT":         "/var/task",
		"LAMBDA_RUNTIME_DIR":       "/var/runtime",
		// The function's SDK calls icebox, with the role's credentials.
		"AWS_ENDPOINT_URL": "http://" + sandbox.APIAddr,
	}
	if creds.AccessKeyID != "" {
		reserved["AWS_ACCESS_KEY_ID"] = creds.AccessKeyID
		reserved["AWS_ACCESS_KEY"] = creds.AccessKeyID
		reserved["AWS_SECRET_ACCESS_KEY"] = creds.SecretAccessKey
		reserved["AWS_SESSION_TOKEN"] = creds.SessionToken
	}
	if level := fn.Logging.ApplicationLevel(); level != "" {
		reserved["AWS_LAMBDA_LOG_LEVEL"] = level
	}
	if !runtimes.IsProvided(fn.Runtime) {
		reserved["AWS_EXECUTION_ENV"] = "AWS_Lambda_" + fn.Runtime
	}
	for k, v := range reserved {
		vars[k] = v
	}
	out := make([]string, 0, len(vars))
	for k, v := range vars {
		out = append(out, k+"="+v)
	}
	return out
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
