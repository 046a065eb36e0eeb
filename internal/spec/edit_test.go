package spec

import (
	"strings"
	"testing"
)

func TestAddAndRemove(t *testing.T) {
	base := "name: blue\nendpoint_name: shop\ninstance_count: 1\nenvironment_variables: {A: x, B: y}\nenvironment:\n  image: python:3.11\n  conda_file: {dependencies: [python=3.11, pip]}\n"
	tests := []struct {
		name  string
		edits []string
		check func(d *Deployment) bool
		err   string
	}{
		{"add a string to a list", []string{AddEdit("environment.conda_file.dependencies", []string{"numpy"})},
			func(d *Deployment) bool { return strings.Contains(strings.Join(deps(d), ","), "pip,numpy") }, ""},
		{"add an object from key=value pairs", []string{AddEdit("environment.conda_file.dependencies", []string{"pip=[sklearn]"})},
			func(d *Deployment) bool { return len(deps(d)) == 3 }, ""},
		{"remove a list item", []string{RemoveEdit("environment.conda_file.dependencies", "0")},
			func(d *Deployment) bool { return strings.Join(deps(d), ",") == "pip" }, ""},
		{"remove a field", []string{RemoveEdit("environment_variables.A", "")},
			func(d *Deployment) bool {
				_, ok := d.EnvironmentVariables["A"]
				return !ok && d.EnvironmentVariables["B"] == "y"
			}, ""},
		{"remove a missing field", []string{RemoveEdit("environment_variables.Z", "")}, nil, "no field environment_variables.Z"},
		{"remove past the end", []string{RemoveEdit("environment.conda_file.dependencies", "9")}, nil, "not an index"},
		{"add to a value", []string{AddEdit("instance_count", []string{"2"})}, nil, "not a list"},
		{"add without a value", []string{AddEdit("environment.conda_file.dependencies", nil)}, nil, "needs a value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := DecodeDeployment("dep.yml", []byte(base), tt.edits)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one saying %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(d) {
				t.Errorf("unexpected result: env %v, deps %v", d.EnvironmentVariables, deps(d))
			}
		})
	}
}

// deps renders the conda dependencies of d for comparison.
func deps(d *Deployment) []string {
	m, _ := d.Environment.CondaFile.(map[string]any)
	list, _ := m["dependencies"].([]any)
	var out []string
	for _, x := range list {
		if s, ok := x.(string); ok {
			out = append(out, s)
		} else {
			out = append(out, "{obj}")
		}
	}
	return out
}
