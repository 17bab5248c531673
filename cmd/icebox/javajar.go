package main

import (
	"errors"
	"fmt"
	"os"

	"icebox/internal/daemon"
	"icebox/runtimes"
)

// javaAPIJarCmd writes the jar of Lambda's Java interfaces
// (com.amazonaws.services.lambda.runtime) that handlers compile against.
func javaAPIJarCmd(args []string) error {
	fs := newFlagSet("java-api-jar")
	out := fs.String("out", "lambda-runtime-api.jar", "where to write the jar")
	if len(parseArgs(fs, args)) != 0 {
		return errors.New("java-api-jar: usage: icebox java-api-jar [--out FILE]")
	}
	dir, err := os.MkdirTemp("", "icebox-java-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := runtimes.Extract(dir); err != nil {
		return err
	}
	if err := runtimes.PrepareJava(dir, daemon.DefaultCacheDir()); err != nil {
		return err
	}
	b, err := os.ReadFile(runtimes.JavaAPIJar(dir))
	if err != nil {
		return fmt.Errorf("java-api-jar: no JDK to build it with (javac missing?): %w", err)
	}
	if err := os.WriteFile(*out, b, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %s: compile handlers with javac -cp %s\n", *out, *out)
	return nil
}
