package engine

import "github.com/nats-io/nats-server/v2/server"

// EmbeddedServer exposes the embedded server (nil when external) to tests.
func EmbeddedServer(e *Engine) *server.Server { return e.ns }
