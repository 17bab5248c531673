package pool

import (
	"slices"
	"testing"

	"icebox/internal/auth"
	"icebox/internal/model"
)

// The runtime learns the function's log format, level and group from
// Lambda's variables, and gets Lambda's X-Ray and search-path defaults.
func TestLoggingEnvironment(t *testing.T) {
	for _, tc := range []struct {
		runtime string
		logging *model.LoggingConfig
		want    []string
		absent  []string
	}{
		{"provided.al2023", nil,
			[]string{"AWS_LAMBDA_LOG_FORMAT=Text", "AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/f", "AWS_XRAY_CONTEXT_MISSING=LOG_ERROR",
				"AWS_XRAY_DAEMON_ADDRESS=169.254.79.129:2000", "PATH=/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin"},
			[]string{"AWS_LAMBDA_LOG_LEVEL", "PYTHONPATH"}},
		{"python3.12", &model.LoggingConfig{LogFormat: "JSON", ApplicationLogLevel: "WARN", LogGroup: "/shared/app"},
			[]string{"AWS_LAMBDA_LOG_FORMAT=JSON", "AWS_LAMBDA_LOG_LEVEL=WARN", "AWS_LAMBDA_LOG_GROUP_NAME=/shared/app", "PYTHONPATH=/var/runtime"}, nil},
		{"nodejs20.x", &model.LoggingConfig{LogFormat: "JSON"}, []string{"AWS_LAMBDA_LOG_LEVEL=INFO"}, []string{"PYTHONPATH"}},
	} {
		fn := function("f")
		fn.Runtime, fn.Logging = tc.runtime, tc.logging
		env := envVars(&fn, "us-east-1", "stream", auth.Credentials{})
		for _, w := range tc.want {
			if !slices.Contains(env, w) {
				t.Errorf("%s %+v: no %s in %v", tc.runtime, tc.logging, w, env)
			}
		}
		for _, a := range tc.absent {
			if slices.ContainsFunc(env, func(kv string) bool { return len(kv) > len(a) && kv[:len(a)+1] == a+"=" }) {
				t.Errorf("%s %+v: %s set", tc.runtime, tc.logging, a)
			}
		}
	}
	// A user's own PATH and X-Ray settings win, as on Lambda.
	fn := function("f")
	fn.Environment = map[string]string{"PATH": "/mine", "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR"}
	env := envVars(&fn, "us-east-1", "stream", auth.Credentials{})
	if !slices.Contains(env, "PATH=/mine") || !slices.Contains(env, "AWS_XRAY_CONTEXT_MISSING=IGNORE_ERROR") {
		t.Errorf("user overrides lost: %v", env)
	}
}
