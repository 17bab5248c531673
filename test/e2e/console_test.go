package e2e

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/chromedp/chromedp"

	"icebox/internal/auth/authtest"
)

// chromium finds the browser the console test drives, or fails the test
// saying how to install it: CI installs it, and a test that skipped here
// would hide a console nobody checked.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("the console's browser test needs Chromium: install it with `apt-get update && apt-get install -y chromium` (.ci/run does)")
	return ""
}

// artifacts is the directory the console's screenshots go to:
// $ICEBOX_ARTIFACTS/console when set, else a new temporary directory that
// is kept after the test.
func artifacts(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("ICEBOX_ARTIFACTS")
	var err error
	if dir != "" {
		dir = filepath.Join(dir, "console")
		err = os.MkdirAll(dir, 0o755)
	} else {
		dir, err = os.MkdirTemp("", "icebox-console-screenshots-")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("console screenshots in %s", dir)
	return dir
}

// TestConsoleInBrowser drives the console in headless Chromium as a user
// would: sign in with an access key, see a function and its code's hash,
// invoke it (response, Tail log and REPORT figures), watch a log line
// arrive live while the logs page is open, and see a throttle counted on
// the environments page. A payload and a log line carrying markup stay
// text, and the page breaks no rule of its Content-Security-Policy.
// Every page's screenshot is saved.
func TestConsoleInBrowser(t *testing.T) {
	browser := chromium(t)
	shots := artifacts(t)
	s := startServer(t)
	const name = "console-fn"
	created := s.create(name)
	ctxb := context.Background()
	if _, err := s.client.PublishVersion(ctxb, &lambda.PublishVersionInput{FunctionName: aws.String(name)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.client.CreateAlias(ctxb, &lambda.CreateAliasInput{FunctionName: aws.String(name), Name: aws.String("live"), FunctionVersion: aws.String("1")}); err != nil {
		t.Fatal(err)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox,
		chromedp.WindowSize(1280, 900), chromedp.DisableGPU)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", browser, err)
	}

	// What the page reports: exceptions and Content-Security-Policy
	// violations fail the test.
	var mu sync.Mutex
	var problems []string
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleException || strings.Contains(m.Text, "Content Security Policy") || m.Type == chromedp.ConsoleError && m.Source != "network" {
				mu.Lock()
				problems = append(problems, string(m.Type)+": "+m.Text)
				mu.Unlock()
			}
		}
	}()

	shot := func(page string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			png, err := chromedp.FullScreenshot(100)(ctx, tg)
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(shots, page+".png"), png, 0o644)
		})
	}
	// run runs one step of the walk within its own time limit; on failure
	// the page's text and a screenshot say where it stood.
	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		step, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if err := chromedp.Do(step, actions...); err != nil {
			_ = chromedp.Do(ctx, shot("failed"))
			body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
			t.Fatalf("%s: %v\npage:\n%s", what, err, body)
		}
	}
	textOf := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return s
	}
	poll := func(expr string, timeout time.Duration) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(timeout))(ctx, tg)
			return err
		})
	}
	// Pages are hash routes of one document: going to one is a hash change
	// (Navigate would wait for a load that never comes).
	open := func(route string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Evaluate[string](fmt.Sprintf("location.hash = %q", route))(ctx, tg)
			return err
		})
	}
	fnPage := "#/functions/" + name

	// Sign in: the form signs with SigV4 in the page.
	run("sign in",
		chromedp.Navigate(s.url+"/console/"),
		chromedp.WaitVisible(chromedp.CSS("#sign-in-form")),
		shot("sign-in"),
		chromedp.SendKeys(chromedp.CSS("#access-key-id"), authtest.AccessKeyID),
		chromedp.SendKeys(chromedp.CSS("#secret-access-key"), authtest.SecretAccessKey),
		chromedp.Click(chromedp.CSS("#sign-in")),
		chromedp.WaitVisible(chromedp.CSS(`#functions tr[data-function="`+name+`"]`)),
		shot("functions"))
	if who := textOf("#who"); who != "arn:aws:iam::000000000000:root" {
		t.Errorf("signed in as %q", who)
	}

	// The function: configuration, code size and hash.
	run("function page",
		open(fnPage),
		chromedp.WaitVisible(chromedp.CSS("#code-sha")),
		shot("function"))
	if sha := textOf("#code-sha"); sha != aws.ToString(created.CodeSha256) {
		t.Errorf("code hash shown %q, want %q", sha, aws.ToString(created.CodeSha256))
	}
	column := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](fmt.Sprintf(`[...document.querySelectorAll(%q)].map(td => td.textContent)`, sel)))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return strings.Join(v, ",")
	}
	if v := column("#versions tbody td:first-child"); v != "$LATEST,1" {
		t.Errorf("versions shown: %s, want $LATEST,1", v)
	}
	if a := column("#aliases tbody td:nth-child(-n+2)"); a != "live,1" {
		t.Errorf("aliases shown: %s, want live,1", a)
	}

	// Invoke with a payload carrying markup: it is logged and returned as text.
	const payload = `{"action":"log","size":1,"data":"<img src=x id=pwned>console-hello"}`
	run("invoke",
		open(fnPage+"/invoke"),
		chromedp.WaitVisible(chromedp.CSS("#payload")),
		chromedp.SetValue(chromedp.CSS("#qualifier"), "live"),
		chromedp.SetValue(chromedp.CSS("#payload"), payload),
		chromedp.Click(chromedp.CSS("#invoke")),
		chromedp.WaitVisible(chromedp.CSS("#tail")),
		shot("invoke"))
	for sel, want := range map[string]string{
		"#tail":          "line 0 <img src=x id=pwned>console-hello",
		"#response":      `"calls": 1`,
		"#stat-status":   "200",
		"#stat-version":  "1", // through the alias
		"#stat-duration": " ms",
		"#stat-billed":   " ms",
		"#stat-memory":   "of 128 MB",
		"#stat-init":     " ms", // the first call is a cold start
	} {
		if got := textOf(sel); !strings.Contains(got, want) {
			t.Errorf("%s shows %q, want it to contain %q", sel, got, want)
		}
	}

	// Logs: a line logged while the page is open appears live.
	live := "live-" + rand.Text()
	run("logs page",
		open(fnPage+"/logs"),
		chromedp.WaitVisible(chromedp.CSS("#log .line")))
	s.invoke(name, map[string]any{"action": "log", "size": 1, "data": live})
	run("live log line",
		poll(fmt.Sprintf(`[...document.querySelectorAll("#log .line")].some(l => l.textContent.includes(%q))`, live), 15*time.Second),
		shot("logs"))
	// The filter pattern narrows the tail to matching lines.
	run("filtered logs",
		chromedp.SetValue(chromedp.CSS("#filter"), live),
		chromedp.Click(chromedp.CSS(".row button")),
		poll(fmt.Sprintf(`(() => { const ls = [...document.querySelectorAll("#log .line")]; return ls.length > 0 && ls.every(l => l.textContent.includes(%q)); })()`, live), 10*time.Second))

	// A throttle: reserved concurrency 0, then an invoke from the console.
	if _, err := s.client.PutFunctionConcurrency(ctxb, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String(name), ReservedConcurrentExecutions: aws.Int32(0)}); err != nil {
		t.Fatal(err)
	}
	run("throttled invoke",
		open(fnPage+"/invoke"),
		chromedp.WaitVisible(chromedp.CSS("#payload")),
		chromedp.Click(chromedp.CSS("#invoke")),
		chromedp.WaitVisible(chromedp.CSS("#invoke-error")))
	if got := textOf("#invoke-error"); !strings.Contains(got, "TooManyRequestsException") || !strings.Contains(got, "ReservedFunctionConcurrentInvocationLimitExceeded") {
		t.Errorf("throttled invoke shows %q", got)
	}
	run("environments page",
		open("#/environments"),
		poll(fmt.Sprintf(`document.querySelector('#functions-status tr[data-function=%q] td.throttles')?.textContent === "1"`, name), 15*time.Second))
	if got := textOf(fmt.Sprintf(`#functions-status tr[data-function=%q]`, name)); !strings.Contains(got, "frozen") || !strings.Contains(got, "0 / 0") {
		t.Errorf("environments row shows %q, want a frozen environment, none busy of 0 reserved", got)
	}
	// Calls while the page is open draw the charts: an error is counted.
	if _, err := s.client.DeleteFunctionConcurrency(ctxb, &lambda.DeleteFunctionConcurrencyInput{FunctionName: aws.String(name)}); err != nil {
		t.Fatal(err)
	}
	for _, action := range []string{"sleep", "fail", "sleep"} {
		s.invoke(name, map[string]any{"action": action, "ms": 30})
		time.Sleep(700 * time.Millisecond)
	}
	run("charts",
		poll(fmt.Sprintf(`document.querySelector('#functions-status tr[data-function=%q] td.errors')?.textContent === "1"`, name), 15*time.Second),
		chromedp.WaitVisible(chromedp.CSS("#errors-chart .uplot")),
		chromedp.WaitVisible(chromedp.CSS("#duration-chart .uplot")),
		chromedp.Sleep(2500*time.Millisecond), // one more sample, drawn
		shot("environments"))

	// Markup in payloads and log lines stayed text everywhere.
	injected, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#pwned, main img").length`))
	if err != nil {
		t.Fatal(err)
	}
	if injected != 0 {
		t.Errorf("%d elements injected from a payload or log line", injected)
	}

	// Signing out returns to the sign-in page; the session is gone.
	run("sign out",
		chromedp.Click(chromedp.CSS("#sign-out")),
		chromedp.WaitVisible(chromedp.CSS("#sign-in-form")),
		open("#/functions"),
		chromedp.WaitVisible(chromedp.CSS("#sign-in-form")))

	// A narrow key's console shows what its policy allows, and the API's
	// refusal for the rest.
	_, narrow := s.userClient("viewer", `{"Statement":[{"Effect":"Allow","Action":["lambda:ListFunctions","lambda:GetFunction"],"Resource":"*"}]}`)
	run("sign in with a narrow key",
		chromedp.SendKeys(chromedp.CSS("#access-key-id"), narrow.AccessKeyID),
		chromedp.SendKeys(chromedp.CSS("#secret-access-key"), narrow.SecretAccessKey),
		chromedp.Click(chromedp.CSS("#sign-in")),
		chromedp.WaitVisible(chromedp.CSS(`#functions tr[data-function="`+name+`"]`)),
		open(fnPage+"/invoke"),
		chromedp.WaitVisible(chromedp.CSS("#payload")),
		chromedp.Click(chromedp.CSS("#invoke")),
		chromedp.WaitVisible(chromedp.CSS("#invoke-error")))
	if got := textOf("#invoke-error"); !strings.Contains(got, "AccessDeniedException") || !strings.Contains(got, "lambda:InvokeFunction") {
		t.Errorf("a narrow key's invoke shows %q, want AccessDenied naming lambda:InvokeFunction", got)
	}
	run("narrow environments page",
		open("#/environments"),
		poll(`document.querySelector("#per-function")?.textContent.includes("icebox:GetStatus")`, 10*time.Second),
		shot("narrow-key"))

	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		t.Errorf("page reported %s", p)
	}
}

// TestConsoleNotServedToSandbox: a function's code reaches icebox's API at
// AWS_ENDPOINT_URL, but not the console: no page, no session.
func TestConsoleNotServedToSandbox(t *testing.T) {
	s := startServer(t)
	s.create("console-probe", withProbe(t, nil))
	for _, path := range []string{"/console/", "/console/api/session"} {
		var got map[string]any
		s.invokeJSON("console-probe", map[string]string{"action": "get", "path": path}, &got)
		if got["status"] != float64(http.StatusNotFound) {
			t.Errorf("%s from a sandbox: %v, want 404", path, got)
		}
	}
}
