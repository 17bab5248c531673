package model_test

import (
	"errors"
	"strings"
	"testing"

	"icebox/internal/errdefs"
	"icebox/internal/model"
)

func TestURLIDs(t *testing.T) {
	seen := map[string]bool{}
	counts := map[rune]int{}
	for range 2000 {
		id := model.NewURLID()
		if !model.ValidURLID(id) || seen[id] {
			t.Fatalf("id %q: valid %v, seen before %v", id, model.ValidURLID(id), seen[id])
		}
		seen[id] = true
		for _, c := range id {
			counts[c]++
		}
	}
	// 64,000 characters over 36 symbols: each near 1,778; a biased draw
	// (the first letters favoured) would show.
	for c, n := range counts {
		if n < 1400 || n > 2200 {
			t.Errorf("%q drawn %d times of 64000", c, n)
		}
	}
	for _, bad := range []string{"", strings.Repeat("a", 31), strings.Repeat("a", 33), strings.Repeat("A", 32), strings.Repeat("a", 31) + "-"} {
		if model.ValidURLID(bad) {
			t.Errorf("%q accepted as a URL id", bad)
		}
	}
}

func TestURLValidate(t *testing.T) {
	ok := model.FunctionURL{AuthType: model.URLAuthNone, InvokeMode: model.InvokeBuffered,
		Cors: &model.URLCors{AllowOrigins: []string{"*"}, AllowMethods: []string{"GET", "*"}, AllowHeaders: []string{""}, MaxAge: 86400}}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, change := range map[string]func(*model.FunctionURL){
		"auth type":         func(u *model.FunctionURL) { u.AuthType = "none" },
		"invoke mode":       func(u *model.FunctionURL) { u.InvokeMode = "" },
		"max age":           func(u *model.FunctionURL) { u.Cors.MaxAge = -1 },
		"empty origin":      func(u *model.FunctionURL) { u.Cors.AllowOrigins = []string{""} },
		"long method":       func(u *model.FunctionURL) { u.Cors.AllowMethods = []string{"OPTIONS"} },
		"101 headers":       func(u *model.FunctionURL) { u.Cors.ExposeHeaders = make([]string, 101) },
		"control character": func(u *model.FunctionURL) { u.Cors.AllowHeaders = []string{"x\n"} },
	} {
		u := ok
		c := *ok.Cors
		u.Cors = &c
		change(&u)
		if err := u.Validate(); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
