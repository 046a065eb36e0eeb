package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"go.yaml.in/yaml/v3"
)

// print writes a JSON document in the chosen output format. columns are the fields a
// table shows, in order.
func (g *globals) print(w io.Writer, raw json.RawMessage, columns ...string) error {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return fmt.Errorf("decode server answer: %w", err)
	}
	switch g.output {
	case "json", "":
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(w, string(b))
		return err
	case "yaml", "yml":
		b, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	case "table":
		return printTable(w, v, columns)
	default:
		return fmt.Errorf("--output %q: use json, yaml or table", g.output)
	}
}

func printTable(w io.Writer, v any, columns []string) error {
	rows, ok := v.([]any)
	if !ok {
		rows = []any{v}
	}
	if len(columns) == 0 && len(rows) > 0 {
		if m, ok := rows[0].(map[string]any); ok {
			for k := range m {
				columns = append(columns, k)
			}
			sort.Strings(columns)
		}
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	head := make([]string, len(columns))
	for i, c := range columns {
		head[i] = strings.ToUpper(strings.ReplaceAll(c, "_", " "))
	}
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, r := range rows {
		m, _ := r.(map[string]any)
		cells := make([]string, len(columns))
		for i, c := range columns {
			cells[i] = cell(m[c])
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

func cell(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%s=%v", k, x[k])
		}
		return strings.Join(parts, " ")
	default:
		b, _ := json.Marshal(x)
		return string(b)
	}
}
