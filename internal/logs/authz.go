package logs

import (
	"bytes"
	"encoding/json"
)

// RequestGroup names the log group a Logs API request body acts on, from
// whichever parameter names it (logGroupName, or logGroupIdentifier as a
// name or an ARN), so a caller is authorized on exactly the group the call
// then reads. It is "" for a call that names none (DescribeLogGroups); an
// error means the call names it badly and will fail anyway.
func RequestGroup(body []byte) (string, error) {
	var g groupRef
	if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &g); err != nil {
			return "", err
		}
	}
	if g.LogGroupName == "" && g.LogGroupIdentifier == "" {
		return "", nil
	}
	return g.name()
}
