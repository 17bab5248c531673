package api_test

import (
	"strings"
	"testing"
)

// LoggingConfig is stored and returned as Lambda returns it (levels only
// with JSON, INFO by default), updated field by field, and refused with
// Lambda's error when invalid, leaving the function as it was.
func TestLoggingConfig(t *testing.T) {
	d := startDaemon(t)
	const fns = "/2015-03-31/functions"
	type logging struct{ LogFormat, ApplicationLogLevel, SystemLogLevel, LogGroup string }
	var cfg struct{ LoggingConfig logging }
	getJSON(t, d, "POST", fns, createBody("f", nil), 201, &cfg)
	if want := (logging{LogFormat: "Text", LogGroup: "/aws/lambda/f"}); cfg.LoggingConfig != want {
		t.Errorf("default: %+v, want %+v", cfg.LoggingConfig, want)
	}
	getJSON(t, d, "POST", fns, createBody("j", map[string]any{"LoggingConfig": map[string]string{"LogFormat": "JSON"}}), 201, &cfg)
	if want := (logging{"JSON", "INFO", "INFO", "/aws/lambda/j"}); cfg.LoggingConfig != want {
		t.Errorf("JSON: %+v, want %+v", cfg.LoggingConfig, want)
	}

	steps := []struct {
		update map[string]string
		want   logging
	}{
		{map[string]string{"LogFormat": "JSON", "ApplicationLogLevel": "WARN"}, logging{"JSON", "WARN", "INFO", "/aws/lambda/f"}},
		{map[string]string{"SystemLogLevel": "DEBUG", "LogGroup": "/shared/app"}, logging{"JSON", "WARN", "DEBUG", "/shared/app"}},
		{map[string]string{"LogFormat": "Text"}, logging{"Text", "", "", "/shared/app"}},
	}
	for _, st := range steps {
		cfg.LoggingConfig = logging{}
		getJSON(t, d, "PUT", fns+"/f/configuration", map[string]any{"LoggingConfig": st.update}, 200, &cfg)
		if cfg.LoggingConfig != st.want {
			t.Errorf("after %v: %+v, want %+v", st.update, cfg.LoggingConfig, st.want)
		}
		cfg.LoggingConfig = logging{}
		getJSON(t, d, "GET", fns+"/f/configuration", nil, 200, &cfg)
		if cfg.LoggingConfig != st.want {
			t.Errorf("read back after %v: %+v, want %+v", st.update, cfg.LoggingConfig, st.want)
		}
	}

	for _, tc := range []struct {
		what string
		lc   map[string]string
		want string
	}{
		{"bad format", map[string]string{"LogFormat": "XML"}, "loggingConfig.logFormat"},
		{"bad level", map[string]string{"LogFormat": "JSON", "ApplicationLogLevel": "LOUD"}, "loggingConfig.applicationLogLevel"},
		{"system TRACE", map[string]string{"LogFormat": "JSON", "SystemLogLevel": "TRACE"}, "loggingConfig.systemLogLevel"},
		{"levels with Text", map[string]string{"LogFormat": "Text", "ApplicationLogLevel": "WARN"}, "JSON"},
		{"level on a Text function", map[string]string{"SystemLogLevel": "WARN"}, "JSON"},
		{"bad group", map[string]string{"LogGroup": "no spaces allowed"}, "loggingConfig.logGroup"},
	} {
		for _, req := range []struct {
			method, path string
			body         any
		}{{"POST", fns, createBody("g", map[string]any{"LoggingConfig": tc.lc})}, {"PUT", fns + "/f/configuration", map[string]any{"LoggingConfig": tc.lc}}} {
			a := call(t, d, root, req.method, req.path, "", req.body)
			if a.status != 400 || a.code != "InvalidParameterValueException" || !strings.Contains(a.msg, tc.want) {
				t.Errorf("%s %s: %d %s %q, want 400 InvalidParameterValueException naming %q", req.method, tc.what, a.status, a.code, a.msg, tc.want)
			}
		}
	}
	cfg.LoggingConfig = logging{}
	getJSON(t, d, "GET", fns+"/f/configuration", nil, 200, &cfg)
	if want := steps[len(steps)-1].want; cfg.LoggingConfig != want {
		t.Errorf("refused updates changed the function: %+v", cfg.LoggingConfig)
	}
	if a := call(t, d, root, "GET", fns+"/g", "", nil); a.status != 404 {
		t.Errorf("a refused create left function g: %d", a.status)
	}

	// Writing into a group not the function's own needs logs:PutLogEvents
	// on it: without, a user could slip records into another function's logs.
	narrow := user(t, d, "narrow", "lambda:CreateFunction", "lambda:UpdateFunctionConfiguration", "iam:PassRole")
	into := map[string]any{"LoggingConfig": map[string]string{"LogGroup": "/aws/lambda/j"}}
	if a := call(t, d, narrow, "PUT", fns+"/f/configuration", "", into); a.status != 403 || !strings.Contains(a.msg, "logs:PutLogEvents") {
		t.Errorf("narrow user into j's group: %d %s %q, want 403 naming logs:PutLogEvents", a.status, a.code, a.msg)
	}
	if a := call(t, d, narrow, "POST", fns, "", createBody("h", into)); a.status != 403 {
		t.Errorf("narrow user creating into j's group: %d %s %q, want 403", a.status, a.code, a.msg)
	}
	if a := call(t, d, narrow, "PUT", fns+"/f/configuration", "", map[string]any{"LoggingConfig": map[string]string{"LogGroup": "/aws/lambda/f"}}); a.status != 200 {
		t.Errorf("narrow user back to f's own group: %d %s %q", a.status, a.code, a.msg)
	}
	writer := user(t, d, "writer", "lambda:UpdateFunctionConfiguration", "logs:PutLogEvents")
	if a := call(t, d, writer, "PUT", fns+"/f/configuration", "", into); a.status != 200 {
		t.Errorf("user allowed logs:PutLogEvents: %d %s %q", a.status, a.code, a.msg)
	}
}
