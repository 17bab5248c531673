package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"icebox/internal/errdefs"
	"icebox/internal/model"
	"icebox/internal/store"
)

// TestLayerStore: version numbers are handed out once each, concurrent
// publishes included, and never again after a delete; listings see exactly
// the live versions, an empty bucket included; a version's content counts
// as in use until the version goes.
func TestLayerStore(t *testing.T) {
	ctx := context.Background()
	ls, err := store.OpenLayerStore(ctx, embedded(t))
	if err != nil {
		t.Fatal(err)
	}
	if all, err := ls.List(ctx, ""); err != nil || len(all) != 0 {
		t.Fatalf("empty store: %v %v", all, err)
	}
	var wg sync.WaitGroup
	seen := make(chan int64, 8)
	for range 8 {
		wg.Go(func() {
			lv, err := ls.Publish(ctx, model.LayerVersion{Name: "l", CodeSha256: "c"})
			if err != nil {
				t.Error(err)
				return
			}
			seen <- lv.Version
		})
	}
	wg.Wait()
	close(seen)
	got := map[int64]bool{}
	for v := range seen {
		if got[v] {
			t.Errorf("version %d handed out twice", v)
		}
		got[v] = true
	}
	if _, err := ls.Publish(ctx, model.LayerVersion{Name: "l-other", CodeSha256: "d"}); err != nil {
		t.Fatal(err)
	}
	for v := range int64(8) {
		if err := ls.Delete(ctx, "l", v+1); err != nil {
			t.Fatal(err)
		}
	}
	if err := ls.Delete(ctx, "l", 1); err != nil {
		t.Errorf("deleting a deleted version: %v", err)
	}
	if _, err := ls.Get(ctx, "l", 1); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("deleted version: %v", err)
	}
	if ls.UsesCode("c") || !ls.UsesCode("d") {
		t.Errorf("in use: c %v (all its versions deleted), d %v", ls.UsesCode("c"), ls.UsesCode("d"))
	}
	lv, err := ls.Publish(ctx, model.LayerVersion{Name: "l", CodeSha256: "c"})
	if err != nil || lv.Version != 9 {
		t.Errorf("after deleting every version: %d %v, want 9", lv.Version, err)
	}
	if vs, err := ls.List(ctx, "l"); err != nil || len(vs) != 1 || vs[0].Version != 9 {
		t.Errorf("list l: %+v %v", vs, err)
	}
	if all, err := ls.List(ctx, ""); err != nil || len(all) != 2 || all[0].Name != "l" || all[1].Name != "l-other" {
		t.Errorf("list all: %+v %v", all, err)
	}
}
