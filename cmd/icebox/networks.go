package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
)

const networksUsage = `usage:
  icebox networks put NAME --cidr CIDR[,CIDR…] [--allow CIDR[,CIDR…]] [--nat]   create or replace a network (a subnet id for VpcConfig)
  icebox networks list
  icebox networks delete NAME`

// networksCmd manages the networks functions join through VpcConfig.
func networksCmd(args []string) error {
	if err := verb("networks", networksUsage, args, "put", "list", "delete"); err != nil {
		return err
	}
	fs := newFlagSet("networks " + args[0])
	cidrs := fs.String("cidr", "", "the network's own ranges, comma-separated (put)")
	allow := fs.String("allow", "", "further ranges its functions may reach, comma-separated (put)")
	nat := fs.Bool("nat", false, "its functions reach the internet too, under the server's default policy (put)")
	c, rest, err := subcommand(fs, args[1:])
	if err != nil {
		return err
	}
	ctx := context.Background()
	switch {
	case args[0] == "put" && len(rest) == 1 && *cidrs != "":
		in := map[string]any{"Cidrs": splitList(*cidrs), "Allow": splitList(*allow), "Nat": *nat}
		var out struct{ Network network }
		if err := c.do(ctx, "PUT", "/icebox/v1/networks/"+rest[0], in, &out); err != nil {
			return fmt.Errorf("networks put %s: %w", rest[0], err)
		}
		return printNetworks([]network{out.Network})
	case args[0] == "list" && len(rest) == 0:
		var out struct{ Networks []network }
		if err := c.do(ctx, "GET", "/icebox/v1/networks", nil, &out); err != nil {
			return err
		}
		return printNetworks(out.Networks)
	case args[0] == "delete" && len(rest) == 1:
		return c.do(ctx, "DELETE", "/icebox/v1/networks/"+rest[0], nil, nil)
	}
	return errors.New(networksUsage)
}

type network struct {
	Name, VpcId  string
	Cidrs, Allow []string
	Nat          bool
}

func printNetworks(nets []network) error {
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NETWORK\tCIDRS\tALLOW\tNAT")
	for _, n := range nets {
		fmt.Fprintf(w, "%s\t%s\t%s\t%v\n", n.Name, strings.Join(n.Cidrs, ","), strings.Join(n.Allow, ","), n.Nat)
	}
	return w.Flush()
}

// splitList splits a comma-separated flag, dropping empty items.
func splitList(s string) []string {
	out := []string{}
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
