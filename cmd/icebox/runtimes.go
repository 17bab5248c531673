package main

import (
	"errors"
	"fmt"
	"os"
	"text/tabwriter"

	"icebox/runtimes"
)

// runtimesCmd lists the runtime ids this host can run, and why others can't.
func runtimesCmd(args []string) error {
	if len(parseArgs(newFlagSet("runtimes"), args)) != 0 {
		return errors.New("runtimes: usage: icebox runtimes")
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "RUNTIME\tAVAILABLE\tDETAIL")
	for _, s := range runtimes.Statuses() {
		avail := "yes"
		if !s.Available {
			avail = "no"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\n", s.ID, avail, s.Why)
	}
	return w.Flush()
}
