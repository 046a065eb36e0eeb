package spec

import (
	"fmt"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The az CLI's generic update arguments besides --set: --add appends to a list and
// --remove deletes a field or a list item. They travel with the --set overrides, each
// encoded as one string that no command line can produce (it starts with a NUL byte).
const (
	editAdd    = "\x00add\x00"
	editRemove = "\x00remove\x00"
)

// AddEdit encodes `--add path value...`: one value is parsed as YAML (JSON included)
// and appended; several key=value pairs become one object that is appended.
func AddEdit(path string, values []string) string {
	return editAdd + path + "\x00" + strings.Join(values, "\x00")
}

// RemoveEdit encodes `--remove path [index]`: without an index the field at path is
// deleted; with one, that item of the list at path.
func RemoveEdit(path, index string) string {
	return editRemove + path + "\x00" + index
}

// applyEdit applies an --add or --remove edit; ok is false for a plain --set.
func applyEdit(root *yaml.Node, edit string) (ok bool, err error) {
	var op, rest string
	switch {
	case strings.HasPrefix(edit, editAdd):
		op, rest = "--add", strings.TrimPrefix(edit, editAdd)
	case strings.HasPrefix(edit, editRemove):
		op, rest = "--remove", strings.TrimPrefix(edit, editRemove)
	default:
		return false, nil
	}
	parts := strings.Split(rest, "\x00")
	path, args := parts[0], parts[1:]
	if path == "" {
		return true, fmt.Errorf("%s needs a path, e.g. %s environment_variables.NAME", op, op)
	}
	if op == "--add" {
		return true, addTo(root, path, args)
	}
	index := ""
	if len(args) > 0 {
		index = args[0]
	}
	return true, removeAt(root, path, index)
}

// addTo appends a value to the list at path, creating the list (and the mappings on the
// way) when it is missing.
func addTo(root *yaml.Node, path string, args []string) error {
	if len(args) == 0 || (len(args) == 1 && args[0] == "") {
		return fmt.Errorf("--add %s needs a value: a string, JSON, or key=value pairs", path)
	}
	val, err := addValue(args)
	if err != nil {
		return fmt.Errorf("--add %s: %w", path, err)
	}
	keys := strings.Split(path, ".")
	parent, err := walk(root, keys[:len(keys)-1], true, "--add "+path)
	if err != nil {
		return err
	}
	if parent.Kind != yaml.MappingNode {
		return fmt.Errorf("--add %s: %s is not a mapping", path, strings.Join(keys[:len(keys)-1], "."))
	}
	last := keys[len(keys)-1]
	for j := 0; j+1 < len(parent.Content); j += 2 {
		if parent.Content[j].Value != last {
			continue
		}
		list := parent.Content[j+1]
		if list.Tag == "!!null" {
			*list = yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		}
		if list.Kind != yaml.SequenceNode {
			return fmt.Errorf("--add %s: %s is not a list; use --set to change a value", path, path)
		}
		list.Content = append(list.Content, val)
		return nil
	}
	parent.Content = append(parent.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: last},
		&yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: []*yaml.Node{val}})
	return nil
}

// addValue is what --add appends: key=value pairs make an object; one other argument
// is parsed as YAML (so JSON works), falling back to a string.
func addValue(args []string) (*yaml.Node, error) {
	pairs := true
	for _, a := range args {
		if k, _, ok := strings.Cut(a, "="); !ok || k == "" || strings.ContainsAny(k, " {[") {
			pairs = false
		}
	}
	if pairs {
		obj := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		for _, a := range args {
			k, v, _ := strings.Cut(a, "=")
			obj.Content = append(obj.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k}, scalarOrYAML(v))
		}
		return obj, nil
	}
	if len(args) > 1 {
		return nil, fmt.Errorf("give one value, or key=value pairs; got %q", strings.Join(args, " "))
	}
	return scalarOrYAML(args[0]), nil
}

func scalarOrYAML(s string) *yaml.Node {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(s), &doc); err != nil || len(doc.Content) == 0 {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
	}
	return doc.Content[0]
}

// removeAt deletes the field at path, or item index of the list at path.
func removeAt(root *yaml.Node, path, index string) error {
	keys := strings.Split(path, ".")
	if index != "" {
		list, err := walk(root, keys, false, "--remove "+path)
		if err != nil {
			return err
		}
		i, err := strconv.Atoi(index)
		if list.Kind != yaml.SequenceNode || err != nil || i < 0 || i >= len(list.Content) {
			return fmt.Errorf("--remove %s %s: %s is not an index of the list at %s", path, index, index, path)
		}
		list.Content = append(list.Content[:i], list.Content[i+1:]...)
		return nil
	}
	parent, err := walk(root, keys[:len(keys)-1], false, "--remove "+path)
	if err != nil {
		return err
	}
	last := keys[len(keys)-1]
	for j := 0; j+1 < len(parent.Content); j += 2 {
		if parent.Kind == yaml.MappingNode && parent.Content[j].Value == last {
			parent.Content = append(parent.Content[:j], parent.Content[j+2:]...)
			return nil
		}
	}
	return fmt.Errorf("--remove %s: there is no field %s", path, path)
}

// walk follows keys (mapping keys or list indexes) from root; with create, missing
// mappings are made on the way.
func walk(root *yaml.Node, keys []string, create bool, what string) (*yaml.Node, error) {
	node := root
	for i, key := range keys {
		switch node.Kind {
		case yaml.MappingNode:
			var child *yaml.Node
			for j := 0; j+1 < len(node.Content); j += 2 {
				if node.Content[j].Value == key {
					child = node.Content[j+1]
				}
			}
			if child == nil || (child.Tag == "!!null" && create) {
				if !create {
					return nil, fmt.Errorf("%s: there is no field %s", what, strings.Join(keys[:i+1], "."))
				}
				if child == nil {
					child = &yaml.Node{}
					node.Content = append(node.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, child)
				}
				*child = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
			}
			node = child
		case yaml.SequenceNode:
			idx, err := strconv.Atoi(key)
			if err != nil || idx < 0 || idx >= len(node.Content) {
				return nil, fmt.Errorf("%s: %q is not an index of the list at %s", what, key, strings.Join(keys[:i], "."))
			}
			node = node.Content[idx]
		default:
			return nil, fmt.Errorf("%s: %s is a value, not a mapping", what, strings.Join(keys[:i], "."))
		}
	}
	return node, nil
}
