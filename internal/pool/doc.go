// Package pool keeps execution environments: warm ones per function
// configuration, cold starts when none is idle, and destruction after idle
// timeout, failure, credentials nearing expiry or a configuration change.
//
// Each environment's life (its states, the hand-over of events, freezing
// between calls, the outcome of each call) is an environment.Env, whose
// package doc has the state diagram; the Runtime API server in front of it
// only speaks HTTP. The pool adds what it needs around that life:
//
//	acquire: pop the most recent idle environment of the configuration
//	         (skipping dead or retiring ones), else start one (cold), with
//	         Lambda's second, "suppressed" init attempt if the first fails
//	invoke:  START, Env.Invoke → outcome, END, REPORT
//	release: back to the idle list if the outcome leaves it usable and its
//	         configuration is current; else destroy
//
// One environment serves one invocation at a time: an environment is in an
// idle list or in exactly one call. A warm environment whose runtime died
// before taking the event (NotTaken) is replaced and the call runs again,
// once. An environment whose function changed is never reused: it is
// destroyed when it next becomes idle.
package pool
