package model_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"icebox/internal/errdefs"
	"icebox/internal/model"
)

func valid() model.Function {
	return model.Function{
		Name:             "my-func_1",
		Runtime:          "python3.12",
		Handler:          "app.handler",
		Role:             "arn:aws:iam::000000000000:role/lambda-role",
		MemorySize:       128,
		Timeout:          3,
		EphemeralStorage: 512,
		Architectures:    []string{"x86_64"},
		Environment:      map[string]string{"STAGE": "dev"},
		CodeSha256:       "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
	}
}

func check(t *testing.T, what string, f model.Function, wantOK bool, wantMsg ...string) {
	t.Helper()
	err := f.Validate()
	if wantOK {
		if err != nil {
			t.Errorf("%s: Validate() = %v, want ok", what, err)
		}
		return
	}
	if !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("%s: Validate() = %v, want ErrInvalid", what, err)
		return
	}
	for _, m := range wantMsg {
		if !strings.Contains(err.Error(), m) {
			t.Errorf("%s: message %q does not contain %q", what, err.Error(), m)
		}
	}
}

func TestValidateValid(t *testing.T) {
	check(t, "valid", valid(), true)
}

func TestValidateLimits(t *testing.T) {
	tests := []struct {
		field string
		set   func(*model.Function, int)
		ok    []int
		bad   []int
		msg   string
	}{
		{"memorySize", func(f *model.Function, v int) { f.MemorySize = v }, []int{128, 129, 1769, 10240}, []int{0, 127, 10241, -1}, "between 128 and 10240"},
		{"timeout", func(f *model.Function, v int) { f.Timeout = v }, []int{1, 3, 900}, []int{0, 901, -3}, "between 1 and 900"},
		{"ephemeralStorage.size", func(f *model.Function, v int) { f.EphemeralStorage = v }, []int{512, 513, 10240}, []int{0, 511, 10241}, "between 512 and 10240"},
	}
	for _, tc := range tests {
		for _, v := range tc.ok {
			f := valid()
			tc.set(&f, v)
			check(t, tc.field+"="+strconv.Itoa(v), f, true)
		}
		for _, v := range tc.bad {
			f := valid()
			tc.set(&f, v)
			check(t, tc.field+"="+strconv.Itoa(v), f, false, "'"+strconv.Itoa(v)+"' at '"+tc.field+"'", tc.msg)
		}
	}
}

func TestValidateName(t *testing.T) {
	for _, n := range []string{"f", "F", "0", "-", "_", "a-b_C9", strings.Repeat("x", 64)} {
		if err := model.ValidateName(n); err != nil {
			t.Errorf("ValidateName(%q) = %v", n, err)
		}
		f := valid()
		f.Name = n
		check(t, "name "+n, f, true)
	}
	for _, n := range []string{"", strings.Repeat("x", 65), "a.b", "a b", "a:b", "a/b", "é", "arn:aws:lambda:us-east-1:000000000000:function:f", "f\n"} {
		if err := model.ValidateName(n); !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "functionName") {
			t.Errorf("ValidateName(%q) = %v, want ErrInvalid about functionName", n, err)
		}
		f := valid()
		f.Name = n
		check(t, "name "+n, f, false, "functionName")
	}
}

func TestValidateRole(t *testing.T) {
	for _, r := range []string{
		"arn:aws:iam::123456789012:role/r",
		"arn:aws:iam::123456789012:role/service-role/my_role+=,.@-",
		"arn:aws-cn:iam::123456789012:role/r",
		"arn:aws-us-gov:iam::123456789012:role/r",
		"arn::iam::123456789012:role/r",
	} {
		f := valid()
		f.Role = r
		check(t, "role "+r, f, true)
	}
	for _, r := range []string{
		"",
		"r",
		"arn:aws:iam::12345678901:role/r",   // 11 digits
		"arn:aws:iam::1234567890123:role/r", // 13 digits
		"arn:aws:iam::123456789012:user/r",
		"arn:aws:iam:us-east-1:123456789012:role/r",
		"arn:aws:iam::123456789012:role/r x",
		"arn:gcp:iam::123456789012:role/r",
		" arn:aws:iam::123456789012:role/r",
	} {
		f := valid()
		f.Role = r
		check(t, "role "+r, f, false, "'"+r+"' at 'role'")
	}
}

func TestValidateOther(t *testing.T) {
	f := valid()
	f.Description = strings.Repeat("d", 256)
	check(t, "description 256", f, true)
	f.Description += "d"
	check(t, "description 257", f, false, "description")

	for _, archs := range [][]string{{"arm64"}, {"x86_64", "x86_64"}, {}, {"x86_64", "arm64"}} {
		f := valid()
		f.Architectures = archs
		check(t, "architectures "+strings.Join(archs, ","), f, false)
	}
}

func TestValidateEnvironment(t *testing.T) {
	ok := []map[string]string{
		nil,
		{},
		{"ab": ""},
		{"A1": "x", "a_": "y", "Z_9_z": "z", "snake_case_key": "v"},
		// Set by Lambda, but a user may override them.
		{"TZ": ":Europe/Paris", "LANG": "C.UTF-8", "PATH": "/opt/bin:/usr/bin", "LD_LIBRARY_PATH": "/opt/lib"},
		{"AWS_LAMBDA_EXEC_WRAPPER": "/opt/wrap", "AWS_REGIONX": "x", "NODE_OPTIONS": "--enable-source-maps"},
	}
	for _, env := range ok {
		if err := model.ValidateEnvironment(env); err != nil {
			t.Errorf("ValidateEnvironment(%v) = %v", env, err)
		}
		f := valid()
		f.Environment = env
		check(t, "environment", f, true)
	}

	// Lambda's pattern [a-zA-Z]([a-zA-Z0-9_])+ needs two characters.
	for _, k := range []string{"A", "z", "", "1A", "_A", "A-B", "A.B", "A B", "ÄB", "AB\n"} {
		err := model.ValidateEnvironment(map[string]string{k: "v"})
		if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "[a-zA-Z]([a-zA-Z0-9_])+") {
			t.Errorf("key %q: %v, want ErrInvalid with Lambda's pattern", k, err)
		}
	}

	// execve cannot pass a NUL byte: refused when the function is made.
	for _, v := range []string{"\x00", "a\x00b", "ok\x00"} {
		err := model.ValidateEnvironment(map[string]string{"KEY": v})
		if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "NUL") {
			t.Errorf("value %q: %v, want ErrInvalid naming NUL", v, err)
		}
	}

	for k := range model.ReservedEnv {
		err := model.ValidateEnvironment(map[string]string{k: "v", "OK_KEY": "v"})
		if !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("reserved key %s: %v, want ErrInvalid", k, err)
			continue
		}
		// _HANDLER and _X_AMZN_TRACE_ID already fail the key pattern, as in Lambda.
		if strings.HasPrefix(k, "_") {
			continue
		}
		if !strings.HasSuffix(strings.TrimSuffix(err.Error(), ": "+errdefs.ErrInvalid.Error()), "Reserved keys used in this request: "+k) {
			t.Errorf("reserved key %s: %v", k, err)
		}
	}
	for _, k := range []string{"_HANDLER", "_X_AMZN_TRACE_ID", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_EXECUTION_ENV",
		"AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION",
		"AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME",
		"AWS_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
		"AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR"} {
		if !model.ReservedEnv[k] {
			t.Errorf("%s is reserved in Lambda but not in ReservedEnv", k)
		}
	}
	for _, k := range []string{"TZ", "LANG", "PATH", "LD_LIBRARY_PATH"} {
		if model.ReservedEnv[k] {
			t.Errorf("%s is in ReservedEnv; Lambda lets users override it", k)
		}
	}

	// Several reserved keys are all named, sorted.
	err := model.ValidateEnvironment(map[string]string{"LAMBDA_TASK_ROOT": "/", "AWS_REGION": "x", "LAMBDA_RUNTIME_DIR": "r", "AWS_ACCESS_KEY_ID": "k", "MINE": "m"})
	const want = "Reserved keys used in this request: AWS_ACCESS_KEY_ID, AWS_REGION, LAMBDA_RUNTIME_DIR, LAMBDA_TASK_ROOT"
	if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), want+": ") {
		t.Errorf("several reserved keys: %v\nwant it to contain %q", err, want)
	}
	if err != nil && !strings.HasPrefix(err.Error(), "Lambda was unable to configure your environment variables because the environment variables you have provided contains reserved keys") {
		t.Errorf("reserved keys message: %q", err)
	}

	// 4 KB in total.
	small := map[string]string{"KEY": strings.Repeat("v", 3000)}
	if err := model.ValidateEnvironment(small); err != nil {
		t.Errorf("3 KB environment: %v", err)
	}
	for _, env := range []map[string]string{
		{"KEY": strings.Repeat("v", 4096)},
		{"K1": strings.Repeat("v", 2100), "K2": strings.Repeat("v", 2100)},
	} {
		err := model.ValidateEnvironment(env)
		if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "exceeded the 4KB limit") {
			t.Errorf("environment over 4 KB: %v", err)
		}
	}
}

func TestApplyDefaults(t *testing.T) {
	var f model.Function
	f.ApplyDefaults()
	if f.MemorySize != 128 || f.Timeout != 3 || f.EphemeralStorage != 512 || len(f.Architectures) != 1 || f.Architectures[0] != "x86_64" {
		t.Fatalf("defaults: memory %d timeout %d ephemeral %d architectures %v", f.MemorySize, f.Timeout, f.EphemeralStorage, f.Architectures)
	}

	g := model.Function{MemorySize: 1024, Timeout: 30, EphemeralStorage: 2048, Architectures: []string{"arm64"}}
	g.ApplyDefaults()
	if g.MemorySize != 1024 || g.Timeout != 30 || g.EphemeralStorage != 2048 || g.Architectures[0] != "arm64" {
		t.Fatalf("ApplyDefaults overwrote set fields: %+v", g)
	}

	// Defaults are themselves valid.
	h := model.Function{Name: "f", Runtime: "python3.12", Handler: "h", Role: "arn:aws:iam::000000000000:role/r"}
	h.ApplyDefaults()
	check(t, "defaults", h, true)
	// Idempotent.
	before := h.ConfigKey()
	h.ApplyDefaults()
	if h.ConfigKey() != before {
		t.Fatal("ApplyDefaults twice changed the function")
	}
}

func TestConfigKey(t *testing.T) {
	base := valid()
	key := base.ConfigKey()
	if !strings.HasPrefix(key, base.Name+":$LATEST/") {
		t.Errorf("ConfigKey %q does not start with the function name and version", key)
	}
	v := base
	v.Version = "1"
	if vk := v.ConfigKey(); vk == key || model.ConfigSlot(vk) != base.Name+":1" {
		t.Errorf("version 1's ConfigKey %q: want its own slot %s:1", vk, base.Name)
	}
	if again := valid(); again.ConfigKey() != key {
		t.Fatal("ConfigKey is not deterministic")
	}

	changes := map[string]func(*model.Function){
		"Name":             func(f *model.Function) { f.Name = "other" },
		"Runtime":          func(f *model.Function) { f.Runtime = "nodejs20.x" },
		"Handler":          func(f *model.Function) { f.Handler = "app.other" },
		"MemorySize":       func(f *model.Function) { f.MemorySize = 256 },
		"Timeout":          func(f *model.Function) { f.Timeout = 4 },
		"EphemeralStorage": func(f *model.Function) { f.EphemeralStorage = 1024 },
		"CodeSha256":       func(f *model.Function) { f.CodeSha256 = "other" },
		"env value":        func(f *model.Function) { f.Environment = map[string]string{"STAGE": "prod"} },
		"env key added":    func(f *model.Function) { f.Environment = map[string]string{"STAGE": "dev", "X1": ""} },
		"env key renamed":  func(f *model.Function) { f.Environment = map[string]string{"STAGE2": "dev"} },
		"env removed":      func(f *model.Function) { f.Environment = nil },
		// Field boundaries must not blur: moving text between fields is a change.
		"handler/runtime swap": func(f *model.Function) { f.Runtime, f.Handler = f.Handler, f.Runtime },
	}
	seen := map[string]string{key: "base"}
	for what, change := range changes {
		f := valid()
		change(&f)
		k := f.ConfigKey()
		if prev, dup := seen[k]; dup {
			t.Errorf("changing %s gives the same ConfigKey as %s", what, prev)
		}
		seen[k] = what
	}

	rc := 5
	same := map[string]func(*model.Function){
		"Description":         func(f *model.Function) { f.Description = "new description" },
		"RevisionID":          func(f *model.Function) { f.RevisionID = "0b1f4e8c-0000-4000-8000-000000000000" },
		"LastModified":        func(f *model.Function) { f.LastModified = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC) },
		"CodeSize":            func(f *model.Function) { f.CodeSize = 12345 },
		"ReservedConcurrency": func(f *model.Function) { f.ReservedConcurrency = &rc },
		"env map rebuilt":     func(f *model.Function) { f.Environment = map[string]string{"STAGE": "dev"} },
	}
	for what, change := range same {
		f := valid()
		change(&f)
		if f.ConfigKey() != key {
			t.Errorf("changing %s changed the ConfigKey", what)
		}
	}
}

func TestARN(t *testing.T) {
	if got := model.ARN("us-east-1", "000000000000", "f"); got != "arn:aws:lambda:us-east-1:000000000000:function:f" {
		t.Fatalf("ARN = %q", got)
	}
}
