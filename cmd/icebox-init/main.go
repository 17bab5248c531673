// Command icebox-init is a sandbox's PID 1 on its own (package pid1): a
// small binary, so each environment's init costs a fraction of the memory
// and start-up CPU of the icebox binary re-executed. `go generate ./...`
// builds it into internal/sandbox/linux/initbin, and icebox embeds it from
// there; the daemon passes it everything it needs on its control socket.
package main

import "icebox/internal/sandbox/linux/pid1"

func main() { pid1.Main() }
