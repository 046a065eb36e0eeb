package spec

import (
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Decoding of batch endpoints, batch deployments and computes: the same strict decoding
// as online specs (decode.go), plus the legacy batch deployment layout. Defaults and
// validation are in batchvalidate.go.

// legacySettings are the settings a batch deployment without `type` (the layout before
// CLI 1.7) may write at the YAML root instead of under settings.
var legacySettings = []string{
	"max_concurrency_per_instance", "mini_batch_size", "output_action", "output_file_name",
	"retry_settings", "error_threshold", "logging_level", "environment_variables",
}

// DecodeBatchEndpoint strictly decodes a batch endpoint from YAML or JSON, applies sets
// and defaults, and validates it. source names the origin in messages.
func DecodeBatchEndpoint(source string, data []byte, sets []string) (*BatchEndpoint, error) {
	root, err := parse(source, data, sets)
	if err != nil {
		return nil, err
	}
	p := &problems{source: source}
	var e BatchEndpoint
	if !decodeInto(p, root, &e, "batchEndpoint") {
		return nil, p.err("batch endpoint")
	}
	e.Default()
	e.validate(p)
	if err := p.err("batch endpoint"); err != nil {
		return nil, err
	}
	return &e, nil
}

// LoadBatchEndpoint reads and decodes a batch endpoint YAML file.
func LoadBatchEndpoint(path string, sets []string) (*BatchEndpoint, error) {
	data, err := readSpecFile(path, "batch endpoint")
	if err != nil {
		return nil, err
	}
	return DecodeBatchEndpoint(path, data, sets)
}

// DecodeBatchDeployment strictly decodes a batch deployment from YAML or JSON, applies
// sets, moves the settings of the legacy layout into Settings, applies defaults and
// validates it without touching the file system.
func DecodeBatchDeployment(source string, data []byte, sets []string) (*BatchDeployment, error) {
	d, p, err := decodeBatchDeployment(source, data, sets)
	if err != nil {
		return nil, err
	}
	if err := p.err("batch deployment"); err != nil {
		return nil, err
	}
	return d, nil
}

func decodeBatchDeployment(source string, data []byte, sets []string) (*BatchDeployment, *problems, error) {
	root, err := parse(source, data, sets)
	if err != nil {
		return nil, nil, err
	}
	p := &problems{source: source}
	moveLegacySettings(p, root)
	var d BatchDeployment
	if !decodeInto(p, root, &d, "modelBatchDeployment") {
		return nil, nil, p.err("batch deployment")
	}
	// A count written as 0 is an error, not "take the default".
	zeros := map[string]bool{}
	for _, path := range []string{"resources.instance_count", "settings.max_concurrency_per_instance",
		"settings.mini_batch_size", "settings.retry_settings.timeout"} {
		if n := nodeAt(root, strings.Split(path, ".")); n != nil && n.Tag == "!!int" && n.Value == "0" {
			zeros[path] = true
		}
	}
	d.Default()
	d.validate(p)
	for path := range zeros {
		p.add(path, "must not be 0: leave the field out to take the default, or set a positive value")
	}
	sortProblems(p)
	return &d, p, nil
}

// moveLegacySettings moves the settings a legacy deployment (one without `type`) writes
// at the root into its settings mapping; where both set a key, settings wins. A
// deployment with a type gets one problem per setting left at the root.
func moveLegacySettings(p *problems, root *yaml.Node) {
	legacy := !hasKey(root, "type")
	var moved []*yaml.Node
	kept := make([]*yaml.Node, 0, len(root.Content))
	for i := 0; i+1 < len(root.Content); i += 2 {
		key, val := root.Content[i], root.Content[i+1]
		switch {
		case !isLegacySetting(key.Value):
			kept = append(kept, key, val)
		case legacy:
			moved = append(moved, key, val)
		default:
			p.add(key.Value, "belongs under settings when the deployment has a type: write settings.%s (only the legacy layout, without type, takes it at the root)", key.Value)
		}
	}
	root.Content = kept
	if len(moved) == 0 {
		return
	}
	settings := nodeAt(root, []string{"settings"})
	if settings == nil {
		settings = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		root.Content = append(root.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "settings"}, settings)
	}
	if settings.Kind == yaml.ScalarNode && settings.Tag == "!!null" {
		*settings = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	}
	if settings.Kind != yaml.MappingNode {
		return // decoding reports settings itself
	}
	for i := 0; i+1 < len(moved); i += 2 {
		if !hasKey(settings, moved[i].Value) {
			settings.Content = append(settings.Content, moved[i], moved[i+1])
		}
	}
}

func isLegacySetting(key string) bool {
	for _, k := range legacySettings {
		if k == key {
			return true
		}
	}
	return false
}

// nodeAt returns the value at a path of mapping keys, or nil.
func nodeAt(n *yaml.Node, keys []string) *yaml.Node {
	for _, key := range keys {
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				next = n.Content[i+1]
			}
		}
		n = next
	}
	return n
}

// LoadBatchDeployment reads a batch deployment YAML file, resolves model.path,
// code_configuration.code and environment paths against the file's folder, and checks
// that they exist.
func LoadBatchDeployment(path string, sets []string) (*BatchDeployment, error) {
	data, err := readSpecFile(path, "batch deployment")
	if err != nil {
		return nil, err
	}
	d, p, err := decodeBatchDeployment(path, data, sets)
	if err != nil {
		return nil, err
	}
	// The view shares Model, CodeConfiguration and Environment: resolving its paths
	// resolves d's.
	resolvePaths(p, filepath.Dir(path), d.AsDeployment())
	sortProblems(p)
	if err := p.err("batch deployment"); err != nil {
		return nil, err
	}
	return d, nil
}

// DecodeCompute strictly decodes a compute (amlCompute schema) from YAML or JSON,
// applies sets and defaults, and validates it.
func DecodeCompute(source string, data []byte, sets []string) (*Compute, error) {
	root, err := parse(source, data, sets)
	if err != nil {
		return nil, err
	}
	p := &problems{source: source}
	var c Compute
	if !decodeInto(p, root, &c, "amlCompute") {
		return nil, p.err("compute")
	}
	explicitZeroMax := hasKey(root, "max_instances") && c.MaxInstances == 0
	c.Default()
	c.validate(p)
	if explicitZeroMax {
		p.add("max_instances", "must be between 1 and %d, got 0: a compute needs at least one node", MaxComputeInstances)
	}
	sortProblems(p)
	if err := p.err("compute"); err != nil {
		return nil, err
	}
	return &c, nil
}

// LoadCompute reads and decodes a compute YAML file.
func LoadCompute(path string, sets []string) (*Compute, error) {
	data, err := readSpecFile(path, "compute")
	if err != nil {
		return nil, err
	}
	return DecodeCompute(path, data, sets)
}
