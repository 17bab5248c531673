package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"text/tabwriter"
)

const keysUsage = `usage:
  icebox keys create --user NAME --policy FILE   new access key with an identity policy (prints the secret once)
  icebox keys list
  icebox keys delete ACCESS_KEY_ID`

const rolesUsage = `usage:
  icebox roles put NAME --policy FILE   create or replace an execution role (arn:aws:iam::<account>:role/NAME)
  icebox roles list
  icebox roles delete NAME`

// subcommand adds the client flags to fs, parses args and connects.
func subcommand(fs *flag.FlagSet, args []string) (*client, []string, error) {
	connect := clientFlags(fs)
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return nil, nil, err
	}
	c, err := connect()
	return c, rest, err
}

// keysCmd manages access keys on a running server.
func keysCmd(args []string) error {
	if len(args) == 0 {
		return errors.New(keysUsage)
	}
	fs := flag.NewFlagSet("keys "+args[0], flag.ExitOnError)
	user := fs.String("user", "", "user name (create)")
	policyFile := fs.String("policy", "", "identity policy JSON file (create)")
	c, rest, err := subcommand(fs, args[1:])
	if err != nil {
		return err
	}
	ctx := context.Background()
	switch {
	case args[0] == "create" && len(rest) == 0 && *user != "" && *policyFile != "":
		doc, err := os.ReadFile(*policyFile)
		if err != nil {
			return err
		}
		var out struct{ AccessKey map[string]any }
		if err := c.do(ctx, "POST", "/icebox/v1/access-keys", map[string]any{"UserName": *user, "Policy": json.RawMessage(doc)}, &out); err != nil {
			return err
		}
		k := out.AccessKey
		fmt.Printf("user %s (%s)\nAWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\nThe secret is shown only now.\n", k["UserName"], k["Arn"], k["AccessKeyId"], k["SecretAccessKey"])
		return nil
	case args[0] == "list" && len(rest) == 0:
		var out struct {
			AccessKeys []struct{ AccessKeyId, UserName, CreateDate string }
		}
		if err := c.do(ctx, "GET", "/icebox/v1/access-keys", nil, &out); err != nil {
			return err
		}
		w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "ACCESS KEY ID\tUSER\tCREATED")
		for _, k := range out.AccessKeys {
			fmt.Fprintf(w, "%s\t%s\t%s\n", k.AccessKeyId, k.UserName, k.CreateDate)
		}
		return w.Flush()
	case args[0] == "delete" && len(rest) == 1:
		return c.do(ctx, "DELETE", "/icebox/v1/access-keys/"+rest[0], nil, nil)
	}
	return errors.New(keysUsage)
}

// rolesCmd manages execution roles on a running server.
func rolesCmd(args []string) error {
	if len(args) == 0 {
		return errors.New(rolesUsage)
	}
	fs := flag.NewFlagSet("roles "+args[0], flag.ExitOnError)
	policyFile := fs.String("policy", "", "policy JSON file: what functions with this role may do (put)")
	c, rest, err := subcommand(fs, args[1:])
	if err != nil {
		return err
	}
	ctx := context.Background()
	switch {
	case args[0] == "put" && len(rest) == 1 && *policyFile != "":
		doc, err := os.ReadFile(*policyFile)
		if err != nil {
			return err
		}
		var out struct{ Role struct{ Arn string } }
		if err := c.do(ctx, "PUT", "/icebox/v1/roles/"+rest[0], map[string]any{"Policy": json.RawMessage(doc)}, &out); err != nil {
			return err
		}
		fmt.Println(out.Role.Arn)
		return nil
	case args[0] == "list" && len(rest) == 0:
		var out struct {
			Roles []struct{ RoleName, Arn string }
		}
		if err := c.do(ctx, "GET", "/icebox/v1/roles", nil, &out); err != nil {
			return err
		}
		w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "ROLE\tARN")
		for _, r := range out.Roles {
			fmt.Fprintf(w, "%s\t%s\n", r.RoleName, r.Arn)
		}
		return w.Flush()
	case args[0] == "delete" && len(rest) == 1:
		return c.do(ctx, "DELETE", "/icebox/v1/roles/"+rest[0], nil, nil)
	}
	return errors.New(rolesUsage)
}
