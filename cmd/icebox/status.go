package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"icebox/internal/api"
	"icebox/internal/membership"
)

// statusCmd prints a running server's concurrency, environments by state,
// and each function's environments and queued asynchronous events.
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
	return renderStatus(os.Stdout, st)
}

// renderStatus writes the totals, the cluster's nodes, then one row per environment under its
// function (a function with queued events and no environment gets a row
// of its own).
func renderStatus(out io.Writer, st api.Status) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "concurrent executions\t%d\t(unreserved %d)\n", st.Concurrent, st.Unreserved)
	states := make([]string, 0, len(st.Environments))
	for s := range st.Environments {
		states = append(states, s)
	}
	sort.Strings(states)
	for _, s := range states {
		fmt.Fprintf(w, "environments %s\t%d\n", s, st.Environments[s])
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := renderNodes(out, st.Nodes); err != nil {
		return err
	}
	if len(st.Functions) == 0 {
		_, err := fmt.Fprintln(out, "\nno environments and no queued events")
		return err
	}
	// Rows are built whole, so every column lines up across functions, and
	// trailing blanks are cut afterwards.
	var table bytes.Buffer
	w = tabwriter.NewWriter(&table, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "\nFUNCTION\tQUEUED\tENVIRONMENT\tSTATE\tAGE\tCALLS\tMAX MEMORY\tMEMORY SIZE")
	for _, f := range st.Functions {
		queued := strconv.Itoa(f.QueuedEvents)
		if len(f.Environments) == 0 {
			fmt.Fprintf(w, "%s\t%s\t-\t\t\t\t\t\n", f.Name, queued)
		}
		for i, e := range f.Environments {
			name := f.Name
			if i > 0 {
				name, queued = "", ""
			}
			maxMem := "-" // before its first call ends
			if e.MaxMemoryUsedMB > 0 {
				maxMem = fmt.Sprintf("%d MB", e.MaxMemoryUsedMB)
			}
			age := time.Duration(e.AgeSeconds * float64(time.Second)).Round(time.Second)
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%d MB\n", name, queued, shortID(e.ID), e.State, age, e.Calls, maxMem, e.MemorySizeMB)
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	for _, line := range strings.SplitAfter(strings.TrimSuffix(table.String(), "\n"), "\n") {
		if _, err := io.WriteString(out, strings.TrimRight(line, " \n")+"\n"); err != nil {
			return err
		}
	}
	return nil
}

// renderNodes writes the cluster's live nodes, one row each.
func renderNodes(out io.Writer, nodes []membership.Node) error {
	if len(nodes) == 0 {
		return nil
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "\nNODE\tADDRESS\tLAST HEARTBEAT\tENVIRONMENTS\tLEASES")
	for _, n := range nodes {
		envs := counts(n.Environments)
		ago := time.Since(n.LastHeartbeat).Round(time.Second)
		fmt.Fprintf(w, "%s\t%s\t%s ago\t%s\t%s\n", n.ID, n.Address, max(ago, 0), envs, counts(n.Leases))
	}
	return w.Flush()
}

// counts renders named counts as "a 1, b 2" ("-" for none).
func counts(m map[string]int) string {
	out := make([]string, 0, len(m))
	for s, c := range m {
		if c > 0 {
			out = append(out, fmt.Sprintf("%s %d", s, c))
		}
	}
	if len(out) == 0 {
		return "-"
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// shortID is an environment id cut to 12 characters, as docker shows ids.
func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
