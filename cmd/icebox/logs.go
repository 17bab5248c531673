package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"icebox/internal/model"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"time"
	"unicode/utf8"
)

// logGroup is the log group of function name: its LoggingConfig's, else
// Lambda's default, also when the function cannot be read (it may be gone,
// its logs not).
func logGroup(ctx context.Context, c *client, name string) string {
	var cfg struct{ LoggingConfig struct{ LogGroup string } }
	if err := c.do(ctx, "GET", "/2015-03-31/functions/"+url.PathEscape(name)+"/configuration", nil, &cfg); err == nil && cfg.LoggingConfig.LogGroup != "" {
		return cfg.LoggingConfig.LogGroup
	}
	return model.LogGroupName(name)
}

// logsCmd prints a function's log through the CloudWatch Logs API of a
// running server, optionally following new events.
func logsCmd(args []string) error {
	fs := newFlagSet("logs")
	connect := clientFlags(fs)
	follow := fs.Bool("follow", false, "keep printing new events")
	since := fs.Duration("since", time.Hour, "start this long ago")
	raw := fs.Bool("raw", false, "print messages as stored, control characters included (default: escaped)")
	names := parseArgs(fs, args)
	if len(names) != 1 {
		return errors.New("logs: usage: icebox logs NAME [--follow] [--raw] [--endpoint URL] [--since DURATION]")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	c, err := connect()
	if err != nil {
		return err
	}
	group := logGroup(ctx, c, names[0])
	start := time.Now().Add(-*since).UnixMilli()
	seen := map[string]bool{}
	for {
		token := ""
		for {
			// The CloudWatch Logs API's FilterLogEvents, spoken directly: the
			// SDK's client would add its tables to every sandbox's init,
			// which re-executes this binary.
			in := map[string]any{"logGroupName": group, "startTime": start}
			if token != "" {
				in["nextToken"] = token
			}
			var out struct {
				Events []struct {
					EventID   string `json:"eventId"`
					Message   string `json:"message"`
					Timestamp int64  `json:"timestamp"`
				} `json:"events"`
				NextToken string `json:"nextToken"`
			}
			if err := c.logsCall(ctx, "FilterLogEvents", in, &out); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			for _, e := range out.Events {
				if !seen[e.EventID] {
					seen[e.EventID] = true
					if !*raw {
						e.Message = escapeControl(e.Message)
					}
					fmt.Println(e.Message)
					start = max(start, e.Timestamp)
				}
			}
			if out.NextToken == "" {
				break
			}
			token = out.NextToken
		}
		if !*follow {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

// escapeControl makes a function's log line safe to show on a terminal: what
// a function prints must not drive the terminal of whoever reads its logs
// (ESC and CSI sequences repaint the screen or fake other lines, OSC sets the
// window title or writes the clipboard, CR overwrites the line, BEL rings).
// C0 and C1 controls other than newline and tab, DEL, bytes that are not
// UTF-8 (a lone 0x9b is CSI to an 8-bit terminal) and the bidirectional
// overrides that reorder what is displayed are written as Go escapes:
// "\x1b]0;title\x07" stays readable and inert. Everything else is unchanged.
func escapeControl(s string) string {
	clean := utf8.ValidString(s)
	for _, r := range s {
		if needsEscape(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r < utf8.RuneSelf && needsEscape(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case needsEscape(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// needsEscape reports the runes escapeControl rewrites.
func needsEscape(r rune) bool {
	switch {
	case r == '\n' || r == '\t':
		return false
	case r < 0x20, r >= 0x7f && r < 0xa0:
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069: // bidi embeddings, overrides, isolates
		return true
	}
	return false
}

// parseInterspersed parses args with fs and returns the positional
// arguments. Unlike fs.Parse alone it accepts flags after them, as in
// `icebox logs NAME --endpoint URL --follow`: flag parsing stops at the first
// non-flag, so that argument is taken and parsing resumes after it. A flag's
// separate value is consumed by fs.Parse itself and never mistaken for a
// positional. "--" ends flag parsing.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}
