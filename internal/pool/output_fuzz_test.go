package pool

import (
	"bytes"
	"sync"
	"testing"

	"icebox/internal/model"
	"icebox/internal/telemetry"
)

// FuzzFrames: whatever a function writes to its telemetry descriptor is
// read to the end without a panic, every byte accounted for, and no event
// longer than maxRecord.
func FuzzFrames(f *testing.F) {
	f.Add(frame(0, false, "a\nb"))
	f.Add(append(frame(5, true, `{"level":"ERROR"}`), frame(3, false, "x")...))
	f.Add([]byte("not a frame\nsecond line\n"))
	f.Add(frame(0, false, "cut short")[:20])
	f.Add([]byte{0xA5, 0x5A, 0, 3, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 0, 0, 0, 0, 'x'})
	f.Fuzz(func(t *testing.T, data []byte) {
		sink := &logLines{}
		e := &env{log: sink, hub: telemetry.New(nil), logging: &model.LoggingConfig{LogFormat: "JSON", ApplicationLogLevel: "WARN"}}
		defer e.hub.Close()
		e.pumpCond = sync.NewCond(&e.mu)
		e.pumpFrames(bytes.NewReader(data))
		if !e.tel.ended || e.tel.pumped != int64(len(data)) {
			t.Fatalf("pumped %d of %d bytes, ended %v", e.tel.pumped, len(data), e.tel.ended)
		}
		for _, l := range sink.lines {
			if len(l) > maxRecord {
				t.Fatalf("an event of %d bytes", len(l))
			}
		}
	})
}
