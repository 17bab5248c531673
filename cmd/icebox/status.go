package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"sort"
	"text/tabwriter"

	"icebox/internal/api"
)

// statusCmd prints a running server's environments, concurrency and
// asynchronous queue depth per function.
func statusCmd(args []string) error {
	fs := flag.NewFlagSet("status", flag.ExitOnError)
	endpoint := fs.String("endpoint", "http://127.0.0.1:9070", "icebox API endpoint")
	fs.Parse(args)
	if fs.NArg() != 0 {
		return errors.New("status: usage: icebox status [--endpoint URL]")
	}
	resp, err := http.Get(*endpoint + "/icebox/v1/status")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status: server answered %s", resp.Status)
	}
	var st api.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return err
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
