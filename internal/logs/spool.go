package logs

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The spool keeps log events on disk while the engine cannot store them,
// and ships them once it can: an engine outage costs no lines until the
// spool is full (SpoolBytes), and then the lines dropped are counted.
//
//	publish fails ──▶ spooling: the publisher appends every batch to spool/events
//	shipper (every second while spooling): events ──rename──▶ shipping ──publish──▶ LOGS
//	        all stored: shipping removed; spool empty ──▶ back to publishing directly
//
// Delivery is at least once: a batch whose acknowledgement timed out may have
// been stored and is spooled anyway, and a crash while shipping ships the
// file again on the next start. Events shipped from the spool are not
// accounted to their group's byte budget until the store is opened again
// (the stream's own total still bounds them).

const (
	spoolFile    = "events"
	shippingFile = "shipping"
	// spooledSeq marks, in settle's seqs, an event written to the spool.
	spooledSeq = math.MaxUint64
	// shipEvery is how often the shipper tries the engine while spooling.
	shipEvery = time.Second
)

type spool struct {
	dir string
	max int64

	mu sync.Mutex
	f  *os.File // spoolFile opened for append; nil until the first write
	// size counts the bytes in spoolFile and shippingFile together.
	size int64
	// active is set while events go to the spool instead of JetStream.
	active bool
}

// openSpool opens dir, picking up what a previous run left to ship.
func openSpool(dir string, max int64) (*spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("logs: spool: %w", err)
	}
	sp := &spool{dir: dir, max: max}
	for _, name := range []string{spoolFile, shippingFile} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err == nil {
			sp.size += fi.Size()
		}
	}
	sp.active = sp.size > 0
	return sp, nil
}

func (sp *spool) spooling() bool {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return sp.active
}

// append writes events in order while they fit and turns spooling on; it
// returns how many it wrote.
func (sp *spool) append(batch []event) (int, error) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	sp.active = true
	if sp.f == nil {
		f, err := os.OpenFile(filepath.Join(sp.dir, spoolFile), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return 0, fmt.Errorf("logs: spool: %w", err)
		}
		sp.f = f
	}
	var buf []byte
	n := 0
	for _, e := range batch {
		rec := recordSize(e)
		if sp.size+int64(len(buf)+rec) > sp.max {
			break
		}
		buf = appendRecord(buf, e.subject, e.data)
		n++
	}
	if _, err := sp.f.Write(buf); err != nil {
		return 0, fmt.Errorf("logs: spool: %w", err)
	}
	sp.size += int64(len(buf))
	return n, nil
}

func recordSize(e event) int { return 2*binary.MaxVarintLen32 + len(e.subject) + len(e.data) }

func appendRecord(buf []byte, subject string, data []byte) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(subject)))
	buf = append(buf, subject...)
	buf = binary.AppendUvarint(buf, uint64(len(data)))
	return append(buf, data...)
}

// take returns the file to ship next: a shipping file left by a failed or
// interrupted shipment, else the spool file renamed to one. "" when empty.
func (sp *spool) take() (string, error) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	shipping := filepath.Join(sp.dir, shippingFile)
	if _, err := os.Stat(shipping); err == nil {
		return shipping, nil
	}
	if sp.f != nil {
		sp.f.Close()
		sp.f = nil
	}
	err := os.Rename(filepath.Join(sp.dir, spoolFile), shipping)
	if errors.Is(err, os.ErrNotExist) {
		sp.active = sp.size > 0
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("logs: spool: %w", err)
	}
	return shipping, nil
}

// shipped replaces the shipping file with the records left (none: removes
// it), and ends spooling once nothing is left anywhere.
func (sp *spool) shipped(path string, before int64, left []byte) error {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	var err error
	if len(left) == 0 {
		err = os.Remove(path)
	} else {
		tmp := path + ".tmp"
		if err = os.WriteFile(tmp, left, 0o600); err == nil {
			err = os.Rename(tmp, path)
		}
	}
	if err != nil {
		return fmt.Errorf("logs: spool: %w", err)
	}
	sp.size -= before - int64(len(left))
	if sp.size == 0 {
		sp.active = false
	}
	return nil
}

func (sp *spool) close() {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.f != nil {
		sp.f.Close()
		sp.f = nil
	}
}

// spill writes a batch to the spool and settles it: spooled events are
// neither stored nor dropped yet; those that did not fit are dropped.
func (s *Store) spill(batch []event) {
	n, err := s.spool.append(batch)
	if err != nil {
		s.log.Warn("log events could not be spooled", "err", err)
	}
	seqs := make([]uint64, len(batch))
	for i := range n {
		seqs[i] = spooledSeq
	}
	s.settle(batch, seqs, uint64(len(batch)-n))
}

// shipper ships the spool while spooling, until ctx ends.
func (s *Store) shipper(ctx context.Context) {
	t := time.NewTicker(shipEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for s.spool.spooling() && ctx.Err() == nil {
			shipped, err := s.shipOnce(ctx)
			if err != nil {
				break // the engine is still away; next tick
			}
			if shipped > 0 {
				s.log.Info("spooled log events shipped", "events", shipped)
			}
		}
	}
}

// shipOnce publishes one shipping file, keeping the records that failed.
func (s *Store) shipOnce(ctx context.Context) (int, error) {
	path, err := s.spool.take()
	if err != nil || path == "" {
		return 0, err
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("logs: spool: %w", err)
	}
	r := bufio.NewReader(bytes.NewReader(raw))
	var left []byte
	shipped := 0
	var firstErr error
	for {
		// A chunk in flight at a time, as the publisher does.
		var chunk []event
		for len(chunk) < publishBatch {
			subj, data, err := readRecord(r)
			if err != nil {
				break // end, or a record cut short by a crash: dropped
			}
			chunk = append(chunk, event{subject: subj, data: data})
		}
		if len(chunk) == 0 {
			break
		}
		if firstErr != nil {
			for _, e := range chunk {
				left = appendRecord(left, e.subject, e.data)
			}
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, s.cfg.PublishTimeout)
		futures := make([]jetstream.PubAckFuture, len(chunk))
		for i, e := range chunk {
			futures[i], _ = s.js.PublishMsgAsync(&nats.Msg{Subject: e.subject, Data: e.data})
		}
		for i, f := range futures {
			ok := false
			if f != nil {
				select {
				case <-f.Ok():
					ok = true
				case err := <-f.Err():
					firstErr = cmpErr(firstErr, err)
				case <-pctx.Done():
					firstErr = cmpErr(firstErr, pctx.Err())
				}
			} else {
				firstErr = cmpErr(firstErr, errors.New("publish refused"))
			}
			if ok {
				shipped++
			} else {
				left = appendRecord(left, chunk[i].subject, chunk[i].data)
			}
		}
		cancel()
	}
	if err := s.spool.shipped(path, int64(len(raw)), left); err != nil {
		return shipped, err
	}
	return shipped, firstErr
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

func readRecord(r *bufio.Reader) (string, []byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil || n > 1<<20 {
		return "", nil, cmpErr(err, io.ErrUnexpectedEOF)
	}
	subj := make([]byte, n)
	if _, err := io.ReadFull(r, subj); err != nil {
		return "", nil, err
	}
	if n, err = binary.ReadUvarint(r); err != nil || n > MaxEventBytes+64 {
		return "", nil, cmpErr(err, io.ErrUnexpectedEOF)
	}
	data := make([]byte, n)
	if _, err := io.ReadFull(r, data); err != nil {
		return "", nil, err
	}
	return string(subj), data, nil
}
