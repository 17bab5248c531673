package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"

	"icebox/internal/errdefs"
)

// Every field of CreateFunction and UpdateFunctionConfiguration is either
// honoured or refused by name: a deploy tool must never believe a KMS
// key took effect when it did not. Empty and default
// values are what tools send when a feature is off (Terraform sends
// VpcConfig with empty lists, TracingConfig PassThrough, SnapStart None),
// so they are accepted, as Lambda accepts them. Keys Lambda does not
// know are ignored, as Lambda's rest-json deserializer ignores them.

// unsupported is the refusal of a field that is set.
func unsupported(field, what string) error {
	return fmt.Errorf("%s: icebox does not support %s: %w", field, what, errdefs.ErrInvalid)
}

type vpcConfig struct {
	SubnetIDs               []string `json:"SubnetIds"`
	SecurityGroupIDs        []string `json:"SecurityGroupIds"`
	Ipv6AllowedForDualStack *bool    `json:"Ipv6AllowedForDualStack"`
}

type tracingConfig struct {
	Mode string `json:"Mode"`
}

type imageConfig struct {
	Command          []string `json:"Command"`
	EntryPoint       []string `json:"EntryPoint"`
	WorkingDirectory *string  `json:"WorkingDirectory"`
}

type snapStart struct {
	ApplyOn string `json:"ApplyOn"`
}

// optionalConfig holds the configuration fields of CreateFunction and
// UpdateFunctionConfiguration that icebox accepts only empty or at their
// defaults. Structures icebox does not model at all stay raw: any value
// but null or {} is refused.
type optionalConfig struct {
	// Layers (layers.go) and VpcConfig (networks.go) are honoured; they
	// are here because both operations take them.
	Layers                 []string          `json:"Layers"`
	VpcConfig              *vpcConfig        `json:"VpcConfig"`
	KMSKeyArn              *string           `json:"KMSKeyArn"`
	TracingConfig          *tracingConfig    `json:"TracingConfig"`
	FileSystemConfigs      []json.RawMessage `json:"FileSystemConfigs"`
	ImageConfig            *imageConfig      `json:"ImageConfig"`
	SnapStart              *snapStart        `json:"SnapStart"`
	CapacityProviderConfig json.RawMessage   `json:"CapacityProviderConfig"`
	DurableConfig          json.RawMessage   `json:"DurableConfig"`
}

// createOnlyConfig holds the fields of that kind only CreateFunction has;
// on an update they are unknown keys, ignored as Lambda ignores them.
type createOnlyConfig struct {
	CodeSigningConfigArn *string         `json:"CodeSigningConfigArn"`
	TenancyConfig        json.RawMessage `json:"TenancyConfig"`
	PublishTo            *string         `json:"PublishTo"`
}

func (c *createOnlyConfig) check() error {
	if c.CodeSigningConfigArn != nil && *c.CodeSigningConfigArn != "" {
		return unsupported("CodeSigningConfigArn", "code signing")
	}
	if given(c.TenancyConfig) {
		return unsupported("TenancyConfig", "tenant isolation")
	}
	if c.PublishTo != nil && *c.PublishTo != "" {
		return unsupported("PublishTo", "publishing to "+*c.PublishTo)
	}
	return nil
}

// given says whether a raw structure carries anything.
func given(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && !bytes.Equal(raw, []byte("null")) && !bytes.Equal(bytes.Join(bytes.Fields(raw), nil), []byte("{}"))
}

// check refuses the first field set to something icebox would not honour.
func (c *optionalConfig) check() error {
	if c.KMSKeyArn != nil && *c.KMSKeyArn != "" {
		return unsupported("KMSKeyArn", "customer managed KMS keys: there is no KMS")
	}
	if t := c.TracingConfig; t != nil {
		switch t.Mode {
		case "", "PassThrough":
		case "Active":
			return unsupported("TracingConfig.Mode", "Active tracing: there is no X-Ray")
		default:
			return validation(t.Mode, "tracingConfig.mode", "Member must satisfy enum value set: [Active, PassThrough]")
		}
	}
	if len(c.FileSystemConfigs) > 0 {
		return unsupported("FileSystemConfigs", "file systems: there is no EFS")
	}
	if ic := c.ImageConfig; ic != nil && (len(ic.Command) > 0 || len(ic.EntryPoint) > 0 || ic.WorkingDirectory != nil && *ic.WorkingDirectory != "") {
		return unsupported("ImageConfig", "container images: only Zip packages")
	}
	if ss := c.SnapStart; ss != nil {
		switch ss.ApplyOn {
		case "", "None":
		case "PublishedVersions":
			return unsupported("SnapStart.ApplyOn", "SnapStart")
		default:
			return validation(ss.ApplyOn, "snapStart.applyOn", "Member must satisfy enum value set: [PublishedVersions, None]")
		}
	}
	for _, f := range []struct {
		field string
		raw   json.RawMessage
		what  string
	}{
		{"CapacityProviderConfig", c.CapacityProviderConfig, "capacity providers (Lambda Managed Instances)"},
		{"DurableConfig", c.DurableConfig, "durable functions"},
	} {
		if given(f.raw) {
			return unsupported(f.field, f.what)
		}
	}
	return nil
}

// checkArchitectures refuses anything but this host's architecture.
func checkArchitectures(archs []string) error {
	if len(archs) > 0 && !slices.Equal(archs, []string{"x86_64"}) {
		return fmt.Errorf("architecture %v is not supported on this host (x86_64 only): %w", archs, errdefs.ErrInvalid)
	}
	return nil
}
