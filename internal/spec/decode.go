package spec

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/berthml/berth/internal/diag"
)

// problems collects field errors for one document.
type problems struct {
	source string
	list   []*diag.Error
}

func (p *problems) add(field, format string, args ...any) {
	p.list = append(p.list, &diag.Error{Code: diag.BadArgument, Target: field, Message: fmt.Sprintf(format, args...)})
}

// err returns nil or one BadArgument error whose details are every problem.
func (p *problems) err(kind string) error {
	if len(p.list) == 0 {
		return nil
	}
	noun := "problem"
	if len(p.list) > 1 {
		noun = "problems"
	}
	msg := fmt.Sprintf("%s: invalid %s spec, %d %s", p.source, kind, len(p.list), noun)
	if len(p.list) == 1 {
		d := p.list[0]
		msg = fmt.Sprintf("%s: invalid %s spec: %s: %s", p.source, kind, d.Target, d.Message)
	}
	return &diag.Error{Code: diag.BadArgument, Message: msg, Target: p.source, Details: p.list}
}

// parse reads YAML (or JSON) into a node tree and applies sets.
func parse(source string, data []byte, sets []string) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, &diag.Error{Code: diag.BadArgument, Target: source,
			Message: fmt.Sprintf("%s is not valid YAML: %v", source, err)}
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		doc = yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{{Kind: yaml.MappingNode, Tag: "!!map"}}}
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, &diag.Error{Code: diag.BadArgument, Target: source,
			Message: fmt.Sprintf("%s: the document must be a mapping of fields (name: ..., endpoint_name: ...)", source)}
	}
	if err := checkShape(source, root); err != nil {
		return nil, err
	}
	for _, s := range sets {
		if err := applySet(root, s); err != nil {
			return nil, &diag.Error{Code: diag.BadArgument, Target: "--set", Message: err.Error()}
		}
	}
	return root, nil
}

// ApplySets applies --set path.to.field=value overrides to v, a value decoded from YAML,
// the way az ml applies them to a YAML file: each value is parsed as YAML, missing
// mappings are created, and a path v does not have is an error naming the field.
func ApplySets(v any, sets []string) error {
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
		if err := applySet(root, s); err != nil {
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

// applySet sets path=value in a mapping tree, creating missing mappings.
func applySet(root *yaml.Node, set string) error {
	if edited, err := applyEdit(root, set); edited {
		return err
	}
	path, value, ok := strings.Cut(set, "=")
	if !ok || path == "" {
		return fmt.Errorf("--set %q: write it as path.to.field=value", set)
	}
	var val yaml.Node
	if err := yaml.Unmarshal([]byte(value), &val); err != nil || len(val.Content) == 0 {
		val = yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{{Kind: yaml.ScalarNode, Tag: "!!str", Value: value}}}
	}
	newVal := val.Content[0]
	parts := strings.Split(path, ".")
	what, at := fmt.Sprintf("--set %q", set), strings.Join(parts[:len(parts)-1], ".")
	parent, err := walk(root, parts[:len(parts)-1], true, what)
	if err != nil {
		return err
	}
	last := parts[len(parts)-1]
	switch parent.Kind {
	case yaml.MappingNode:
		for j := 0; j+1 < len(parent.Content); j += 2 {
			if parent.Content[j].Value == last {
				parent.Content[j+1] = newVal
				return nil
			}
		}
		parent.Content = append(parent.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: last}, newVal)
	case yaml.SequenceNode:
		idx, err := strconv.Atoi(last)
		if err != nil || idx < 0 || idx >= len(parent.Content) {
			return fmt.Errorf("%s: %q is not an index of the list at %s", what, last, at)
		}
		parent.Content[idx] = newVal
	default:
		return fmt.Errorf("%s: %s is a value, not a mapping", what, at)
	}
	return nil
}

// unknownFields lists the field paths in n that typ does not have, and adds a problem
// for each scalar of the wrong type.
func unknownFields(n *yaml.Node, typ reflect.Type, prefix string, out *[]string, p *problems) {
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	field := strings.TrimSuffix(prefix, ".")
	if typ == reflect.TypeOf(Toggle(false)) {
		if _, ok := parseToggle(n.Value); n.Kind != yaml.ScalarNode || !ok {
			p.add(field, "must be true or false ('True' and 'False' too), got %s", describe(n))
		}
		return
	}
	switch typ.Kind() {
	case reflect.Float64:
		if n.Kind != yaml.ScalarNode || (n.Tag != "!!float" && n.Tag != "!!int") {
			p.add(field, "must be a number, got %s", describe(n))
		}
	case reflect.Int, reflect.Int64:
		switch {
		case n.Kind == yaml.ScalarNode && n.Tag == "!!int":
		case n.Kind == yaml.ScalarNode && bigInteger(n.Value):
			p.add(field, "must be a whole number within the field's range, got %s, which does not fit in 64 bits", n.Value)
		default:
			p.add(field, "must be a whole number, got %s", describe(n))
		}
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
			p.add(field, "must be true or false, got %s", describe(n))
		}
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			p.add(field, "must be a string, got %s", describe(n))
		}
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			refType := typ == reflect.TypeOf(Model{}) || typ == reflect.TypeOf(Environment{})
			if n.Tag != "!!null" && !(refType && n.Kind == yaml.ScalarNode && n.Tag == "!!str") {
				p.add(field, "must be a mapping of fields, got %s", describe(n))
			}
			return
		}
		fields := map[string]reflect.Type{}
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name != "" && name != "-" {
				fields[name] = f.Type
			}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := n.Content[i].Value
			ft, ok := fields[key]
			if !ok {
				*out = append(*out, prefix+key)
				continue
			}
			unknownFields(n.Content[i+1], ft, prefix+key+".", out, p)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			if !(n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
				p.add(field, "must be a mapping of key: value, got %s", describe(n))
			}
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			unknownFields(n.Content[i+1], typ.Elem(), prefix+n.Content[i].Value+".", out, p)
		}
	}
}

// decodeInto checks for unknown fields and decodes root into v.
func decodeInto(p *problems, root *yaml.Node, v any, schema string) bool {
	var unknown []string
	before := len(p.list)
	unknownFields(root, reflect.TypeOf(v), "", &unknown, p)
	typeProblems := len(p.list) > before
	if len(unknown) > 0 {
		sort.Strings(unknown)
		const shown = 20
		list := strings.Join(unknown[:min(len(unknown), shown)], ", ")
		if len(unknown) > shown {
			list += fmt.Sprintf(" and %d more", len(unknown)-shown)
		}
		p.add(list, "unknown fields: %s; check the spelling against the Azure ML %s schema", list, schema)
	}
	if typeProblems {
		return false
	}
	if err := root.Decode(v); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			for _, e := range te.Errors {
				p.add(lineOf(e), "%s", typeMessage(e))
			}
		} else {
			p.add("", "%v", err)
		}
		return false
	}
	return true
}

// mapping returns the mapping under key in m, or nil.
func mapping(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key && m.Content[i+1].Kind == yaml.MappingNode {
			return m.Content[i+1]
		}
	}
	return nil
}

func hasKey(m *yaml.Node, key string) bool {
	if m == nil {
		return false
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return true
		}
	}
	return false
}

// bigInteger reports whether s is written as a whole number (digits with an optional
// sign), as YAML reads one too large for 64 bits.
func bigInteger(s string) bool {
	s = strings.TrimLeft(s, "+-")
	return s != "" && strings.Trim(s, "0123456789") == ""
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return fmt.Sprintf("%q", n.Value)
}

func lineOf(e string) string {
	if strings.HasPrefix(e, "line ") {
		if i := strings.Index(e, ":"); i > 0 {
			return e[:i]
		}
	}
	return ""
}

func typeMessage(e string) string {
	if i := strings.Index(e, ": "); strings.HasPrefix(e, "line ") && i > 0 {
		e = e[i+2:]
	}
	return e + ": give the field a value of the right type"
}

// DecodeEndpoint strictly decodes an endpoint from YAML or JSON, applies sets and
// defaults, and validates it. source names the origin in messages.
func DecodeEndpoint(source string, data []byte, sets []string) (*Endpoint, error) {
	root, err := parse(source, data, sets)
	if err != nil {
		return nil, err
	}
	p := &problems{source: source}
	var e Endpoint
	if !decodeInto(p, root, &e, "managedOnlineEndpoint") {
		return nil, p.err("endpoint")
	}
	e.Default()
	e.validate(p)
	if err := p.err("endpoint"); err != nil {
		return nil, err
	}
	return &e, nil
}

// DecodeDeployment strictly decodes a deployment from YAML or JSON, applies sets and
// defaults, and validates it without touching the file system.
func DecodeDeployment(source string, data []byte, sets []string) (*Deployment, error) {
	d, p, err := decodeDeployment(source, data, sets)
	if err != nil {
		return nil, err
	}
	if err := p.err("deployment"); err != nil {
		return nil, err
	}
	return d, nil
}

func decodeDeployment(source string, data []byte, sets []string) (*Deployment, *problems, error) {
	root, err := parse(source, data, sets)
	if err != nil {
		return nil, nil, err
	}
	p := &problems{source: source}
	var d Deployment
	if !decodeInto(p, root, &d, "managedOnlineDeployment") {
		return nil, nil, p.err("deployment")
	}
	// An instance_count written as 0 is an error, not "take the default".
	explicitZero := hasKey(root, "instance_count") && d.InstanceCount == 0
	// So is a sampling_rate written as 0: it would collect nothing.
	zeroRate := d.DataCollector != nil && d.DataCollector.SamplingRate == 0 && hasKey(mapping(root, "data_collector"), "sampling_rate")
	d.Default()
	d.validate(p)
	if explicitZero {
		p.add("instance_count", "must be between 1 and %d, got 0: a deployment needs at least one instance", MaxInstanceCount)
	}
	if zeroRate {
		p.add("data_collector.sampling_rate", "must be greater than 0 and at most 1 (the share of requests collected), got 0: remove data_collector or disable its collections to collect nothing")
	}
	return &d, p, nil
}

// LoadEndpoint reads and decodes an endpoint YAML file.
func LoadEndpoint(path string, sets []string) (*Endpoint, error) {
	data, err := readSpecFile(path, "endpoint")
	if err != nil {
		return nil, err
	}
	return DecodeEndpoint(path, data, sets)
}
