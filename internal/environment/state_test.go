package environment

import (
	"flag"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the package doc's diagram from the transition table")

// Every pair of states: a move succeeds exactly when the table lists it,
// and the observer hears of it.
func TestTransitions(t *testing.T) {
	listed := map[[2]State]bool{}
	for _, tr := range transitions {
		if listed[[2]State{tr.from, tr.to}] {
			t.Errorf("%s → %s listed twice", tr.from, tr.to)
		}
		listed[[2]State{tr.from, tr.to}] = true
	}
	for from := State(0); from < numStates; from++ {
		for to := State(0); to < numStates; to++ {
			var heard [][2]State
			e := New(Config{Observe: func(f, t State) { heard = append(heard, [2]State{f, t}) }})
			e.state = from
			err := e.move(to)
			ok := listed[[2]State{from, to}]
			if ok != (err == nil) {
				t.Errorf("%s → %s: err = %v, listed %v", from, to, err, ok)
			}
			switch {
			case ok && (e.state != to || len(heard) != 1 || heard[0] != [2]State{from, to}):
				t.Errorf("%s → %s: state %s, observer heard %v", from, to, e.state, heard)
			case !ok && (e.state != from || len(heard) != 0):
				t.Errorf("%s → %s refused, yet state %s, observer heard %v", from, to, e.state, heard)
			}
		}
	}
	for s := State(0); s < numStates; s++ {
		if s != Destroyed && !listed[[2]State{s, Destroyed}] {
			t.Errorf("%s cannot be destroyed", s)
		}
		if listed[[2]State{Destroyed, s}] {
			t.Errorf("a destroyed environment comes back as %s", s)
		}
	}
	if (&Env{state: numStates}).move(Idle) == nil {
		t.Error("a move from an unknown state succeeded")
	}
}

// The diagram in the package doc is the transition table's.
func TestDiagram(t *testing.T) {
	const begin, end = "//\n//\tcreating\n", "\n//\n// Each event"
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(doc), begin)
	j := strings.Index(string(doc), end)
	if i < 0 || j < i {
		t.Fatal("doc.go: no diagram block")
	}
	want := "//\n" + diagram()
	if got := string(doc[i:j]); got != want {
		if *update {
			doc = append(doc[:i:i], append([]byte(want), doc[j:]...)...)
			if err := os.WriteFile("doc.go", doc, 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Errorf("doc.go's diagram is not the transition table's; run with -update. Want:\n%s", want)
	}
}

// diagram renders the transition table as comment lines: each state, then
// its moves in table order, the events aligned.
func diagram() string {
	width := 0
	for _, tr := range transitions {
		width = max(width, len(tr.to.String()))
	}
	var b strings.Builder
	for from := State(0); from < numStates; from++ {
		var moves []transition
		for _, tr := range transitions {
			if tr.from == from {
				moves = append(moves, tr)
			}
		}
		if len(moves) == 0 {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("\n")
		}
		b.WriteString("//\t" + from.String())
		for i, tr := range moves {
			branch := "├─► "
			if i == len(moves)-1 {
				branch = "└─► "
			}
			b.WriteString("\n//\t" + branch + tr.to.String() + strings.Repeat(" ", width+2-len(tr.to.String())) + tr.on)
		}
	}
	return b.String()
}

func TestPhases(t *testing.T) {
	want := map[State]string{Creating: "creating", Initializing: "initializing", Idle: "idle", Frozen: "idle",
		HandingOver: "busy", Busy: "busy", Draining: "draining", Destroyed: "destroyed",
		AwaitingExtensions: "initializing", Finishing: "busy", ShuttingDown: "draining"}
	for s := State(0); s < numStates; s++ {
		if s.Phase() != want[s] {
			t.Errorf("%s reported as %q, want %q", s, s.Phase(), want[s])
		}
		if s.TakesCalls() != (s == Idle || s == Frozen || s == Finishing) {
			t.Errorf("%s takes calls: %v", s, s.TakesCalls())
		}
	}
}
