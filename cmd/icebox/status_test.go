package main

import (
	"strings"
	"testing"
	"time"

	"icebox/internal/api"
	"icebox/internal/membership"
)

func TestRenderStatus(t *testing.T) {
	st := api.Status{Concurrent: 1, Unreserved: 99, Environments: map[string]int{"busy": 1, "idle": 1},
		Functions: []api.FunctionStatus{
			{Name: "hello", QueuedEvents: 2, Environments: []api.EnvironmentStatus{
				{ID: "0123456789abcdef", State: "frozen", AgeSeconds: 125.4, Calls: 7, MemorySizeMB: 128, MaxMemoryUsedMB: 9},
				{ID: "fedcba9876543210", State: "busy", AgeSeconds: 0.2, Calls: 1, MemorySizeMB: 128},
			}},
			{Name: "queued-only", QueuedEvents: 3, Environments: []api.EnvironmentStatus{}},
		}}
	var b strings.Builder
	if err := renderStatus(&b, st); err != nil {
		t.Fatal(err)
	}
	want := `concurrent executions  1  (unreserved 99)
environments busy      1
environments idle      1

FUNCTION     QUEUED  ENVIRONMENT   STATE   AGE   CALLS  MAX MEMORY  MEMORY SIZE
hello        2       0123456789ab  frozen  2m5s  7      9 MB        128 MB
                     fedcba987654  busy    0s    1      -           128 MB
queued-only  3       -
`
	if got := b.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestRenderStatusNodes(t *testing.T) {
	st := api.Status{Environments: map[string]int{}, Nodes: []membership.Node{
		{ID: "n-a", Address: "host-a:9070", LastHeartbeat: time.Now(), Environments: map[string]int{"idle": 2, "busy": 1, "frozen": 0},
			Leases: map[string]int{"fn.hello": 2, "account": 4}},
		{ID: "n-b", Address: "host-b:9070", LastHeartbeat: time.Now()},
	}}
	var b strings.Builder
	if err := renderStatus(&b, st); err != nil {
		t.Fatal(err)
	}
	want := `concurrent executions  0  (unreserved 0)

NODE  ADDRESS      LAST HEARTBEAT  ENVIRONMENTS    LEASES
n-a   host-a:9070  0s ago          busy 1, idle 2  account 4, fn.hello 2
n-b   host-b:9070  0s ago          -               -

no environments and no queued events
`
	if got := b.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
