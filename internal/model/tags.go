package model

import (
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	"icebox/internal/errdefs"
)

// Lambda's limits on a function's tags.
const (
	MaxTags           = 50
	MaxTagKeyChars    = 128
	MaxTagValueChars  = 256
	reservedTagPrefix = "aws:"
)

// ValidateTags checks tags a caller gives (CreateFunction, TagResource):
// key and value lengths in characters, and the aws: prefix AWS keeps for
// itself in any case. The count is checked on the merged set (CheckTagCount).
func ValidateTags(tags map[string]string) error {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys) // one message for one request, whatever the map order
	for _, k := range keys {
		if n := utf8.RuneCountInString(k); n < 1 || n > MaxTagKeyChars {
			return fmt.Errorf("1 validation error detected: Value at 'tags' failed to satisfy constraint: Map keys must satisfy constraint: [Member must have length less than or equal to %d, Member must have length greater than or equal to 1] (key %q): %w", MaxTagKeyChars, k, errdefs.ErrInvalid)
		}
		if strings.HasPrefix(strings.ToLower(k), reservedTagPrefix) {
			return fmt.Errorf("Tag key %q uses the reserved prefix aws:, which is for AWS's own tags: %w", k, errdefs.ErrInvalid)
		}
		if utf8.RuneCountInString(tags[k]) > MaxTagValueChars {
			return fmt.Errorf("1 validation error detected: Value at 'tags' failed to satisfy constraint: Map value must satisfy constraint: [Member must have length less than or equal to %d] (key %q): %w", MaxTagValueChars, k, errdefs.ErrInvalid)
		}
	}
	return CheckTagCount(len(tags))
}

// CheckTagCount refuses a function with more than Lambda's 50 tags.
func CheckTagCount(n int) error {
	if n > MaxTags {
		return fmt.Errorf("The number of tags (%d) exceeds the limit of %d tags per resource: %w", n, MaxTags, errdefs.ErrInvalid)
	}
	return nil
}

// ValidateTagKeys checks the keys an UntagResource names.
func ValidateTagKeys(keys []string) error {
	for _, k := range keys {
		if n := utf8.RuneCountInString(k); n < 1 || n > MaxTagKeyChars {
			return fmt.Errorf("1 validation error detected: Value at 'tagKeys' failed to satisfy constraint: Member must satisfy constraint: [Member must have length less than or equal to %d, Member must have length greater than or equal to 1] (key %q): %w", MaxTagKeyChars, k, errdefs.ErrInvalid)
		}
	}
	return nil
}
