package runtimes

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The Java runtime client ships as sources (java/src): the
// com.amazonaws.services.lambda.runtime interfaces handlers compile against,
// and icebox's runtime, icebox.runtime.Main. PrepareJava builds them on the
// host with the JDK's javac. What a sandbox sees at /var/runtime:
//
//	runtime.jar             the runtime and the interfaces (Java 17 classes)
//	runtime-<N>.jsa         class-data archive of the runtime for JDK N
//	jvm-<N>.args            JVM options file naming that archive, if any
//	lambda-runtime-api.jar  the interfaces alone (Java 8 classes), for users
//
// The archive holds the runtime's classes and the JDK classes it uses,
// parsed and verified; it takes 10–20 ms off every cold start. The JVM
// accepts it only when the class path is the string used when recording
// it, and JDK 17 cannot relocate it, so both the recording and every
// function use the relative class path ../runtime/runtime.jar, run from a
// sibling directory: the sandbox starts runtimes in /var/task.

const (
	javaMainClass  = "icebox.runtime.Main"
	javaWarmup     = "icebox.runtime.Warmup::handleRequest"
	javaRuntimeJar = "runtime.jar"
	javaAPIJar     = "lambda-runtime-api.jar"
	javaClassPath  = "../runtime/" + javaRuntimeJar
	// javaAPIPackage holds Lambda's interfaces; only they go into the API jar.
	javaAPIPackage = "com/amazonaws/services/lambda/runtime/"
)

// javaMajors are the JDKs icebox runs Java functions on, by runtime id.
var javaMajors = map[string]int{"java17": 17, "java21": 21}

// Lambda offers java17 and java21 (and java8.al2 and java11, which icebox
// does not: their JDKs are not packaged for current hosts). Lookup reports
// an id unavailable when its JDK is missing.
func javaRuntimes() []Runtime {
	var out []Runtime
	for id, major := range javaMajors {
		out = append(out, javaRuntime(id, major))
	}
	return out
}

// jdkHome is where Debian and Ubuntu install OpenJDK of a major version.
func jdkHome(major int) string {
	return fmt.Sprintf("/usr/lib/jvm/java-%d-openjdk-%s", major, goruntime.GOARCH)
}

// javaRuntime describes a Java runtime id on its JDK. The interpreter
// Lookup checks is javac, not java: the client is compiled on the host at
// daemon start, so a host with only a JRE cannot run Java functions.
func javaRuntime(id string, major int) Runtime {
	home := jdkHome(major)
	return Runtime{
		ID:          id,
		Family:      "java",
		Interpreter: filepath.Join(home, "bin", "javac"),
		Version:     strconv.Itoa(major),
		Command: func(handler string, memoryMB int) []string {
			return javaCommand(filepath.Join(home, "bin", "java"), major, memoryMB)
		},
	}
}

// javaCommand is the JVM's argv inside the sandbox. The flags are Lambda's:
// a heap of 85 % of the function's memory, leaving the rest to metaspace,
// code cache and thread stacks under the sandbox's hard memory limit; the
// serial collector and C1 only, which start fastest; class-data sharing.
// Perf data is off so the JVM writes nothing to /tmp, and the encodings are
// pinned because the sandbox has no locale data to derive them from.
func javaCommand(java string, major, memoryMB int) []string {
	return append([]string{
		java,
		"-XX:MaxHeapSize=" + strconv.Itoa(max(memoryMB*85/100, 16)) + "m",
		"-XX:+UseSerialGC",
		"-XX:+TieredCompilation",
		"-XX:TieredStopAtLevel=1",
		"-Xshare:auto",
		"-XX:-UsePerfData",
		"-Djava.io.tmpdir=/tmp",
		"-Dfile.encoding=UTF-8",
		"-Dsun.stdout.encoding=UTF-8",
		"-Dsun.stderr.encoding=UTF-8",
		"@/var/runtime/" + javaArgsFile(major),
	}, "-cp", javaClassPath, javaMainClass)
}

func javaArchive(major int) string  { return fmt.Sprintf("runtime-%d.jsa", major) }
func javaArgsFile(major int) string { return fmt.Sprintf("jvm-%d.args", major) }

// JavaAPIJar is where PrepareJava leaves the jar of Lambda's Java
// interfaces under a runtime directory, for users to compile against.
func JavaAPIJar(dst string) string { return filepath.Join(dst, "java", javaAPIJar) }

// javaPrepareMu serialises PrepareJava within a process, so two callers
// never build into or link from one cache directory at the same time.
var javaPrepareMu sync.Mutex

// PrepareJava builds the Java runtime client that Extract wrote under dst
// into dst/java (see the top of this file). Call it after Extract. Without
// a JDK it does nothing and returns nil: Lookup then reports the Java
// runtimes as missing their javac.
//
// Building takes a few seconds, so the output is cached in
// cacheDir/java/<hash of the sources and JDKs>, shared by every data dir
// on the host: a daemon start with the same icebox binary and JDKs only
// links the cached files. A class-data archive that cannot be recorded is no
// error: functions then start without it, slower.
func PrepareJava(dst, cacheDir string) error {
	jdks := javaJDKs()
	javac := ""
	for _, major := range jdks {
		if c := filepath.Join(jdkHome(major), "bin", "javac"); exists(c) {
			javac = c
			break
		}
	}
	if javac == "" {
		return nil
	}
	javaPrepareMu.Lock()
	defer javaPrepareMu.Unlock()

	sum, err := javaBuildHash(jdks)
	if err != nil {
		return err
	}
	cacheRoot := filepath.Join(cacheDir, "java")
	cached := filepath.Join(cacheRoot, sum)
	if !exists(filepath.Join(cached, "stamp")) {
		if err := buildJava(javac, jdks, cacheRoot, sum); err != nil {
			return fmt.Errorf("build the Java runtime client: %w", err)
		}
	}
	out := filepath.Join(dst, "java")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(cached)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Name() == "stamp" || e.IsDir() {
			continue
		}
		if err := linkFile(filepath.Join(cached, e.Name()), filepath.Join(out, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// javaJDKs lists the majors of the JDKs installed here, in order.
func javaJDKs() []int {
	var out []int
	for _, major := range javaMajors {
		if exists(filepath.Join(jdkHome(major), "bin", "java")) {
			out = append(out, major)
		}
	}
	sort.Ints(out)
	return out
}

// javaBuildHash identifies a build: the embedded sources, and each JDK's
// VM and class library, which the class-data archives are specific to.
func javaBuildHash(jdks []int) (string, error) {
	h := sha256.New()
	var paths []string
	err := fs.WalkDir(files, "java/src", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			paths = append(paths, p)
		}
		return err
	})
	if err != nil {
		return "", err
	}
	sort.Strings(paths)
	for _, p := range paths {
		b, err := files.ReadFile(p)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", p, len(b))
		h.Write(b)
	}
	for _, major := range jdks {
		for _, f := range []string{"lib/server/libjvm.so", "lib/modules"} {
			p := filepath.Join(jdkHome(major), f)
			if fi, err := os.Stat(p); err == nil {
				fmt.Fprintf(h, "%s\x00%d\x00%d\x00", p, fi.Size(), fi.ModTime().UnixNano())
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:24], nil
}

// buildJava builds cacheRoot/sum; the result appears atomically, by
// rename, with its stamp.
func buildJava(javac string, jdks []int, cacheRoot, sum string) error {
	if err := os.MkdirAll(cacheRoot, 0o755); err != nil {
		return err
	}
	// Older builds are of no use to this binary. Another process's build
	// in progress (.build-*) is left alone: the cache is shared host-wide.
	if old, err := os.ReadDir(cacheRoot); err == nil {
		for _, e := range old {
			if e.Name() != sum && !strings.HasPrefix(e.Name(), ".build-") {
				os.RemoveAll(filepath.Join(cacheRoot, e.Name()))
			}
		}
	}
	tmp, err := os.MkdirTemp(cacheRoot, ".build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	// The layout the sandbox has, so that the class path is the same
	// relative string: tmp/task is the working directory, tmp/runtime holds
	// what becomes /var/runtime.
	runtimeDir := filepath.Join(tmp, "runtime")
	if err := compileJava(javac, tmp, runtimeDir); err != nil {
		return err
	}
	for _, major := range jdks {
		args := fmt.Sprintf("-XX:SharedArchiveFile=/var/runtime/%s\n-Xlog:cds=off\n-Xlog:cds+dynamic=off\n", javaArchive(major))
		if err := javaRecordArchive(major, tmp); err != nil {
			args = "# no class-data archive: " + strings.ReplaceAll(err.Error(), "\n", " ") + "\n"
		}
		if err := os.WriteFile(filepath.Join(runtimeDir, javaArgsFile(major)), []byte(args), 0o644); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(runtimeDir, "stamp"), []byte(sum+"\n"), 0o644); err != nil {
		return err
	}
	final := filepath.Join(cacheRoot, sum)
	if err := os.Rename(runtimeDir, final); err != nil {
		// Another process finished the same build first: use theirs.
		if exists(filepath.Join(final, "stamp")) {
			return nil
		}
		return err
	}
	return nil
}

// compileJava writes the embedded sources under work/src and compiles them
// into out/runtime.jar (Java 17) and out/lambda-runtime-api.jar (the
// interfaces, for Java 8, so that handlers built for any Lambda Java
// runtime can compile against it). The two javac runs go in parallel.
func compileJava(javac, work, out string) error {
	src := filepath.Join(work, "src")
	var all, api []string
	err := fs.WalkDir(files, "java/src", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel := strings.TrimPrefix(p, "java/src/")
		target := filepath.Join(src, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		b, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.WriteFile(target, b, 0o644); err != nil {
			return err
		}
		if strings.HasSuffix(p, ".java") {
			all = append(all, target)
			if strings.HasPrefix(rel, javaAPIPackage) {
				api = append(api, target)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	classes := filepath.Join(work, "classes")
	apiClasses := filepath.Join(work, "api-classes")
	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Add(2)
	// String concatenation compiled inline, not through invokedynamic:
	// bootstrapping StringConcatFactory costs milliseconds at cold start.
	go func() { defer wg.Done(); errs[0] = runJavac(javac, "17", classes, all, "-XDstringConcat=inline") }()
	go func() { defer wg.Done(); errs[1] = runJavac(javac, "8", apiClasses, api, "-Xlint:-options") }()
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	if err := javaWriteJar(filepath.Join(out, javaRuntimeJar), classes, zip.Store); err != nil {
		return err
	}
	return javaWriteJar(filepath.Join(out, javaAPIJar), apiClasses, zip.Deflate)
}

// runJavac compiles sources for a Java release into out. javac runs with
// the same quick-start JVM flags as functions: it is short-lived.
func runJavac(javac, release, out string, sources []string, extra ...string) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	args := []string{"-J-XX:+UseSerialGC", "-J-XX:TieredStopAtLevel=1", "-J-Xshare:auto",
		"-nowarn", "-encoding", "UTF-8", "--release", release, "-d", out}
	args = append(args, extra...)
	cmd := exec.Command(javac, append(args, sources...)...)
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("javac --release %s: %w\n%s", release, err, b)
	}
	return nil
}

// javaWriteJar packs the files under dir into a jar with a manifest. The
// runtime's jar is stored uncompressed: the JVM reads it at every start.
func javaWriteJar(jar, dir string, method uint16) (err error) {
	f, err := os.Create(jar)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	zw := zip.NewWriter(f)
	w, err := zw.CreateHeader(&zip.FileHeader{Name: "META-INF/MANIFEST.MF", Method: method})
	if err != nil {
		return err
	}
	if _, err := io.WriteString(w, "Manifest-Version: 1.0\r\nCreated-By: icebox\r\n\r\n"); err != nil {
		return err
	}
	var paths []string
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			paths = append(paths, p)
		}
		return err
	})
	if err != nil {
		return err
	}
	sort.Strings(paths)
	for _, p := range paths {
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: filepath.ToSlash(rel), Method: method})
		if err != nil {
			return err
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return zw.Close()
}

// javaRecordArchive runs the runtime once on JDK major against a stand-in
// Runtime API, serving two events to icebox.runtime.Warmup, and has the
// JVM write the classes it loaded to work/runtime/runtime-<major>.jsa as it
// exits. The runtime exits when /next fails, after the second event.
func javaRecordArchive(major int, work string) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	events := []string{
		`{"text":"caf\u00e9 \"quoted\"","items":[{"id":"a","qty":"2","big":12345678901,"x":1.5}],` +
			`"map":{"k":"v","n":[true,false,null,-1e3]},"point":{"x":1,"y":2},"unknown":{}}`,
		`{"fail":true}`,
	}
	var mu sync.Mutex
	served := 0
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusAccepted)
			return
		}
		mu.Lock()
		n := served
		served++
		mu.Unlock()
		if n >= len(events) {
			w.WriteHeader(http.StatusGone)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Lambda-Runtime-Aws-Request-Id", fmt.Sprintf("00000000-0000-0000-0000-%012d", n))
		h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(time.Now().Add(time.Minute).UnixMilli(), 10))
		h.Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:000000000000:function:warmup")
		h.Set("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000;Sampled=0")
		io.WriteString(w, events[n])
	})}
	go srv.Serve(ln)
	defer srv.Close()

	task := filepath.Join(work, "task")
	if err := os.MkdirAll(task, 0o755); err != nil {
		return err
	}
	jsa := filepath.Join(work, "runtime", javaArchive(major))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	argv := javaCommand(filepath.Join(jdkHome(major), "bin", "java"), major, 128)
	// Record instead of using an archive: drop the options file.
	var args []string
	for _, a := range argv[1:] {
		if !strings.HasPrefix(a, "@") {
			args = append(args, a)
		}
	}
	args = append([]string{"-XX:ArchiveClassesAtExit=" + jsa}, args...)
	cmd := exec.CommandContext(ctx, argv[0], args...)
	cmd.Dir = task
	cmd.Env = []string{
		"PATH=/usr/bin:/bin",
		"LANG=C.UTF-8",
		"AWS_LAMBDA_RUNTIME_API=" + ln.Addr().String(),
		"_HANDLER=" + javaWarmup,
		"LAMBDA_TASK_ROOT=" + task,
		"AWS_LAMBDA_FUNCTION_NAME=warmup",
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128",
	}
	output, runErr := cmd.CombinedOutput()
	if fi, err := os.Stat(jsa); err != nil || fi.Size() == 0 {
		return fmt.Errorf("java %d recorded no archive (%v): %s", major, runErr, strings.Join(lastLines(string(output), 5), "\n"))
	}
	return nil
}
