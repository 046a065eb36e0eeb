package cli

import (
	"bytes"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/berthml/berth/internal/diag"
)

// applySets applies --set path.to.field=value overrides to v, a struct decoded from
// YAML, the way az ml applies them to a YAML file: the value is parsed as YAML, missing
// mappings are created, and a path v does not have is an error naming the field.
func applySets(v any, sets []string) error {
	if len(sets) == 0 {
		return nil
	}
	b, err := yaml.Marshal(v)
	if err != nil {
		return fmt.Errorf("apply --set: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("apply --set: %w", err)
	}
	root := doc.Content[0]
	for _, s := range sets {
		if err := setPath(root, s); err != nil {
			return &diag.Error{Code: diag.BadArgument, Target: "--set", Message: err.Error()}
		}
	}
	out, err := yaml.Marshal(root)
	if err != nil {
		return fmt.Errorf("apply --set: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(out))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		return &diag.Error{Code: diag.BadArgument, Target: "--set", Message: fmt.Sprintf("--set %s: %v", strings.Join(sets, " "), err)}
	}
	return nil
}

// setPath sets path=value in a tree of mappings, creating the missing ones.
func setPath(root *yaml.Node, set string) error {
	path, value, ok := strings.Cut(set, "=")
	if !ok || path == "" {
		return fmt.Errorf("--set %q: write it as path.to.field=value", set)
	}
	var val yaml.Node
	if err := yaml.Unmarshal([]byte(value), &val); err != nil || len(val.Content) == 0 {
		val = yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{{Kind: yaml.ScalarNode, Tag: "!!str", Value: value}}}
	}
	node := root
	parts := strings.Split(path, ".")
	for i, key := range parts {
		if node.Kind != yaml.MappingNode {
			return fmt.Errorf("--set %q: %s is not a mapping", set, strings.Join(parts[:i], "."))
		}
		var child *yaml.Node
		for j := 0; j+1 < len(node.Content); j += 2 {
			if node.Content[j].Value == key {
				child = node.Content[j+1]
				if i == len(parts)-1 {
					node.Content[j+1] = val.Content[0]
				}
				break
			}
		}
		if child != nil && child.Tag == "!!null" && i < len(parts)-1 {
			*child = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		}
		if child == nil {
			child = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
			if i == len(parts)-1 {
				child = val.Content[0]
			}
			node.Content = append(node.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, child)
		}
		node = child
	}
	return nil
}
