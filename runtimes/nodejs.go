package runtimes

import "strconv"

// Node.js runs the client in nodejs/ (index.cjs) on the host's node. Only
// nodejs20.x is registered: the host's /usr/bin/node must be a Node.js 20
// for it to be the runtime Lambda users expect; the registry checks only
// that it exists.
func nodeRuntimes() []Runtime {
	return []Runtime{{ID: "nodejs20.x", Family: "nodejs", Interpreter: "/usr/bin/node", Command: nodeCommand("/usr/bin/node")}}
}

// nodeCommand sizes V8's heap to the function's memory, as Lambda's Node.js
// bootstrap does: without flags V8 plans for far more heap than a small
// function has, and the cgroup kills it before the garbage collector works
// hard. The old generation gets 85% of MemorySize; the young generation's
// semi-spaces 5%, no more than V8's own default of 16 MB.
func nodeCommand(node string) func(handler string, memoryMB int) []string {
	return func(_ string, memoryMB int) []string {
		semi := min(max(memoryMB*5/100, 1), 16)
		old := max(memoryMB*85/100, 16)
		return []string{
			node,
			"--max-semi-space-size=" + strconv.Itoa(semi),
			"--max-old-space-size=" + strconv.Itoa(old),
			"/var/runtime/index.cjs",
		}
	}
}
