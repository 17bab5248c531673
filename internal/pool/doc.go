// Package pool keeps execution environments: warm ones per function
// configuration, cold starts when none is idle, freezing between calls (done
// by the runtime API server), and destruction after idle timeout, failure or a
// configuration change.
//
// Lifecycle of one environment (every transition is in env.transition):
//
//	           create sandbox, start runtime
//	creating ───────────────► initializing ──(first /next)──► busy ◄──┐
//	    │                          │                           │      │ acquire
//	    │ error                    │ init error / exit /       │ done │ (thaw)
//	    ▼                          ▼ 10 s                      ▼      │
//	destroyed ◄──────────────── destroyed           idle (frozen) ───┘
//	    ▲                                                  │
//	    └──── timeout, crash, OOM, stale config, idle timeout, shutdown
//
// One environment serves one invocation at a time. An environment whose
// function changed is never reused: it is destroyed when it next becomes idle.
package pool
