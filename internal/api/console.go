package api

import (
	"net/http"
)

// The console (package console) is served on the API's port. Its page and
// assets are public; its actions are ordinary API calls that the pipeline
// authenticates with the session cookie and authorizes as any other.

// serveConsole serves the console's page, assets and session, but never to
// a sandbox's code.
func (s *Server) serveConsole(w http.ResponseWriter, r *http.Request) {
	if _, fromSandbox := r.Context().Value(envKey{}).(*sandboxEnv); fromSandbox {
		http.NotFound(w, r)
		return
	}
	s.console.ServeHTTP(w, r)
}

// consoleSignIn starts a console session for the access key that signed
// the request with SigV4. A session cookie does not sign in (it would
// renew itself forever), nor does a sandbox's code.
func (s *Server) consoleSignIn(w http.ResponseWriter, r *http.Request) {
	if _, fromSandbox := r.Context().Value(envKey{}).(*sandboxEnv); fromSandbox || s.cfg.NoAuth {
		http.NotFound(w, r)
		return
	}
	r.Header.Del("Cookie")
	// No policy decides a sign-in: any long-term key may open a console,
	// which then does only what the key's policies allow. The route's
	// action only names the operation in messages.
	r, release, err := s.admit(w, r, route{action: "icebox:ConsoleSignIn", limit: smallBody})
	if err == nil {
		defer release()
		c, _ := callerOf(r)
		err = s.console.SignIn(w, r, c.id)
	}
	if err != nil {
		s.fail(w, r, err)
	}
}
