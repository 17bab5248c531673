package model

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"icebox/internal/errdefs"
)

func TestValidateTags(t *testing.T) {
	fifty := map[string]string{}
	for i := range MaxTags {
		fifty[fmt.Sprintf("k%d", i)] = ""
	}
	ok := []map[string]string{nil, {"team": ""}, {strings.Repeat("é", 128): strings.Repeat("é", 256)}, {"x-aws:y": "aws:value"}, fifty}
	for _, tags := range ok {
		if err := ValidateTags(tags); err != nil {
			t.Errorf("%d tags: %v", len(tags), err)
		}
	}
	fiftyOne := map[string]string{"one-more": ""}
	for k, v := range fifty {
		fiftyOne[k] = v
	}
	bad := []map[string]string{{"": "v"}, {strings.Repeat("k", 129): "v"}, {"k": strings.Repeat("v", 257)}, {"aws:x": "v"}, {"Aws:x": "v"}, fiftyOne}
	for _, tags := range bad {
		if err := ValidateTags(tags); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("%.60v: %v, want ErrInvalid", tags, err)
		}
	}
}
