package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
)

// logsCmd prints a function's log through the CloudWatch Logs API of a
// running server, optionally following new events.
func logsCmd(args []string) error {
	fs := flag.NewFlagSet("logs", flag.ExitOnError)
	endpoint := fs.String("endpoint", "http://127.0.0.1:9070", "icebox API endpoint")
	follow := fs.Bool("follow", false, "keep printing new events")
	since := fs.Duration("since", time.Hour, "start this long ago")
	region := fs.String("region", "us-east-1", "region")
	fs.Parse(reorder(args))
	if fs.NArg() != 1 {
		return errors.New("logs: usage: icebox logs NAME [--follow]")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	client := cloudwatchlogs.New(cloudwatchlogs.Options{
		Region:       *region,
		BaseEndpoint: endpoint,
		Credentials:  credentials.NewStaticCredentialsProvider("icebox", "icebox", ""),
	})
	group := "/aws/lambda/" + fs.Arg(0)
	start := time.Now().Add(-*since).UnixMilli()
	seen := map[string]bool{}
	for {
		var token *string
		for {
			out, err := client.FilterLogEvents(ctx, &cloudwatchlogs.FilterLogEventsInput{
				LogGroupName: aws.String(group), StartTime: aws.Int64(start), NextToken: token,
			})
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			for _, e := range out.Events {
				if id := aws.ToString(e.EventId); !seen[id] {
					seen[id] = true
					fmt.Println(aws.ToString(e.Message))
					start = max(start, aws.ToInt64(e.Timestamp))
				}
			}
			if out.NextToken == nil {
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

// reorder moves flags before positional arguments so `icebox logs NAME
// --follow` works with the flag package.
func reorder(args []string) []string {
	var flags, rest []string
	for _, a := range args {
		if len(a) > 1 && a[0] == '-' {
			flags = append(flags, a)
		} else {
			rest = append(rest, a)
		}
	}
	return append(flags, rest...)
}
