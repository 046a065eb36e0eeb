package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/jmespath-community/go-jmespath"
	"github.com/jmespath-community/go-jmespath/pkg/parsing"
	"go.yaml.in/yaml/v3"

	"github.com/berthml/berth/internal/diag"
)

// outputFormats lists the values of -o/--output, as az accepts them.
const outputFormats = "json, jsonc, yaml, yamlc, table, tsv, none"

// query is a compiled --query expression.
type query struct {
	expr string
	jp   jmespath.JMESPath
	// keys is the order of the keys of the object the expression builds last
	// ({a: x, b: y}), which tsv and table keep as az does; nil when it builds none.
	keys []string
}

// prepare checks -o and compiles --query before the command does anything.
func (g *globals) prepare() error {
	switch g.output {
	case "json", "jsonc", "yaml", "yamlc", "yml", "table", "tsv", "none":
	default:
		return &diag.Error{Code: diag.BadArgument, Target: "--output",
			Message: fmt.Sprintf("--output %q is not a known format: use one of %s", g.output, outputFormats)}
	}
	if g.queryExpr == "" {
		return nil
	}
	q, err := compileQuery(g.queryExpr)
	if err != nil {
		return err
	}
	g.query = q
	return nil
}

// compileQuery parses a JMESPath expression; an error names the flag and the expression.
func compileQuery(expr string) (*query, error) {
	bad := func(err error) error {
		return &diag.Error{Code: diag.BadArgument, Target: "--query",
			Message: fmt.Sprintf("--query %q is not a valid JMESPath expression: %v", expr, err)}
	}
	jp, err := jmespath.Compile(expr)
	if err != nil {
		return nil, bad(err)
	}
	ast, err := parsing.NewParser().Parse(expr)
	if err != nil {
		return nil, bad(err)
	}
	return &query{expr: expr, jp: jp, keys: hashKeys(ast)}, nil
}

// hashKeys returns the keys, in order, of the multiselect hash that makes the
// expression's result (or each element of it), or nil.
func hashKeys(n parsing.ASTNode) []string {
	switch n.NodeType {
	case parsing.ASTMultiSelectHash:
		keys := make([]string, 0, len(n.Children))
		for _, kv := range n.Children {
			if k, ok := kv.Value.(string); ok {
				keys = append(keys, k)
			}
		}
		return keys
	case parsing.ASTFilterProjection:
		if len(n.Children) >= 2 {
			return hashKeys(n.Children[1])
		}
	case parsing.ASTProjection, parsing.ASTValueProjection, parsing.ASTSubexpression, parsing.ASTPipe, parsing.ASTIndexExpression:
		if len(n.Children) > 0 {
			return hashKeys(n.Children[len(n.Children)-1])
		}
	}
	return nil
}

// print writes a JSON document, after --query, in the chosen output format. columns
// are the fields a table shows, in order (ignored when --query reshapes the document).
func (g *globals) print(w io.Writer, raw json.RawMessage, columns ...string) error {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return fmt.Errorf("decode server answer: %w", err)
	}
	var keys []string
	if q := g.query; q != nil {
		var err error
		if v, err = q.jp.Search(v); err != nil {
			return &diag.Error{Code: diag.BadArgument, Target: "--query",
				Message: fmt.Sprintf("--query %q: %v", q.expr, err)}
		}
		columns, keys = nil, q.keys
	}
	return writeFormat(w, g.output, v, columns, keys)
}

// writeFormat writes v as format. A null result prints nothing, as az prints nothing
// for a command whose result is None. jsonc and yamlc are json and yaml: Berth does
// not color its output.
func writeFormat(w io.Writer, format string, v any, columns, keys []string) error {
	if v == nil || format == "none" {
		return nil
	}
	switch format {
	case "json", "jsonc", "":
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(v); err != nil {
			return fmt.Errorf("encode output: %w", err)
		}
		_, err := w.Write(b.Bytes())
		return err
	case "yaml", "yamlc", "yml":
		b, err := yaml.Marshal(v)
		if err != nil {
			return fmt.Errorf("encode output: %w", err)
		}
		_, err = w.Write(b)
		return err
	case "table":
		return printTable(w, v, columns, keys)
	case "tsv":
		return printTSV(w, v, keys)
	}
	return &diag.Error{Code: diag.BadArgument, Target: "--output",
		Message: fmt.Sprintf("--output %q is not a known format: use one of %s", format, outputFormats)}
}

// printTSV writes v as az -o tsv does (knack's _TsvOutput): a list is one line per
// item, anything else one line. A line of an object is its values in key order (the
// order of the --query {..} hash when it built the object, else sorted, as az sorts a
// plain dict); a line of a list is its items. Within a line a string is bare, null is
// None, a boolean True/False, a nested list its length and a nested object an empty
// field. A bare boolean line is true/false.
func printTSV(w io.Writer, v any, keys []string) error {
	rows, ok := v.([]any)
	if !ok {
		rows = []any{v}
	}
	var b strings.Builder
	for _, r := range rows {
		switch x := r.(type) {
		case map[string]any:
			for i, k := range orderedKeys(x, keys) {
				if i > 0 {
					b.WriteByte('\t')
				}
				b.WriteString(tsvField(x[k]))
			}
		case []any:
			for i, e := range x {
				if i > 0 {
					b.WriteByte('\t')
				}
				b.WriteString(tsvField(e))
			}
		case bool:
			b.WriteString(strconv.FormatBool(x))
		default:
			b.WriteString(tsvField(x))
		}
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// tsvField is one value in a tsv line, written as Python's str() would.
func tsvField(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case string:
		return x
	case bool:
		if x {
			return "True"
		}
		return "False"
	case float64:
		return number(x)
	case []any:
		return strconv.Itoa(len(x))
	case map[string]any:
		return ""
	}
	return fmt.Sprint(v)
}

// number writes a JSON number without a fraction when it has none.
func number(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return strconv.FormatInt(int64(f), 10)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// orderedKeys returns m's keys in the order of keys when they are exactly m's keys,
// else sorted.
func orderedKeys(m map[string]any, keys []string) []string {
	if len(keys) == len(m) {
		all := true
		for _, k := range keys {
			if _, ok := m[k]; !ok {
				all = false
				break
			}
		}
		if all {
			return keys
		}
	}
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func printTable(w io.Writer, v any, columns, keys []string) error {
	rows, ok := v.([]any)
	if !ok {
		rows = []any{v}
	}
	scalar := false
	if len(columns) == 0 && len(rows) > 0 {
		if m, ok := rows[0].(map[string]any); ok {
			columns = orderedKeys(m, keys)
		} else {
			columns, scalar = []string{"result"}, true
		}
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	head := make([]string, len(columns))
	for i, c := range columns {
		head[i] = strings.ToUpper(strings.ReplaceAll(c, "_", " "))
	}
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, r := range rows {
		if scalar {
			fmt.Fprintln(tw, cell(r))
			continue
		}
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
	case float64:
		return number(x)
	case map[string]any:
		keys := orderedKeys(x, nil)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%s=%s", k, cell(x[k]))
		}
		return strings.Join(parts, " ")
	default:
		b, _ := json.Marshal(x)
		return string(b)
	}
}
