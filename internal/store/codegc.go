package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The object store's layout on its stream (nats.go's, stable since it is the
// cross-client object store format): each object's chunks are messages on
// $O.<bucket>.C.<nuid>, a fresh NUID per upload, and its info is the last
// message on $O.<bucket>.M.<encoded name>, published after the last chunk.
const (
	objStream      = "OBJ_" + codeBucket
	objChunkPrefix = "$O." + codeBucket + ".C."
)

// collectTimeout bounds the deferred collection pass.
const collectTimeout = time.Minute

// collect removes what interrupted uploads and crashes left in the bucket:
//   - chunks no current object info names: an upload killed before it
//     published the info, or the old chunks of an object deleted or replaced
//     by a process killed before it purged them;
//   - with cfg.InUse, complete objects no function refers to: a crash between
//     storing the code and creating the function.
//
// Anything written within cfg.Grace may belong to a CreateFunction still
// running on another node and is left alone; young reports that something was
// left for that reason.
func (s *CodeStore) collect(ctx context.Context) (young bool, err error) {
	info, err := s.stream.Info(ctx, jetstream.WithSubjectFilter(objChunkPrefix+">"))
	if err != nil {
		return false, fmt.Errorf("list chunks: %w", engineErr(err))
	}
	objects, err := s.obs.List(ctx, jetstream.ListObjectsShowDeleted())
	if err != nil && !errors.Is(err, jetstream.ErrNoObjectsFound) {
		return false, fmt.Errorf("list objects: %w", engineErr(err))
	}
	current := make(map[string]bool, len(objects))
	for _, o := range objects {
		if !o.Deleted {
			current[o.NUID] = true
		}
	}
	var orphans, chunks uint64
	for subj, n := range info.State.Subjects {
		if current[strings.TrimPrefix(subj, objChunkPrefix)] {
			continue
		}
		// The info is published right after the last chunk: chunks without
		// one whose last write is recent may be an upload in progress.
		last, err := s.stream.GetLastMsgForSubject(ctx, subj)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // purged meanwhile
		}
		if err != nil {
			return young, fmt.Errorf("last chunk on %s: %w", subj, engineErr(err))
		}
		if time.Since(last.Time) < s.cfg.Grace {
			young = true
			continue
		}
		if err := s.stream.Purge(ctx, jetstream.WithPurgeSubject(subj)); err != nil {
			return young, fmt.Errorf("purge %s: %w", subj, engineErr(err))
		}
		orphans++
		chunks += n
	}
	var unused int
	if s.cfg.InUse != nil {
		for _, o := range objects {
			key, ours := objectKey(o.Name)
			if o.Deleted || !ours || s.cfg.InUse(key) {
				continue
			}
			// Read the time again right before deleting: a Put reusing the
			// object refreshes it before its CreateFunction refers to it.
			cur, err := s.obs.GetInfo(ctx, o.Name)
			if errors.Is(err, jetstream.ErrObjectNotFound) {
				continue
			}
			if err != nil {
				return young, fmt.Errorf("stat %s: %w", o.Name, engineErr(err))
			}
			if time.Since(cur.ModTime) < s.cfg.Grace || s.cfg.InUse(key) {
				young = true
				continue
			}
			if err := s.obs.Delete(ctx, o.Name); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
				return young, fmt.Errorf("delete unused %s: %w", o.Name, engineErr(err))
			}
			unused++
		}
	}
	if orphans > 0 || unused > 0 {
		s.cfg.Log.Info("code store: collected leftovers of interrupted uploads",
			"incomplete_objects", orphans, "chunks", chunks, "unused_objects", unused)
	}
	return young, nil
}
