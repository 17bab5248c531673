package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"text/tabwriter"

	"icebox/internal/api"
)

// statusCmd prints a running server's environments, concurrency and
// asynchronous queue depth per function.
func statusCmd(args []string) error {
	fs := newFlagSet("status")
	connect := clientFlags(fs)
	if len(parseArgs(fs, args)) != 0 {
		return errors.New("status: usage: icebox status [--endpoint URL]")
	}
	c, err := connect()
	if err != nil {
		return err
	}
	var st api.Status
	if err := c.do(context.Background(), "GET", "/icebox/v1/status", nil, &st); err != nil {
		return fmt.Errorf("status: %w", err)
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "concurrent executions\t%d\t(unreserved %d)\n", st.Concurrent, st.Unreserved)
	states := make([]string, 0, len(st.Environments))
	for s := range st.Environments {
		states = append(states, s)
	}
	sort.Strings(states)
	for _, s := range states {
		fmt.Fprintf(w, "environments %s\t%d\n", s, st.Environments[s])
	}
	fns := make([]string, 0, len(st.QueueDepth))
	for f := range st.QueueDepth {
		fns = append(fns, f)
	}
	sort.Strings(fns)
	fmt.Fprintln(w, "\nFUNCTION\tQUEUED EVENTS")
	for _, f := range fns {
		fmt.Fprintf(w, "%s\t%.0f\n", f, st.QueueDepth[f])
	}
	return w.Flush()
}
