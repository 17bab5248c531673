package pool

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"icebox/internal/environment"
	"icebox/internal/model"
	"icebox/internal/telemetry"
)

// A runtime writes its logs two ways, as on Lambda. Whatever reaches
// stdout and stderr becomes one log event per line. A runtime client that
// finds _LAMBDA_TELEMETRY_LOG_FD writes each log call there instead, as
// one frame, so a multi-line message or a stack trace stays one event:
//
//	uint32 type   0xA55A0000 | level<<2 | 2 (JSON) or 3 (text), big endian
//	uint32 length of the message
//	uint64 time   microseconds since the epoch
//	message
//
// (the framing AWS's runtime interface clients use; level 0 is unset,
// 1 TRACE … 6 FATAL). Under the JSON log format Lambda drops application
// records below the function's ApplicationLogLevel: a frame's level, else
// a JSON record's "level", else INFO.

// maxRecord bounds one log event: longer lines and frames are cut, so a
// flood can't grow memory.
const maxRecord = 256 << 10

const (
	frameMagic  = 0xA55A0000
	frameHeader = 16
)

// stream is one of a runtime's outputs as its pump reads it.
type stream struct {
	// read is the bytes the frame pump took from the pipe (its goroutine's
	// own count: the line pumps track what they handled as they go).
	read int64
	// pumped (bytes fully handled) and ended are guarded by env.mu and
	// signalled on env.pumpCond.
	pumped int64
	ended  bool
}

// counter counts the bytes its reader takes into s.read.
type counter struct {
	r io.Reader
	s *stream
}

func (c counter) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.s.read += int64(n)
	return n, err
}

// progress records that the pump handled everything read so far (handled
// bytes), or that it reached the end.
func (e *env) progress(s *stream, handled int64, end bool) {
	e.mu.Lock()
	s.pumped = handled
	s.ended = s.ended || end
	e.pumpCond.Broadcast()
	e.mu.Unlock()
}

// pumpLines turns the runtime's stdout and stderr into one event per line.
func (e *env) pumpLines(r io.Reader) { e.pumpLinesOf(r, &e.out, e.app) }

// pumpExtensionLines turns the extensions' stdout and stderr into one
// event per line: in the function's log stream, and Telemetry API
// extension records, as on Lambda.
func (e *env) pumpExtensionLines(r io.Reader) { e.pumpLinesOf(r, &e.ext, e.extensionLine) }

// extensionLine records one line an extension wrote.
func (e *env) extensionLine(ts time.Time, msg []byte, _ int) {
	if n := len(msg); n > 0 && msg[n-1] == '\n' {
		msg = msg[:n-1]
	}
	e.writeLog(ts, string(msg))
	e.hub.Publish(ts, telemetry.Extension, string(msg))
}

// pumpLinesOf reads r as lines, each one a record, reporting progress in s.
func (e *env) pumpLinesOf(r io.Reader, s *stream, record func(ts time.Time, msg []byte, level int)) {
	br := bufio.NewReaderSize(r, 64<<10)
	var partial []byte
	var handled int64
	for {
		chunk, err := br.ReadSlice('\n')
		if len(chunk) > 0 {
			if len(partial)+len(chunk) <= maxRecord {
				partial = append(partial, chunk...)
			}
			if chunk[len(chunk)-1] == '\n' || len(partial) >= maxRecord {
				record(time.Now(), partial, 0)
				partial = partial[:0]
			}
		}
		end := err != nil && err != bufio.ErrBufferFull
		if end && len(partial) > 0 {
			record(time.Now(), partial, 0)
		}
		handled += int64(len(chunk))
		e.progress(s, handled, end)
		if end {
			return
		}
	}
}

// pumpFrames turns what the runtime wrote to its telemetry descriptor into
// one event per frame. Bytes that are not a frame end the framing: the
// rest is read as lines, so nothing written there is lost.
func (e *env) pumpFrames(r io.Reader) {
	s := &e.tel
	cr := counter{r, s}
	var head [frameHeader]byte
	buf := make([]byte, 0, 4096)
	for {
		// Everything read so far is handled: a wait for output (here) must
		// not hold up the end of a call.
		e.progress(s, s.read, false)
		if _, err := io.ReadFull(cr, head[:]); err != nil {
			e.progress(s, s.read, true)
			return
		}
		typ := binary.BigEndian.Uint32(head[0:4])
		n := int64(binary.BigEndian.Uint32(head[4:8]))
		if typ&0xFFFF0000 != frameMagic {
			e.pumpLinesAfter(head[:], cr)
			return
		}
		keep := min(n, maxRecord)
		if cap(buf) < int(keep) {
			buf = make([]byte, keep)
		}
		buf = buf[:keep]
		if _, err := io.ReadFull(cr, buf); err != nil {
			e.progress(s, s.read, true)
			return
		}
		if _, err := io.CopyN(io.Discard, cr, n-keep); err != nil {
			e.progress(s, s.read, true)
			return
		}
		ts := frameTime(binary.BigEndian.Uint64(head[8:16]))
		e.app(ts, buf, int(typ>>2&7))
		if cap(buf) > 64<<10 {
			buf = make([]byte, 0, 4096) // an idle environment keeps no big buffer
		}
	}
}

// pumpLinesAfter reads the rest of the telemetry descriptor as lines, head
// first.
func (e *env) pumpLinesAfter(head []byte, r io.Reader) {
	br := bufio.NewReader(io.MultiReader(bytes.NewReader(head), r))
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			e.app(time.Now(), line[:min(len(line), maxRecord)], 0)
		}
		e.progress(&e.tel, e.tel.read-int64(br.Buffered()), err != nil && err != bufio.ErrBufferFull)
		if err != nil && err != bufio.ErrBufferFull {
			return
		}
	}
}

// frameTime is a frame's time, unless it is far from now: the function
// writes it, and the log store must not be handed times that age events
// out at once or keep them forever.
func frameTime(us uint64) time.Time {
	now := time.Now()
	t := time.UnixMicro(int64(us & (1<<63 - 1)))
	if t.Before(now.Add(-5*time.Minute)) || t.After(now.Add(time.Minute)) {
		return now
	}
	return t
}

// Log levels, by rank: a frame's level bits are this rank.
var levelRanks = map[string]int{"TRACE": 1, "DEBUG": 2, "INFO": 3, "WARN": 4, "WARNING": 4, "ERROR": 5, "FATAL": 6, "CRITICAL": 6}

const infoRank = 3

// app records one application log event: a line or a frame's message,
// one trailing newline dropped. level is the frame's (0: unknown).
func (e *env) app(ts time.Time, msg []byte, level int) {
	if n := len(msg); n > 0 && msg[n-1] == '\n' {
		msg = msg[:n-1]
	}
	// Only JSON functions have a level (Text: rank 0); TRACE keeps everything.
	if min := levelRanks[e.logging.ApplicationLevel()]; min > 1 {
		if level == 0 {
			level = recordLevel(msg)
		}
		if level < min {
			return
		}
	}
	e.writeLog(ts, string(msg))
	// Telemetry's function records are the line, or its object when the
	// function logs JSON.
	if e.logging.JSON() && json.Valid(msg) && bytes.HasPrefix(bytes.TrimSpace(msg), []byte("{")) {
		e.hub.Publish(ts, telemetry.Function, json.RawMessage(msg))
	} else {
		e.hub.Publish(ts, telemetry.Function, string(msg))
	}
}

// recordLevel is the level of a JSON record's "level" field, else INFO.
func recordLevel(msg []byte) int {
	msg = bytes.TrimSpace(msg)
	if len(msg) == 0 || msg[0] != '{' || !bytes.Contains(msg, []byte(`"level"`)) {
		return infoRank
	}
	var r struct {
		Level string `json:"level"`
	}
	if json.Unmarshal(msg, &r) != nil {
		return infoRank
	}
	if rank, ok := levelRanks[strings.ToUpper(r.Level)]; ok {
		return rank
	}
	return infoRank
}

// syncOutput waits until everything the runtime wrote so far has been
// pumped, so log lines land before END/REPORT and in the tail. A runtime
// writes its logs before it posts the response, so the sandbox has counted
// them by the time we get here. A frame the runtime left half written is
// waited for at most a second.
func (e *env) syncOutput() {
	outTarget := e.sb.OutputWritten()
	telTarget := e.sb.TelemetryWritten()
	extTarget := e.sb.ExtensionOutputWritten()
	behind := func() bool {
		return !e.out.ended && e.out.pumped < outTarget || !e.tel.ended && e.tel.pumped < telTarget ||
			!e.ext.ended && e.ext.pumped < extTarget
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if !behind() {
		return // the usual case: no timer to arm and stop on every call
	}
	e.mu.Unlock()
	give := time.AfterFunc(time.Second, func() {
		e.mu.Lock()
		e.pumpCond.Broadcast()
		e.mu.Unlock()
	})
	defer give.Stop()
	deadline := time.Now().Add(time.Second)
	e.mu.Lock()
	for behind() && time.Now().Before(deadline) {
		e.pumpCond.Wait()
	}
}

// Platform records: the text lines Lambda writes, or under the JSON log
// format one Telemetry API event each, kept when at or above the
// function's SystemLogLevel.
type platformRecord struct {
	typ   string // platform.start, platform.report…
	level int
	text  string
	rec   any
}

// platform writes a platform record.
func (e *env) platform(r platformRecord) {
	now := time.Now()
	e.hub.Publish(now, r.typ, r.rec)
	if !e.logging.JSON() {
		e.writeLog(now, r.text)
		return
	}
	if r.level < levelRanks[e.logging.SystemLevel()] {
		return
	}
	b, _ := json.Marshal(struct {
		Time   string `json:"time"`
		Type   string `json:"type"`
		Record any    `json:"record"`
	}{now.UTC().Format("2006-01-02T15:04:05.000Z"), r.typ, r.rec})
	e.writeLog(now, string(b))
}

// status is a call's or an init's status as Lambda's records name it.
func status(kind environment.Kind) string {
	switch kind {
	case environment.Ready, environment.Answered:
		return "success"
	case environment.TimedOut:
		return "timeout"
	}
	return "error"
}

type recordMetrics struct {
	DurationMs       float64  `json:"durationMs"`
	BilledDurationMs *int64   `json:"billedDurationMs,omitempty"`
	MemorySizeMB     int      `json:"memorySizeMB,omitempty"`
	MaxMemoryUsedMB  uint64   `json:"maxMemoryUsedMB,omitempty"`
	InitDurationMs   *float64 `json:"initDurationMs,omitempty"`
}

// initStart is INIT_START, once per environment and init attempt.
func initStart(fn *model.Function, initType, phase, version, arn string) platformRecord {
	return platformRecord{typ: "platform.initStart", level: infoRank,
		text: "INIT_START Runtime Version: " + version + "\tRuntime Version ARN: " + arn,
		rec: map[string]any{"initializationType": initType, "phase": phase, "runtimeVersion": version,
			"runtimeVersionArn": arn, "functionName": fn.Name, "functionVersion": fn.VersionName()}}
}

// initReport ends an init that failed.
func initReport(initType, phase string, d time.Duration, kind environment.Kind, errorType string) platformRecord {
	st := status(kind)
	text := fmt.Sprintf("INIT_REPORT Init Duration: %.2f ms\tPhase: %s\tStatus: %s", ms(d), phase, st)
	if errorType != "" {
		text += "\tError Type: " + errorType
	}
	return platformRecord{typ: "platform.initReport", level: infoRank, text: text,
		rec: map[string]any{"initializationType": initType, "phase": phase, "status": st, "errorType": errorType,
			"metrics": recordMetrics{DurationMs: round2(ms(d))}}}
}

func startRecord(requestID, version string) platformRecord {
	return platformRecord{typ: "platform.start", level: infoRank,
		text: "START RequestId: " + requestID + " Version: " + version,
		rec:  map[string]string{"requestId": requestID, "version": version}}
}

// endRecord is END; its JSON form, platform.runtimeDone, is a DEBUG record.
func endRecord(requestID string, kind environment.Kind, d time.Duration) platformRecord {
	return platformRecord{typ: "platform.runtimeDone", level: levelRanks["DEBUG"],
		text: "END RequestId: " + requestID,
		rec:  map[string]any{"requestId": requestID, "status": status(kind), "metrics": recordMetrics{DurationMs: round2(ms(d))}}}
}

// reportRecord is REPORT. A call that failed before its runtime ran
// (failed init) names its status and error type, as Lambda's does.
func reportRecord(requestID string, d time.Duration, memoryMB int, maxUsedMB uint64, cold bool, initDuration time.Duration, kind environment.Kind, errorType string) platformRecord {
	text := reportLine(requestID, d, memoryMB, maxUsedMB, cold, initDuration)
	m := recordMetrics{DurationMs: round2(ms(d)), MemorySizeMB: memoryMB, MaxMemoryUsedMB: maxUsedMB}
	billed := billedMs(d)
	m.BilledDurationMs = &billed
	if cold {
		i := round2(ms(initDuration))
		m.InitDurationMs = &i
	}
	rec := map[string]any{"requestId": requestID, "metrics": m, "status": status(kind)}
	if errorType != "" {
		text += "\tStatus: " + status(kind) + "\tError Type: " + errorType
		rec["errorType"] = errorType
	}
	return platformRecord{typ: "platform.report", level: infoRank, text: text, rec: rec}
}

func round2(f float64) float64 { return math.Round(f*100) / 100 }
