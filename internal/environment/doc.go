// Package environment owns the life of one execution environment: its
// state, the hand-over of each event to its runtime, freezing between
// calls, and the outcome of every call. The Runtime API server (package
// runtimeapi) is a thin HTTP shell over it; the pool drives it with Start,
// Invoke and Destroy.
//
// Every decision is taken under one lock, so an event is never handed to a
// frozen runtime and a runtime is never frozen with a call waiting for it.
// A call returns a typed Outcome (answered, function error, timed out,
// runtime exited, out of memory, not taken); an error means icebox itself
// failed.
//
// In short: creating → initializing → idle ⇄ frozen; a call takes an idle
// or frozen environment to busy (through handing-over while the runtime is
// not yet in /next) and its answer back to idle; a runtime that dies, runs
// past its deadline or fails its init leaves the environment draining until
// it is destroyed. One environment serves one call at a time.
//
// Every move, rendered from the transition table by TestDiagram
// (go test ./internal/environment -run TestDiagram -update rewrites it):
//
//	creating
//	├─► initializing  Start runs the runtime
//	└─► destroyed     Destroy (the sandbox could not be made)
//	initializing
//	├─► idle          the runtime's first /next: init is over (no freeze yet)
//	├─► draining      init error, runtime exit or init timeout
//	└─► destroyed     Destroy
//	idle
//	├─► frozen        /next with no call waiting: freeze
//	├─► busy          Invoke while the runtime waits in /next
//	├─► handing-over  Invoke while the runtime is not in /next
//	├─► draining      the runtime exited
//	└─► destroyed     Destroy
//	frozen
//	├─► busy          Invoke: thaw, hand the event to the waiting /next
//	├─► handing-over  Invoke after the frozen /next was dropped: thaw
//	├─► draining      the runtime was killed, or a thaw failed
//	└─► destroyed     Destroy
//	handing-over
//	├─► busy          /next takes the event
//	├─► draining      deadline (kill), or the runtime exited first
//	└─► destroyed     Destroy
//	busy
//	├─► idle          /response, /error, or /next without answering
//	├─► handing-over  the /next given the event was dropped before it got it
//	├─► draining      deadline (kill), or the runtime exited
//	└─► destroyed     Destroy
//	draining
//	└─► destroyed     Destroy
//
// Each event is a method that names the states it applies to and refuses
// every other, so a new state (extensions, provisioned environments) takes
// no event it was not written for.
package environment
