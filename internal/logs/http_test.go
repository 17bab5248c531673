package logs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	cwl "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
)

const (
	groupA   = "/aws/lambda/alpha"
	groupB   = "/aws/lambda/beta.v2" // a dot: must not split the subject
	streamA1 = "2026/11/25/[$LATEST]0123456789abcdef0123456789abcdef"
	streamA2 = "2026/11/25/[$LATEST]fedcba9876543210fedcba9876543210"
	streamB  = "2026/11/25/[1]00000000000000000000000000000000"
	perStrm  = 40
)

// fixture stores perStrm events in each of three streams of two groups and
// serves them through the handler on a real HTTP server.
func fixture(t *testing.T) (*Store, *httptest.Server) {
	s, _ := newStore(t, Config{})
	ws := map[string]*Writer{
		streamA1: s.Writer(groupA, streamA1),
		streamA2: s.Writer(groupA, streamA2),
		streamB:  s.Writer(groupB, streamB),
	}
	for i := range perStrm {
		for _, name := range []string{streamA1, streamA2, streamB} {
			level := "INFO"
			if i%10 == 3 {
				level = "ERROR"
			}
			ws[name].Write(time.Now(), fmt.Sprintf("%s line %d of %s <&>", level, i, name[len(name)-4:]))
		}
	}
	flush(t, s)
	srv := httptest.NewServer(NewHandler(s, nil))
	t.Cleanup(srv.Close)
	return s, srv
}

func sdkClient(t *testing.T, url string) *cwl.Client {
	cfg, err := config.LoadDefaultConfig(t.Context(),
		config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("AKIDICEBOX", "secret", "")),
		config.WithRetryMaxAttempts(1),
	)
	if err != nil {
		t.Fatal(err)
	}
	return cwl.NewFromConfig(cfg, func(o *cwl.Options) { o.BaseEndpoint = aws.String(url) })
}

func TestCloudWatchSDK(t *testing.T) {
	_, srv := fixture(t)
	c := sdkClient(t, srv.URL)
	ctx := t.Context()

	t.Run("FilterAll", func(t *testing.T) {
		out, err := c.FilterLogEvents(ctx, &cwl.FilterLogEventsInput{LogGroupName: aws.String(groupA)})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Events) != 2*perStrm || out.NextToken != nil {
			t.Fatalf("%d events, token %v; want %d and none", len(out.Events), out.NextToken, 2*perStrm)
		}
		e := out.Events[0]
		if *e.LogStreamName != streamA1 || *e.Message != "INFO line 0 of cdef <&>" || *e.EventId == "" ||
			*e.IngestionTime < *e.Timestamp || *e.IngestionTime > time.Now().UnixMilli() {
			t.Fatalf("first event %+v", e)
		}
	})

	t.Run("FilterPattern", func(t *testing.T) {
		out, err := c.FilterLogEvents(ctx, &cwl.FilterLogEventsInput{
			LogGroupName: aws.String(groupA), FilterPattern: aws.String(`ERROR "of cdef"`),
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Events) != perStrm/10 {
			t.Fatalf("%d events match, want %d", len(out.Events), perStrm/10)
		}
		for _, e := range out.Events {
			if !strings.HasPrefix(*e.Message, "ERROR") || *e.LogStreamName != streamA1 {
				t.Fatalf("unexpected match %q in %s", *e.Message, *e.LogStreamName)
			}
		}
	})

	t.Run("FilterStreamNames", func(t *testing.T) {
		out, err := c.FilterLogEvents(ctx, &cwl.FilterLogEventsInput{
			LogGroupName: aws.String(groupA), LogStreamNames: []string{streamA2},
		})
		if err != nil || len(out.Events) != perStrm || *out.Events[0].LogStreamName != streamA2 {
			t.Fatalf("%d events, %v", len(out.Events), err)
		}
	})

	t.Run("FilterPagination", func(t *testing.T) {
		seen := map[string]bool{}
		pages := cwl.NewFilterLogEventsPaginator(c, &cwl.FilterLogEventsInput{
			LogGroupName: aws.String(groupA), Limit: aws.Int32(7),
		})
		for pages.HasMorePages() {
			out, err := pages.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(out.Events) > 7 {
				t.Fatalf("page of %d events over limit 7", len(out.Events))
			}
			for _, e := range out.Events {
				if seen[*e.EventId] {
					t.Fatalf("event %s returned twice", *e.EventId)
				}
				seen[*e.EventId] = true
			}
		}
		if len(seen) != 2*perStrm {
			t.Fatalf("paged through %d events, want %d", len(seen), 2*perStrm)
		}
	})

	t.Run("GetLogEventsFromHead", func(t *testing.T) {
		var got []string
		var token *string
		for range perStrm {
			out, err := c.GetLogEvents(ctx, &cwl.GetLogEventsInput{
				LogGroupName: aws.String(groupB), LogStreamName: aws.String(streamB),
				StartFromHead: aws.Bool(true), Limit: aws.Int32(15), NextToken: token,
			})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(*out.NextForwardToken, "f/") || !strings.HasPrefix(*out.NextBackwardToken, "b/") {
				t.Fatalf("tokens %q %q", *out.NextForwardToken, *out.NextBackwardToken)
			}
			for _, e := range out.Events {
				got = append(got, *e.Message)
			}
			if token != nil && *out.NextForwardToken == *token {
				break // the end: CloudWatch hands the same token back
			}
			token = out.NextForwardToken
		}
		if len(got) != perStrm || got[0] != "INFO line 0 of 0000 <&>" || got[perStrm-1] != fmt.Sprintf("INFO line %d of 0000 <&>", perStrm-1) {
			t.Fatalf("read %d events from head: %q…", len(got), got[:min(3, len(got))])
		}
	})

	t.Run("GetLogEventsLatest", func(t *testing.T) {
		out, err := c.GetLogEvents(ctx, &cwl.GetLogEventsInput{
			LogGroupName: aws.String(groupB), LogStreamName: aws.String(streamB), Limit: aws.Int32(5),
		})
		if err != nil || len(out.Events) != 5 || *out.Events[4].Message != fmt.Sprintf("INFO line %d of 0000 <&>", perStrm-1) {
			t.Fatalf("latest: %v %v", out, err)
		}
		prev, err := c.GetLogEvents(ctx, &cwl.GetLogEventsInput{
			LogGroupName: aws.String(groupB), LogStreamName: aws.String(streamB), Limit: aws.Int32(5),
			NextToken: out.NextBackwardToken,
		})
		if err != nil || len(prev.Events) != 5 || *prev.Events[4].Message != fmt.Sprintf("INFO line %d of 0000 <&>", perStrm-6) {
			t.Fatalf("previous page: %v %v", prev, err)
		}
	})

	t.Run("DescribeLogGroups", func(t *testing.T) {
		out, err := c.DescribeLogGroups(ctx, &cwl.DescribeLogGroupsInput{})
		if err != nil || len(out.LogGroups) != 2 {
			t.Fatalf("%v %v", out, err)
		}
		g := out.LogGroups[0]
		if *g.LogGroupName != groupA || *g.Arn != "arn:aws:logs:us-east-1:000000000000:log-group:"+groupA+":*" ||
			*g.CreationTime == 0 || *g.RetentionInDays != 7 {
			t.Fatalf("group %+v", g)
		}
		var names []string
		pages := cwl.NewDescribeLogGroupsPaginator(c, &cwl.DescribeLogGroupsInput{
			LogGroupNamePrefix: aws.String("/aws/lambda/"), Limit: aws.Int32(1),
		})
		for pages.HasMorePages() {
			p, err := pages.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, g := range p.LogGroups {
				names = append(names, *g.LogGroupName)
			}
		}
		if strings.Join(names, ",") != groupA+","+groupB {
			t.Fatalf("paged groups %q", names)
		}
	})

	t.Run("DescribeLogStreams", func(t *testing.T) {
		out, err := c.DescribeLogStreams(ctx, &cwl.DescribeLogStreamsInput{LogGroupName: aws.String(groupA)})
		if err != nil || len(out.LogStreams) != 2 {
			t.Fatalf("%v %v", out, err)
		}
		st := out.LogStreams[0]
		if *st.LogStreamName != streamA1 || *st.FirstEventTimestamp == 0 || *st.LastEventTimestamp < *st.FirstEventTimestamp ||
			*st.LastIngestionTime < *st.CreationTime || !strings.HasSuffix(*st.Arn, ":log-stream:"+streamA1) {
			t.Fatalf("stream %+v", st)
		}
		byTime, err := c.DescribeLogStreams(ctx, &cwl.DescribeLogStreamsInput{
			LogGroupName: aws.String(groupA), OrderBy: types.OrderByLastEventTime, Descending: aws.Bool(true), Limit: aws.Int32(1),
		})
		if err != nil || len(byTime.LogStreams) != 1 || *byTime.LogStreams[0].LogStreamName != streamA2 || byTime.NextToken == nil {
			t.Fatalf("latest stream first: %v %v", byTime, err)
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		_, err := c.FilterLogEvents(ctx, &cwl.FilterLogEventsInput{LogGroupName: aws.String("/aws/lambda/nope")})
		var nf *types.ResourceNotFoundException
		if !errors.As(err, &nf) || nf.ErrorMessage() != "The specified log group does not exist." {
			t.Fatalf("unknown group: %v", err)
		}
		_, err = c.GetLogEvents(ctx, &cwl.GetLogEventsInput{LogGroupName: aws.String(groupA), LogStreamName: aws.String("nope")})
		if !errors.As(err, &nf) || nf.ErrorMessage() != "The specified log stream does not exist." {
			t.Fatalf("unknown stream: %v", err)
		}
		_, err = c.DescribeLogStreams(ctx, &cwl.DescribeLogStreamsInput{LogGroupName: aws.String("/aws/lambda/nope")})
		if !errors.As(err, &nf) {
			t.Fatalf("unknown group: %v", err)
		}
	})

	t.Run("InvalidParameter", func(t *testing.T) {
		var ip *types.InvalidParameterException
		_, err := c.FilterLogEvents(ctx, &cwl.FilterLogEventsInput{LogGroupName: aws.String(groupA), NextToken: aws.String("bogus")})
		if !errors.As(err, &ip) {
			t.Fatalf("bad token: %v", err)
		}
		_, err = c.FilterLogEvents(ctx, &cwl.FilterLogEventsInput{LogGroupName: aws.String(groupA), FilterPattern: aws.String(`{ $.level = }`)})
		if !errors.As(err, &ip) {
			t.Fatalf("broken JSON pattern: %v", err)
		}
	})
}

// TestRetentionPolicySDK sets and removes a group's retention with the SDK:
// DescribeLogGroups reports it, values CloudWatch refuses are an
// InvalidParameterException, and an unknown group is not found.
func TestRetentionPolicySDK(t *testing.T) {
	_, srv := fixture(t)
	c := sdkClient(t, srv.URL)
	ctx := t.Context()
	retention := func(group string) *int32 {
		t.Helper()
		out, err := c.DescribeLogGroups(ctx, &cwl.DescribeLogGroupsInput{LogGroupNamePrefix: aws.String(group)})
		if err != nil || len(out.LogGroups) != 1 {
			t.Fatalf("DescribeLogGroups %s: %+v, %v", group, out, err)
		}
		return out.LogGroups[0].RetentionInDays
	}
	if r := retention(groupA); r == nil || *r != 7 {
		t.Errorf("default retention %v, want 7 days", r)
	}
	if _, err := c.PutRetentionPolicy(ctx, &cwl.PutRetentionPolicyInput{LogGroupName: aws.String(groupA), RetentionInDays: aws.Int32(30)}); err != nil {
		t.Fatal(err)
	}
	if r := retention(groupA); r == nil || *r != 30 {
		t.Errorf("retention after PutRetentionPolicy %v, want 30 days", r)
	}
	if r := retention(groupB); r == nil || *r != 7 {
		t.Errorf("another group's retention %v, want the default 7 days", r)
	}
	_, err := c.PutRetentionPolicy(ctx, &cwl.PutRetentionPolicyInput{LogGroupName: aws.String(groupA), RetentionInDays: aws.Int32(10)})
	if _, ok := errors.AsType[*types.InvalidParameterException](err); !ok || !strings.Contains(err.Error(), "retentionInDays") {
		t.Errorf("retention of 10 days: %v; want InvalidParameterException", err)
	}
	_, err = c.PutRetentionPolicy(ctx, &cwl.PutRetentionPolicyInput{LogGroupName: aws.String("/aws/lambda/none"), RetentionInDays: aws.Int32(1)})
	if _, ok := errors.AsType[*types.ResourceNotFoundException](err); !ok {
		t.Errorf("retention of an unknown group: %v; want ResourceNotFoundException", err)
	}
	if _, err := c.DeleteRetentionPolicy(ctx, &cwl.DeleteRetentionPolicyInput{LogGroupName: aws.String(groupA)}); err != nil {
		t.Fatal(err)
	}
	if r := retention(groupA); r != nil {
		t.Errorf("retention after DeleteRetentionPolicy %v, want none (never expire)", *r)
	}
}

// TestProtocolErrors drives the JSON 1.1 edge with raw requests.
func TestProtocolErrors(t *testing.T) {
	_, srv := fixture(t)
	post := func(target, body string) (int, map[string]string) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		req.Header.Set("X-Amz-Target", target)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
			t.Fatalf("content type %q", ct)
		}
		var out map[string]string
		b, _ := io.ReadAll(resp.Body)
		_ = json.Unmarshal(b, &out)
		return resp.StatusCode, out
	}
	for _, c := range []struct{ target, body, typ string }{
		{"Logs_20140328.PutLogEvents", `{}`, "UnknownOperationException"},
		{"Logs_20140328.FilterLogEvents", `{"logGroupName":`, "SerializationException"},
		{"Logs_20140328.FilterLogEvents", `{"logGroupName":5}`, "SerializationException"},
		{"Logs_20140328.FilterLogEvents", `{"logGroupName":"/aws/lambda/alpha","limit":0}`, "InvalidParameterException"},
		{"Logs_20140328.GetLogEvents", `{"logGroupName":"/aws/lambda/alpha"}`, "InvalidParameterException"},
		{"Logs_20140328.DescribeLogStreams", `{"logGroupIdentifier":"arn:aws:logs:us-east-1:000000000000:log-group:/aws/lambda/none:*"}`, "ResourceNotFoundException"},
		{"Logs_20140328.PutRetentionPolicy", `{"logGroupName":"/aws/lambda/alpha"}`, "InvalidParameterException"},
		{"Logs_20140328.PutRetentionPolicy", `{"logGroupName":"/aws/lambda/alpha","retentionInDays":0}`, "InvalidParameterException"},
		{"Logs_20140328.DeleteRetentionPolicy", `{"logGroupName":"/aws/lambda/none"}`, "ResourceNotFoundException"},
	} {
		status, out := post(c.target, c.body)
		if status != http.StatusBadRequest || out["__type"] != c.typ {
			t.Errorf("%s %s: %d %v, want 400 %s", c.target, c.body, status, out, c.typ)
		}
	}
	status, out := post("Logs_20140328.FilterLogEvents", `{"logGroupName":"`+strings.Repeat("a", 2<<20)+`"}`)
	if status != http.StatusRequestEntityTooLarge || out["__type"] == "" {
		t.Errorf("oversized body: %d %v", status, out)
	}
}

// TestAWSCLI reads events back with the AWS CLI, a client nobody here wrote.
func TestAWSCLI(t *testing.T) {
	if _, err := exec.LookPath("aws"); err != nil {
		t.Skip("aws CLI not installed; skipping the CLI compatibility check")
	}
	_, srv := fixture(t)
	dir := t.TempDir()
	cmd := exec.CommandContext(t.Context(), "aws", "--endpoint-url", srv.URL, "--region", "us-east-1", "--output", "json",
		"logs", "filter-log-events", "--log-group-name", groupA, "--filter-pattern", "ERROR")
	// Only dummy keys: no profile, token or endpoint from the host leaks in.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "AWS_ACCESS_KEY_ID=AKIDICEBOX", "AWS_SECRET_ACCESS_KEY=secret", "AWS_PAGER=",
		"AWS_CONFIG_FILE="+filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "credentials"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("aws logs filter-log-events: %v\n%s", err, stderr.String())
	}
	var out struct {
		Events []struct {
			LogStreamName, Message, EventID string
			Timestamp, IngestionTime        int64
		}
	}
	if err := json.Unmarshal(stdout, &out); err != nil {
		t.Fatalf("CLI output is not JSON: %v\n%s", err, stdout)
	}
	if len(out.Events) != 2*perStrm/10 {
		t.Fatalf("CLI saw %d events, want %d:\n%s", len(out.Events), 2*perStrm/10, stdout)
	}
	for _, e := range out.Events {
		if !strings.HasPrefix(e.Message, "ERROR line") || e.Timestamp == 0 || (e.LogStreamName != streamA1 && e.LogStreamName != streamA2) {
			t.Fatalf("CLI event %+v", e)
		}
	}
}
