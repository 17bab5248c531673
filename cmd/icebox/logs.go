package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"
)

// logsCmd prints a function's log through the CloudWatch Logs API of a
// running server, optionally following new events.
func logsCmd(args []string) error {
	fs := flag.NewFlagSet("logs", flag.ExitOnError)
	connect := clientFlags(fs)
	follow := fs.Bool("follow", false, "keep printing new events")
	since := fs.Duration("since", time.Hour, "start this long ago")
	names, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(names) != 1 {
		return errors.New("logs: usage: icebox logs NAME [--follow] [--endpoint URL] [--since DURATION]")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	c, err := connect()
	if err != nil {
		return err
	}
	group := "/aws/lambda/" + names[0]
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
