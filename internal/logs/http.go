package logs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"icebox/internal/errdefs"
	"icebox/internal/model"
)

// TargetPrefix starts the X-Amz-Target header of every CloudWatch Logs call;
// the daemon dispatches requests carrying it to NewHandler.
const TargetPrefix = "Logs_20140328."

// maxRequestBytes bounds a request body; read requests are a few hundred bytes.
const maxRequestBytes = 1 << 20

// NewHandler serves the CloudWatch Logs API in its JSON 1.1 protocol:
// FilterLogEvents, GetLogEvents, DescribeLogGroups, DescribeLogStreams,
// PutRetentionPolicy and DeleteRetentionPolicy. It does not authenticate; the
// daemon checks SigV4 and authorizes on the group before dispatching here.
func NewHandler(s *Store, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &handler{s: s, log: log}
}

type handler struct {
	s   *Store
	log *slog.Logger
}

// groupRef is how requests name a log group: by name, or by name or ARN.
type groupRef struct {
	LogGroupName       string `json:"logGroupName"`
	LogGroupIdentifier string `json:"logGroupIdentifier"`
}

func (g groupRef) name() (string, error) {
	switch {
	case g.LogGroupName != "" && g.LogGroupIdentifier != "":
		return "", fmt.Errorf("LogGroup name and LogGroup identifier are mutually exclusive parameters.: %w", errdefs.ErrInvalid)
	case g.LogGroupName != "":
		return g.LogGroupName, nil
	case g.LogGroupIdentifier == "":
		return "", fmt.Errorf("Should provide either logGroupName or logGroupIdentifier.: %w", errdefs.ErrInvalid)
	}
	// arn:aws:logs:REGION:ACCOUNT:log-group:NAME, optionally ending in ":*".
	if _, name, ok := strings.Cut(g.LogGroupIdentifier, ":log-group:"); ok && strings.HasPrefix(g.LogGroupIdentifier, "arn:") {
		return strings.TrimSuffix(name, ":*"), nil
	}
	return g.LogGroupIdentifier, nil
}

type filterRequest struct {
	groupRef
	LogStreamNames      []string `json:"logStreamNames"`
	LogStreamNamePrefix string   `json:"logStreamNamePrefix"`
	StartTime           *int64   `json:"startTime"`
	EndTime             *int64   `json:"endTime"`
	FilterPattern       string   `json:"filterPattern"`
	NextToken           string   `json:"nextToken"`
	Limit               *int     `json:"limit"`
}

type getRequest struct {
	groupRef
	LogStreamName string `json:"logStreamName"`
	StartTime     *int64 `json:"startTime"`
	EndTime       *int64 `json:"endTime"`
	NextToken     string `json:"nextToken"`
	Limit         *int   `json:"limit"`
	StartFromHead bool   `json:"startFromHead"`
}

type groupsRequest struct {
	LogGroupNamePrefix  string `json:"logGroupNamePrefix"`
	LogGroupNamePattern string `json:"logGroupNamePattern"`
	NextToken           string `json:"nextToken"`
	Limit               *int   `json:"limit"`
}

type retentionRequest struct {
	groupRef
	RetentionInDays *int `json:"retentionInDays"`
}

type streamsRequest struct {
	groupRef
	LogStreamNamePrefix string `json:"logStreamNamePrefix"`
	OrderBy             string `json:"orderBy"`
	Descending          bool   `json:"descending"`
	NextToken           string `json:"nextToken"`
	Limit               *int   `json:"limit"`
}

// limit maps an optional request limit to the store's (0 = default),
// refusing an explicit value below 1 as CloudWatch does.
func limit(p *int) (int, error) {
	if p == nil {
		return 0, nil
	}
	if *p < 1 {
		return 0, fmt.Errorf("1 validation error detected: Value '%d' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1: %w", *p, errdefs.ErrInvalid)
	}
	return *p, nil
}

// millis maps an optional time to the store's (0 = open).
func millis(field string, p *int64) (int64, error) {
	if p == nil {
		return 0, nil
	}
	if *p < 0 {
		return 0, fmt.Errorf("1 validation error detected: Value '%d' at '%s' failed to satisfy constraint: Member must have value greater than or equal to 0: %w", *p, field, errdefs.ErrInvalid)
	}
	return *p, nil
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), TargetPrefix)
	if r.Method != http.MethodPost || !ok {
		h.fail(w, r, op, errUnknownOp)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBytes))
	if err != nil {
		if _, tooBig := errors.AsType[*http.MaxBytesError](err); tooBig {
			err = fmt.Errorf("Request body exceeds %d bytes.: %w", maxRequestBytes, errdefs.ErrTooLarge)
		} else {
			err = fmt.Errorf("reading request body: %w", errdefs.ErrInvalidContent)
		}
		h.fail(w, r, op, err)
		return
	}
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	ctx := r.Context()
	var out any
	switch op {
	case "FilterLogEvents":
		out, err = call(ctx, body, h.filter)
	case "GetLogEvents":
		out, err = call(ctx, body, h.get)
	case "DescribeLogGroups":
		out, err = call(ctx, body, h.groups)
	case "DescribeLogStreams":
		out, err = call(ctx, body, h.streams)
	case "PutRetentionPolicy":
		out, err = call(ctx, body, h.putRetention)
	case "DeleteRetentionPolicy":
		out, err = call(ctx, body, h.deleteRetention)
	default:
		err = errUnknownOp
	}
	if err != nil {
		h.fail(w, r, op, err)
		return
	}
	reply(w, h.log, http.StatusOK, out)
}

// call decodes an operation's input and runs it.
func call[In, Out any](ctx context.Context, body []byte, op func(context.Context, In) (Out, error)) (any, error) {
	var in In
	if err := unmarshal(body, &in); err != nil {
		return nil, err
	}
	return op(ctx, in)
}

func (h *handler) filter(ctx context.Context, in filterRequest) (FilterResult, error) {
	group, err := in.name()
	if err != nil {
		return FilterResult{}, err
	}
	if len(in.LogStreamNames) > 0 && in.LogStreamNamePrefix != "" {
		return FilterResult{}, fmt.Errorf("Cannot specify both logStreamNames and logStreamNamePrefix.: %w", errdefs.ErrInvalid)
	}
	n, err := limit(in.Limit)
	start, err2 := millis("startTime", in.StartTime)
	end, err3 := millis("endTime", in.EndTime)
	if err := errors.Join(err, err2, err3); err != nil {
		return FilterResult{}, err
	}
	return h.s.filter(ctx, group, in.LogStreamNames, in.LogStreamNamePrefix, start, end, in.FilterPattern, n, in.NextToken)
}

func (h *handler) get(ctx context.Context, in getRequest) (GetResult, error) {
	group, err := in.name()
	if err != nil {
		return GetResult{}, err
	}
	if in.LogStreamName == "" {
		return GetResult{}, fmt.Errorf("1 validation error detected: Value null at 'logStreamName' failed to satisfy constraint: Member must not be null: %w", errdefs.ErrInvalid)
	}
	n, err := limit(in.Limit)
	start, err2 := millis("startTime", in.StartTime)
	end, err3 := millis("endTime", in.EndTime)
	if err := errors.Join(err, err2, err3); err != nil {
		return GetResult{}, err
	}
	return h.s.GetLogEvents(ctx, group, in.LogStreamName, start, end, n, in.StartFromHead, in.NextToken)
}

func (h *handler) groups(ctx context.Context, in groupsRequest) (GroupsResult, error) {
	if in.LogGroupNamePattern != "" {
		return GroupsResult{}, fmt.Errorf("logGroupNamePattern is not supported; use logGroupNamePrefix.: %w", errdefs.ErrInvalid)
	}
	n, err := limit(in.Limit)
	if err != nil {
		return GroupsResult{}, err
	}
	return h.s.DescribeLogGroups(ctx, in.LogGroupNamePrefix, n, in.NextToken)
}

func (h *handler) streams(ctx context.Context, in streamsRequest) (StreamsResult, error) {
	group, err := in.name()
	if err != nil {
		return StreamsResult{}, err
	}
	n, err := limit(in.Limit)
	if err != nil {
		return StreamsResult{}, err
	}
	return h.s.DescribeLogStreams(ctx, group, in.LogStreamNamePrefix, in.OrderBy, in.Descending, n, in.NextToken)
}

// empty is the body of a call that returns nothing.
type empty struct{}

func (h *handler) putRetention(ctx context.Context, in retentionRequest) (empty, error) {
	group, err := in.name()
	if err != nil {
		return empty{}, err
	}
	if in.RetentionInDays == nil {
		return empty{}, fmt.Errorf("1 validation error detected: Value null at 'retentionInDays' failed to satisfy constraint: Member must not be null: %w", errdefs.ErrInvalid)
	}
	return empty{}, h.s.PutRetentionPolicy(ctx, group, *in.RetentionInDays)
}

func (h *handler) deleteRetention(ctx context.Context, in retentionRequest) (empty, error) {
	group, err := in.name()
	if err != nil {
		return empty{}, err
	}
	return empty{}, h.s.DeleteRetentionPolicy(ctx, group)
}

func unmarshal(body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%s: %w", err.Error(), errdefs.ErrInvalidContent)
	}
	return nil
}

// errUnknownOp marks a target this handler does not serve.
var errUnknownOp = errors.New("unknown operation")

// fail writes err in the JSON 1.1 error shape: the one place that maps error
// classes to CloudWatch's codes.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, op string, err error) {
	WriteError(w, r, h.log.With("operation", op), err)
}

// WriteError answers err the way the CloudWatch Logs API (JSON 1.1) does:
// __type and message, 400 for the caller's errors. It is the one place
// that translates errors for this protocol (the API edge uses it for
// authentication and budget refusals). Platform faults are logged here.
func WriteError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	var code string
	var class error
	var ae *errdefs.AuthError
	status := http.StatusBadRequest
	switch {
	case errors.Is(err, errUnknownOp):
		code, class = "UnknownOperationException", errUnknownOp
	case errors.As(err, &ae):
		code = ae.Code()
	case errors.Is(err, errdefs.ErrNotFound):
		code, class = "ResourceNotFoundException", errdefs.ErrNotFound
	case errors.Is(err, errdefs.ErrInvalid):
		code, class = "InvalidParameterException", errdefs.ErrInvalid
	case errors.Is(err, errdefs.ErrInvalidContent):
		code, class = "SerializationException", errdefs.ErrInvalidContent
	case errors.Is(err, errdefs.ErrTooLarge):
		code, class, status = "RequestEntityTooLargeException", errdefs.ErrTooLarge, http.StatusRequestEntityTooLarge
	case errors.Is(err, errdefs.ErrUnavailable):
		code, class, status = "ServiceUnavailableException", errdefs.ErrUnavailable, http.StatusServiceUnavailable
	default:
		code, status = "ServiceUnavailableException", http.StatusInternalServerError
		if r.Context().Err() == nil { // a client that left is not a fault
			log.Error("logs API request failed", "err", err)
		}
	}
	msg := err.Error()
	if class != nil {
		msg = strings.TrimSuffix(strings.TrimSuffix(msg, class.Error()), ": ")
	}
	if errors.Is(err, errUnknownOp) {
		msg = ""
	}
	w.Header().Set("X-Amzn-ErrorType", code)
	reply(w, log, status, map[string]string{"__type": code, "message": msg})
}

func reply(w http.ResponseWriter, log *slog.Logger, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // log lines are full of <, > and &
	if err := enc.Encode(v); err != nil {
		log.Error("logs API: encode response", "err", err)
		buf.Reset()
		buf.WriteString(`{"__type":"ServiceUnavailableException","message":"encoding response"}`)
		status = http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-RequestId", model.NewUUID())
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
