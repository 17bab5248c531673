package runtimes

// Python runs icebox's own runtime client (python/bootstrap.py, stdlib
// only) on the host's CPython. Every version shares the client; an id is
// available only where its interpreter is installed.
var _ = func() bool {
	for _, version := range []string{"3.11", "3.12", "3.13"} {
		register(python(version))
	}
	return true
}()

func python(version string) Runtime {
	interpreter := "/usr/bin/python" + version
	// -u: print() and logging reach the function's log as they happen, in
	// order with the platform's lines, as on Lambda.
	argv := []string{interpreter, "-u", "/var/runtime/bootstrap.py"}
	return Runtime{
		ID:          "python" + version,
		Family:      "python",
		Interpreter: interpreter,
		Command:     func(string, int) []string { return append([]string(nil), argv...) },
	}
}
