package api

import (
	"context"
	"net/http"

	"icebox/internal/membership"
)

// Health probes for load balancers and orchestrators: GET /healthz answers
// 200 while the process serves HTTP; GET /readyz answers 200 while the node
// should take calls, else 503 with a short reason.
//
// Both are unauthenticated (a probe has no keys), so they reveal nothing but
// readiness and one of the fixed reasons the readiness function returns: no
// node id, address, version or error text. They do no I/O: the readiness
// function reads state the node keeps anyway, so probing costs an attacker's
// requests and nothing of the engine.

// SetReadiness sets the function /readyz asks: "" when the node is ready,
// else a short fixed reason ("engine unreachable", "shutting down").
func (s *Server) SetReadiness(notReady func() string) { s.notReady = notReady }

// SetNodes sets how the status page lists the cluster's nodes.
func (s *Server) SetNodes(nodes func(ctx context.Context) ([]membership.Node, error)) {
	s.nodes = nodes
}

type probeAnswer struct {
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, probeAnswer{Status: "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if s.notReady != nil {
		if reason := s.notReady(); reason != "" {
			writeJSON(w, http.StatusServiceUnavailable, probeAnswer{Status: "not ready", Reason: reason})
			return
		}
	}
	writeJSON(w, http.StatusOK, probeAnswer{Status: "ready"})
}
