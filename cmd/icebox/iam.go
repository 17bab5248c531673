package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
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
	rest := parseArgs(fs, args)
	c, err := connect()
	return c, rest, err
}

// verb checks the subcommand of keys or roles (args[0]): --help prints the
// command's help and exits 0; an unknown one is an error with the usage.
func verb(cmd, usage string, args []string, known ...string) error {
	if len(args) > 0 && slices.Contains(known, args[0]) {
		return nil
	}
	if len(args) > 0 && slices.Contains([]string{"-h", "-help", "--help", "help"}, args[0]) {
		parseArgs(newFlagSet(cmd), []string{"--help"})
	}
	if len(args) > 0 {
		return fmt.Errorf("%s: unknown subcommand %q\n%s", cmd, args[0], usage)
	}
	return errors.New(usage)
}

// readPolicy reads a policy document and checks it is JSON, naming the file
// and the line and column of a syntax error.
func readPolicy(path string) (json.RawMessage, error) {
	doc, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			line, col := position(doc, syn.Offset)
			return nil, fmt.Errorf("policy %s:%d:%d: %v", path, line, col, err)
		}
		return nil, fmt.Errorf("policy %s: %w", path, err)
	}
	return doc, nil
}

// position is the 1-based line and column (in bytes) of the byte before
// offset, where encoding/json says a syntax error was found.
func position(doc []byte, offset int64) (line, col int) {
	if offset > int64(len(doc)) {
		offset = int64(len(doc))
	}
	before := doc[:max(offset-1, 0)]
	line = bytes.Count(before, []byte("\n")) + 1
	col = len(before) - bytes.LastIndexByte(before, '\n')
	return line, col
}

// keysCmd manages access keys on a running server.
func keysCmd(args []string) error {
	if err := verb("keys", keysUsage, args, "create", "list", "delete"); err != nil {
		return err
	}
	fs := newFlagSet("keys " + args[0])
	user := fs.String("user", "", "user name (create)")
	policyFile := fs.String("policy", "", "identity policy JSON file (create)")
	c, rest, err := subcommand(fs, args[1:])
	if err != nil {
		return err
	}
	ctx := context.Background()
	switch {
	case args[0] == "create" && len(rest) == 0 && *user != "" && *policyFile != "":
		doc, err := readPolicy(*policyFile)
		if err != nil {
			return err
		}
		var out struct{ AccessKey map[string]any }
		if err := c.do(ctx, "POST", "/icebox/v1/access-keys", map[string]any{"UserName": *user, "Policy": doc}, &out); err != nil {
			return fmt.Errorf("keys create (policy %s): %w", *policyFile, err)
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
	if err := verb("roles", rolesUsage, args, "put", "list", "delete"); err != nil {
		return err
	}
	fs := newFlagSet("roles " + args[0])
	policyFile := fs.String("policy", "", "policy JSON file: what functions with this role may do (put)")
	c, rest, err := subcommand(fs, args[1:])
	if err != nil {
		return err
	}
	ctx := context.Background()
	switch {
	case args[0] == "put" && len(rest) == 1 && *policyFile != "":
		doc, err := readPolicy(*policyFile)
		if err != nil {
			return err
		}
		var out struct{ Role struct{ Arn string } }
		if err := c.do(ctx, "PUT", "/icebox/v1/roles/"+rest[0], map[string]any{"Policy": doc}, &out); err != nil {
			return fmt.Errorf("roles put (policy %s): %w", *policyFile, err)
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
