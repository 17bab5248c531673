// Command probe is a hand-written Runtime API client (no aws-lambda-go) that
// the security and hostile-input tests deploy: it reports what a function
// can see and do from inside its sandbox, and misbehaves on request in ways
// a library would not let it. The event's "action" picks a behaviour;
// PROBE_NO_NEXT and PROBE_POLLERS change how it talks to the Runtime API.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"icebox/internal/sandbox/linux/abitest"
)

// What the process was started with, taken before anything opens a file.
var (
	startFDs = openFDs()
	startEnv = os.Environ()
)

type event struct {
	Action     string `json:"action"`
	Ms         int    `json:"ms"`
	Marker     string `json:"marker"`
	Target     string `json:"target"`
	DataDir    string `json:"dataDir"`
	DaemonAddr string `json:"daemonAddr"`
}

var (
	api        = "http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API") + "/2018-06-01/runtime"
	lastDouble atomic.Int64 // status of the last second response to one event
)

func main() {
	abitest.Main() // a child of report's foreign-ABI attempts
	if os.Getenv("PROBE_NO_NEXT") != "" {
		for { // never asks for an event: init never ends
			time.Sleep(time.Hour)
		}
	}
	if os.Getenv("PROBE_POLLERS") == "2" {
		go loop()
	}
	loop()
}

func loop() {
	for {
		resp, err := http.Get(api + "/invocation/next")
		if err != nil {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		id := resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
		if out := handle(id, body); out != nil {
			post(api+"/invocation/"+id+"/response", out)
		}
	}
}

func post(url string, v any) int {
	b, _ := json.Marshal(v)
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// handle runs one event; a nil result means the action answered it itself.
func handle(id string, raw []byte) any {
	var ev event
	_ = json.Unmarshal(raw, &ev)
	switch ev.Action {
	case "report":
		return report(ev)
	case "sleep":
		fmt.Println("PROBE-REQUEST-ID", id)
		time.Sleep(time.Duration(ev.Ms) * time.Millisecond)
		return map[string]string{"slept": id}
	case "inject":
		// Answer another environment's call, through the only Runtime API
		// this sandbox can reach.
		return map[string]int{"status": post("http://127.0.0.1:9001/2018-06-01/runtime/invocation/"+ev.Target+"/response", "injected")}
	case "self":
		post("http://127.0.0.1:9001/2018-06-01/runtime/invocation/"+id+"/response", map[string]string{"via": "127.0.0.1:9001"})
		return nil
	case "wrongid":
		return map[string]int{
			"response": post(api+"/invocation/not-a-request-id/response", "x"),
			"error":    post(api+"/invocation/not-a-request-id/error", map[string]string{"errorMessage": "x"}),
		}
	case "double":
		post(api+"/invocation/"+id+"/response", map[string]string{"answer": "first"})
		lastDouble.Store(int64(post(api+"/invocation/"+id+"/response", map[string]string{"answer": "second"})))
		return nil
	case "lastdouble":
		return map[string]int64{"second": lastDouble.Load()}
	case "forkbomb":
		// Every process of the bomb carries the marker in its command line.
		exec.Command("/bin/sh", "-c", `b() { b | b & }; b`, ev.Marker).Start()
		time.Sleep(time.Hour)
	case "spin":
		// Ignore SIGTERM, leave a double-forked busy loop behind, spin.
		signal.Ignore(syscall.SIGTERM)
		exec.Command("/bin/sh", "-c", `trap "" TERM; (trap "" TERM; while :; do :; done) & while :; do :; done`, ev.Marker).Start()
		for {
		}
	case "tmpflood":
		return tmpFlood()
	case "pin":
		return pin(raw)
	case "pinned":
		return checkPinned()
	case "get":
		return get(raw)
	case "dial":
		return dial(raw)
	}
	return map[string]string{"action": ev.Action}
}

func tmpFlood() any {
	f, err := os.Create("/tmp/flood")
	if err != nil {
		return map[string]string{"error": err.Error()}
	}
	defer os.Remove("/tmp/flood")
	defer f.Close()
	chunk := make([]byte, 1<<20)
	var n int64
	for {
		w, err := f.Write(chunk)
		n += int64(w)
		if err != nil {
			return map[string]any{"bytes": n, "error": err.Error(), "enospc": errors.Is(err, syscall.ENOSPC)}
		}
	}
}

type result struct {
	Status     map[string]string `json:"status"`
	UIDMap     string            `json:"uidMap"`
	GIDMap     string            `json:"gidMap"`
	UID        int               `json:"uid"`
	GID        int               `json:"gid"`
	Groups     []int             `json:"groups"`
	NoFile     [2]uint64         `json:"nofile"`
	StartFDs   []string          `json:"startFDs"`
	Env        []string          `json:"env"`
	Processes  []string          `json:"processes"`
	Interfaces []string          `json:"interfaces"`
	Attempts   map[string]string `json:"attempts"`
}

func report(ev event) result {
	r := result{Status: map[string]string{}, Attempts: map[string]string{}, StartFDs: startFDs, Env: startEnv}
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok {
				r.Status[k] = strings.TrimSpace(v)
			}
		}
	}
	r.UIDMap = strings.Join(strings.Fields(readFile("/proc/self/uid_map")), " ")
	r.GIDMap = strings.Join(strings.Fields(readFile("/proc/self/gid_map")), " ")
	r.UID, r.GID = os.Getuid(), os.Getgid()
	r.Groups, _ = os.Getgroups()
	var lim unix.Rlimit
	_ = unix.Getrlimit(unix.RLIMIT_NOFILE, &lim)
	r.NoFile = [2]uint64{lim.Cur, lim.Max}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		cmd := strings.TrimSpace(strings.ReplaceAll(readFile(d+"/cmdline"), "\x00", " "))
		r.Processes = append(r.Processes, filepath.Base(d)+" "+cmd)
	}
	ifs, _ := net.Interfaces()
	for _, i := range ifs {
		r.Interfaces = append(r.Interfaces, i.Name)
	}

	try := func(name string, err error) {
		if err == nil {
			r.Attempts[name] = "ok"
		} else {
			r.Attempts[name] = err.Error()
		}
	}
	try("mount", unix.Mount("tmpfs", "/tmp", "tmpfs", 0, ""))
	// Go is multi-threaded, so without a filter this is EINVAL, not EPERM.
	try("unshare-user", unix.Unshare(unix.CLONE_NEWUSER))
	try("clone-newuser", (&exec.Cmd{Path: "/bin/true", SysProcAttr: &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER}}).Run())
	try("ptrace-child", ptraceChild())
	try("add-key", func() error {
		_, err := unix.AddKey("user", "probe", []byte("x"), unix.KEY_SPEC_PROCESS_KEYRING)
		return err
	}())
	try("exe-write", openWrite("/proc/1/exe"))
	try("sysrq-trigger", os.WriteFile("/proc/sysrq-trigger", []byte("h"), 0))
	try("sysctl-write", os.WriteFile("/proc/sys/kernel/hostname", []byte("probe"), 0))
	try("cgroup-write", os.Mkdir("/sys/fs/cgroup/probe", 0o755))
	try("kill-init", unix.Kill(1, unix.SIGKILL))
	try("kcore", func() error {
		f, err := os.Open("/proc/kcore")
		if err != nil {
			return err
		}
		defer f.Close()
		n, _ := f.Read(make([]byte, 16))
		return fmt.Errorf("read %d bytes", n)
	}())
	try("vsock", func() error {
		fd, err := unix.Socket(unix.AF_VSOCK, unix.SOCK_STREAM, 0)
		if err == nil {
			unix.Close(fd)
		}
		return err
	}())
	try("aslr-off", func() error {
		const addrNoRandomize = 0x0040000
		if _, _, errno := unix.RawSyscall(unix.SYS_PERSONALITY, addrNoRandomize, 0, 0); errno != 0 {
			return errno
		}
		return nil
	}())
	// System calls through the i386 and x32 entries, each from a child.
	if exe, err := os.Executable(); err == nil {
		for name, outcome := range abitest.Run(exe) {
			r.Attempts[name] = outcome
		}
	}
	if ev.DataDir != "" {
		_, err := os.Stat(ev.DataDir)
		try("data-dir", err)
	}
	if ev.DaemonAddr != "" {
		c, err := net.DialTimeout("tcp", ev.DaemonAddr, time.Second)
		if err == nil {
			c.Close()
		}
		try("daemon-api", err)
	}
	return r
}

// ptraceChild tries to attach to a child of its own, which plain Linux
// allows a process to do.
func ptraceChild() error {
	cmd := exec.Command("/bin/sleep", "10")
	if err := cmd.Start(); err != nil {
		return err
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	return unix.PtraceAttach(cmd.Process.Pid)
}

func openWrite(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err == nil {
		f.Close()
	}
	return err
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// openFDs lists the open descriptors with raw syscalls, which open nothing.
func openFDs() []string {
	var fds []string
	for fd := 0; fd < 1024; fd++ {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil {
			target, _ := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
			fds = append(fds, strconv.Itoa(fd)+" "+target)
		}
	}
	return fds
}
