package runtimes

// Python runs icebox's own runtime client (python/bootstrap.py, stdlib
// only) on the host's CPython. Every version shares the client; an id is
// available only where its interpreter is installed.
func pythonRuntimes() []Runtime {
	var out []Runtime
	for _, version := range []string{"3.11", "3.12", "3.13"} {
		out = append(out, python(version))
	}
	return out
}

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
