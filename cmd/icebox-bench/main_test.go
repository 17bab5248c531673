package main

import (
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"icebox/internal/bench"
)

func TestBenchFlags(t *testing.T) {
	o, err := parseBench(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if d := bench.Default(); o.cfg.IdleEnvs != d.IdleEnvs || o.cfg.ColdStarts != d.ColdStarts || o.cfg.Endpoint != "" {
		t.Errorf("defaults: %+v", o.cfg)
	}

	o, err = parseBench([]string{"--full", "--cold", "7", "--duration", "3s", "--json", "--plot", "docs", "--peer-rie", "/opt/aws-lambda-rie"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.cfg.IdleEnvs != 1000 || o.cfg.ColdStarts != 7 || o.cfg.ThroughputTime != 3*time.Second || !o.json || o.plotDir != "docs" ||
		o.cfg.PeerRIE != "/opt/aws-lambda-rie" || len(o.cfg.ScaleFunctions) != 3 {
		t.Errorf("--full with overrides: %+v json=%v plot=%q", o.cfg, o.json, o.plotDir)
	}

	o, err = parseBench([]string{"--only", "cold,load"}, io.Discard)
	if err != nil || !slices.Equal(o.cfg.Only, []string{"cold", "load"}) {
		t.Errorf("--only cold,load: %v %q", err, o.cfg.Only)
	}
	if _, err := parseBench([]string{"--only", "cold,nope"}, io.Discard); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("--only with an unknown group: %v", err)
	}

	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDBENCH")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_REGION", "eu-west-1")
	o, err = parseBench([]string{"--endpoint", "http://127.0.0.1:9070"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.cfg.Endpoint != "http://127.0.0.1:9070" || o.cfg.AccessKeyID != "AKIDBENCH" || o.cfg.SecretAccessKey != "secret" || o.cfg.Region != "eu-west-1" {
		t.Errorf("--endpoint: %+v", o.cfg)
	}

	o, err = parseBench([]string{"--cluster", "--duration", "5s"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !o.cfg.Cluster || o.cfg.ThroughputTime != 5*time.Second || o.cfg.Endpoint != "" {
		t.Errorf("--cluster: %+v", o.cfg)
	}
	if o, _ := parseBench(nil, io.Discard); o.cfg.Cluster {
		t.Error("the cluster rows run without --cluster")
	}
	// The cluster rows start their own nodes: nothing else to measure.
	for _, bad := range [][]string{
		{"--cluster", "--endpoint", "http://127.0.0.1:9070"},
		{"--cluster", "--egress"},
		{"--cluster", "--peer-rie", "/opt/aws-lambda-rie"},
		{"--cluster", "--plot", "docs"}, // nothing to plot: no curves
	} {
		if _, err := parseBench(bad, io.Discard); err == nil {
			t.Errorf("%q was accepted", bad)
		}
	}

	if _, err := parseBench([]string{"extra"}, io.Discard); err == nil {
		t.Error("a stray argument was accepted")
	}
}
