package cli

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/berthml/berth/internal/artifacts/archive"
	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/wire"
)

const (
	endpointA = `{"name":"a","auth_mode":"key","provisioning_state":"Succeeded","scoring_uri":"http://127.0.0.1:8000/endpoints/a/score","traffic":{"blue":100},"tags":{}}`
	endpointB = `{"name":"b","auth_mode":"key","provisioning_state":"Creating","scoring_uri":"http://127.0.0.1:8000/endpoints/b/score","traffic":{},"tags":{}}`
)

func TestQueryWithTSV(t *testing.T) {
	f := newFakeServer(t, map[string]answer{
		"GET /endpoints/a":           {body: endpointA},
		"GET /endpoints":             {body: "[" + endpointA + "," + endpointB + "]"},
		"POST /endpoints/a/listkeys": {body: `{"primaryKey":"k1","secondaryKey":"k2"}`},
	})
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"online-endpoint", "show", "-n", "a", "--query", "provisioning_state", "-o", "tsv"}, "Succeeded\n"},
		{[]string{"online-endpoint", "show", "-n", "a", "--query", "scoring_uri", "-o", "tsv"}, "http://127.0.0.1:8000/endpoints/a/score\n"},
		{[]string{"online-endpoint", "show", "-n", "a", "--query", "traffic", "-o", "tsv"}, "100\n"},
		{[]string{"online-endpoint", "show", "-n", "a", "--query", "missing", "-o", "tsv"}, ""},
		{[]string{"online-endpoint", "list", "--query", "[].name", "-o", "tsv"}, "a\nb\n"},
		{[]string{"online-endpoint", "list", "--query", "[?provisioning_state=='Creating'].name", "-o", "tsv"}, "b\n"},
		// A {..} hash keeps its order, as az keeps the OrderedDict --query builds.
		{[]string{"online-endpoint", "list", "--query", "[].{state: provisioning_state, name: name}", "-o", "tsv"}, "Succeeded\ta\nCreating\tb\n"},
		{[]string{"online-endpoint", "list", "--query", "[].[name, provisioning_state]", "-o", "tsv"}, "a\tSucceeded\nb\tCreating\n"},
		{[]string{"online-endpoint", "list", "--query", "length(@)", "-o", "tsv"}, "2\n"},
		{[]string{"online-endpoint", "get-credentials", "-n", "a", "-o", "tsv", "--query", "primaryKey"}, "k1\n"},
		{[]string{"online-endpoint", "get-credentials", "-n", "a", "-o", "tsv"}, "k1\tk2\n"},
		{[]string{"online-endpoint", "get-credentials", "-n", "a", "--query", "secondaryKey"}, "\"k2\"\n"},
	} {
		out, stderr, err := f.berth(t, tc.args...)
		if err != nil {
			t.Errorf("%v: %v\n%s", tc.args, err, stderr)
			continue
		}
		if out != tc.want {
			t.Errorf("%v: stdout = %q, want %q", tc.args, out, tc.want)
		}
	}
}

func TestOutputFormats(t *testing.T) {
	nested := `{"name":"ep","traffic":{"blue":100},"labels":["x","y"],"ok":true,"gone":null,"ratio":0.5,"note":"a<b"}`
	list := `[{"name":"a","count":1},{"name":"b","count":2.5}]`
	f := newFakeServer(t, map[string]answer{
		"GET /endpoints/ep": {body: nested},
		"GET /endpoints":    {body: list},
	})
	for _, tc := range []struct {
		format, nested, list string
	}{
		{"json",
			"{\n  \"gone\": null,\n  \"labels\": [\n    \"x\",\n    \"y\"\n  ],\n  \"name\": \"ep\",\n  \"note\": \"a<b\",\n  \"ok\": true,\n  \"ratio\": 0.5,\n  \"traffic\": {\n    \"blue\": 100\n  }\n}\n",
			"[\n  {\n    \"count\": 1,\n    \"name\": \"a\"\n  },\n  {\n    \"count\": 2.5,\n    \"name\": \"b\"\n  }\n]\n"},
		{"yaml",
			"gone: null\nlabels:\n    - x\n    - \"y\"\nname: ep\nnote: a<b\nok: true\nratio: 0.5\ntraffic:\n    blue: 100\n",
			"- count: 1\n  name: a\n- count: 2.5\n  name: b\n"},
		{"tsv", "None\t2\tep\ta<b\tTrue\t0.5\t\n", "1\ta\n2.5\tb\n"},
		{"table",
			"NAME  PROVISIONING STATE  AUTH MODE  TRAFFIC   SCORING URI\nep                                   blue=100  \n",
			"NAME  PROVISIONING STATE  AUTH MODE  TRAFFIC  SCORING URI\na                                             \nb                                             \n"},
		{"none", "", ""},
	} {
		for _, format := range []string{tc.format, tc.format + "c"} {
			if format == "tsvc" || format == "tablec" || format == "nonec" {
				continue
			}
			out, stderr, err := f.berth(t, "online-endpoint", "show", "-n", "ep", "-o", format)
			if err != nil {
				t.Fatalf("-o %s: %v\n%s", format, err, stderr)
			}
			if diff := cmp.Diff(tc.nested, out); diff != "" {
				t.Errorf("show -o %s (-want +got):\n%s", format, diff)
			}
			out, stderr, err = f.berth(t, "online-endpoint", "list", "--output", format)
			if err != nil {
				t.Fatalf("-o %s: %v\n%s", format, err, stderr)
			}
			if diff := cmp.Diff(tc.list, out); diff != "" {
				t.Errorf("list -o %s (-want +got):\n%s", format, diff)
			}
		}
	}
}

func TestTableWithQueryUsesTheQueryColumns(t *testing.T) {
	f := newFakeServer(t, map[string]answer{"GET /endpoints": {body: "[" + endpointA + "," + endpointB + "]"}})
	out, _, err := f.berth(t, "online-endpoint", "list", "-o", "table", "--query", "[].{State: provisioning_state, Name: name}")
	if err != nil {
		t.Fatal(err)
	}
	if want := "STATE      NAME\nSucceeded  a\nCreating   b\n"; out != want {
		t.Errorf("stdout = %q, want %q", out, want)
	}
}

func TestBadOutputOrQueryFailsBeforeAnyRequest(t *testing.T) {
	f := newFakeServer(t, map[string]answer{"GET /endpoints/a": {body: endpointA}})
	for _, tc := range []struct {
		args   []string
		target string
		want   []string
	}{
		{[]string{"-o", "xml"}, "--output", []string{`"xml"`, "json, jsonc, yaml, yamlc, table, tsv, none"}},
		{[]string{"--query", "[?name=="}, "--query", []string{"--query", `"[?name=="`}},
	} {
		args := append([]string{"online-endpoint", "show", "-n", "a"}, tc.args...)
		_, stderr, err := f.berth(t, args...)
		de := diag.As(err)
		if de == nil || de.Code != diag.BadArgument || de.Target != tc.target {
			t.Errorf("%v: err = %v, want a BadArgument for %s", tc.args, err, tc.target)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("%v: stderr = %q, want it to name %s", tc.args, stderr, w)
			}
		}
	}
	if got := f.requests(); len(got) != 0 {
		t.Errorf("requests = %+v, want none", got)
	}
}

func TestAzAliasesAndIgnoredFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want seen
	}{
		{[]string{"online-deployment", "show", "--endpoint", "E", "--name", "blue"}, seen{"GET", "/endpoints/E/deployments/blue", ""}},
		{[]string{"online-deployment", "list", "-e", "E", "-g", "rg", "-w", "ws", "--subscription", "sub"}, seen{"GET", "/endpoints/E/deployments", ""}},
		{[]string{"online-deployment", "get-logs", "-g", "rg", "-w", "ws", "-e", "E", "-n", "blue"}, seen{"POST", "/endpoints/E/deployments/blue/getLogs", `{"tail":5000,"containerType":"InferenceServer"}`}},
		{[]string{"online-deployment", "get-logs", "--endpoint-name", "E", "--name", "blue", "--lines", "7", "--container", "storage-initializer"}, seen{"POST", "/endpoints/E/deployments/blue/getLogs", `{"tail":7,"containerType":"StorageInitializer"}`}},
		{[]string{"online-deployment", "delete", "--endpoint", "E", "-n", "blue", "--yes", "--no-wait"}, seen{"DELETE", "/endpoints/E/deployments/blue", ""}},
		{[]string{"online-endpoint", "delete", "-n", "E", "-y", "--no-wait", "--resource-group", "rg", "--workspace-name", "ws"}, seen{"DELETE", "/endpoints/E", ""}},
		{[]string{"online-endpoint", "create", "-n", "ep-e", "--no-wait", "-g", "rg"}, seen{"POST", "/endpoints", `{"spec":{"name":"ep-e","auth_mode":"key","public_network_access":"enabled"}}`}},
		{[]string{"model", "list", "-w", "ws", "--only-show-errors"}, seen{"GET", "/assets/model", ""}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			route, _, _ := strings.Cut(tc.want.Path, "?")
			f := newFakeServer(t, map[string]answer{tc.want.Method + " " + route: {body: `{}`}})
			if _, stderr, err := f.berth(t, tc.args...); err != nil {
				t.Fatalf("%v\n%s", err, stderr)
			}
			if diff := cmp.Diff([]seen{tc.want}, f.requests()); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAddAndRemoveEditTheSpec(t *testing.T) {
	f := newFakeServer(t, map[string]answer{"POST /endpoints": {body: `{}`}})
	args := AzArgs([]string{"online-endpoint", "create", "-n", "ep-e", "--set", "tags.a=1", "--set", "tags.b=2", "--remove", "tags.a"})
	if _, stderr, err := f.berth(t, args...); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	want := []seen{{"POST", "/endpoints", `{"spec":{"name":"ep-e","tags":{"b":"2"},"auth_mode":"key","public_network_access":"enabled"}}`}}
	if diff := cmp.Diff(want, f.requests()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

func TestAzArgs(t *testing.T) {
	for _, tc := range []struct{ in, want []string }{
		{[]string{"x", "--add", "a.list", "v", "-n", "E"}, []string{"x", "--add=a.list\x00v", "-n", "E"}},
		{[]string{"--add", "a.list", "k=1", "j=2"}, []string{"--add=a.list\x00k=1\x00j=2"}},
		{[]string{"--remove", "a.list", "0", "more"}, []string{"--remove=a.list\x000", "more"}},
		{[]string{"--remove", "a.b", "--set", "c=1"}, []string{"--remove=a.b", "--set", "c=1"}},
		{[]string{"--add=a\x00b"}, []string{"--add=a\x00b"}},
	} {
		if diff := cmp.Diff(tc.want, AzArgs(tc.in)); diff != "" {
			t.Errorf("AzArgs(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
}

// TestDeploymentUpdateSetWithoutFile: update --set without -f sends the stored spec with
// the change and the model and code the deployment runs, even when the local folders
// it was created from have changed since (Azure reuses the stored assets).
func TestDeploymentUpdateSetWithoutFile(t *testing.T) {
	dir := t.TempDir()
	model, code := filepath.Join(dir, "model"), filepath.Join(dir, "src")
	write(t, filepath.Join(model, "model.json"), `{"w":1}`)
	write(t, filepath.Join(code, "score.py"), "def init(): pass\ndef run(x): return x\n")
	modelDigest, err := archive.DigestContext(t.Context(), model)
	if err != nil {
		t.Fatal(err)
	}
	codeDigest, err := archive.DigestContext(t.Context(), code)
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]any{
		"name": "blue", "endpoint_name": "ep-e", "instance_type": "Standard_DS3_v2", "instance_count": 1,
		"model":                 map[string]any{"path": model, "type": "custom_model"},
		"code_configuration":    map[string]any{"code": code, "scoring_script": "score.py"},
		"environment":           map[string]any{"image": "python:3.12", "conda_file": map[string]any{"dependencies": []any{"python=3.12"}}},
		"environment_variables": map[string]any{"MODE": "fast"},
	}
	view := map[string]any{"provisioning_state": "Succeeded", "instances": []any{map[string]any{"index": 0, "state": "Ready"}},
		"created_at": "t0", "updated_at": "t1"}
	for k, v := range stored {
		view[k] = v
	}
	view["model_artifact"], view["code_artifact"] = modelDigest, codeDigest
	viewJSON, _ := json.Marshal(view)
	write(t, filepath.Join(model, "output.jpg"), "written after the deployment was created")
	f := newFakeServer(t, map[string]answer{
		"GET /endpoints/ep-e":                    {body: endpointA},
		"GET /endpoints/ep-e/deployments/blue":   {body: string(viewJSON)},
		"PATCH /endpoints/ep-e/deployments/blue": {status: http.StatusOK, body: string(viewJSON)},
	})
	out, stderr, err := f.berth(t, "online-deployment", "update", "--name", "blue", "--endpoint-name", "ep-e", "--set", "instance_count=2",
		"--query", "provisioning_state", "-o", "tsv")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if out != "Succeeded\n" {
		t.Errorf("stdout = %q, want Succeeded", out)
	}
	var patch *seen
	for _, r := range f.requests() {
		if r.Method == http.MethodPatch {
			patch = &r
		}
		if r.Method == http.MethodPost || r.Method == http.MethodHead {
			t.Errorf("request %s %s: want nothing read or uploaded, the deployment runs both artifacts", r.Method, r.Path)
		}
	}
	if patch == nil {
		t.Fatalf("requests = %+v, want a PATCH", f.requests())
	}
	var body struct {
		Spec          map[string]any `json:"spec"`
		ModelArtifact string         `json:"model_artifact"`
		CodeArtifact  string         `json:"code_artifact"`
	}
	if err := json.Unmarshal([]byte(patch.Body), &body); err != nil {
		t.Fatal(err)
	}
	if body.ModelArtifact != modelDigest || body.CodeArtifact != codeDigest {
		t.Errorf("artifacts = %q, %q; want %q, %q", body.ModelArtifact, body.CodeArtifact, modelDigest, codeDigest)
	}
	want := map[string]any{}
	json.Unmarshal(must(json.Marshal(stored)), &want)
	want["instance_count"] = float64(2)
	for k, v := range want {
		if diff := cmp.Diff(v, body.Spec[k]); diff != "" {
			t.Errorf("spec.%s (-want +got):\n%s", k, diff)
		}
	}
	for _, status := range []string{"provisioning_state", "instances", "created_at", "updated_at", "model_artifact", "code_artifact"} {
		if _, ok := body.Spec[status]; ok {
			t.Errorf("spec has the status field %s: %s", status, patch.Body)
		}
	}
}

func TestDeploymentUpdateWithoutFileNeedsNames(t *testing.T) {
	f := newFakeServer(t, nil)
	_, stderr, err := f.berth(t, "online-deployment", "update", "--name", "blue", "--set", "instance_count=2")
	if de := diag.As(err); de == nil || de.Code != diag.BadArgument || !strings.Contains(stderr, "--endpoint-name") {
		t.Errorf("err = %v, stderr = %q; want a BadArgument naming --endpoint-name", err, stderr)
	}
	_, stderr, err = f.berth(t, "online-deployment", "create", "--name", "blue", "-e", "E")
	if de := diag.As(err); de == nil || !strings.Contains(stderr, "--file is required") {
		t.Errorf("create without -f: err = %v, stderr = %q; want --file required", err, stderr)
	}
}

func TestWebPrintsThePage(t *testing.T) {
	f := newFakeServer(t, map[string]answer{"GET /endpoints/a": {body: endpointA}})
	for _, args := range [][]string{
		{"online-endpoint", "show", "-n", "a", "--web"},
		{"online-deployment", "show", "-e", "a", "-n", "blue", "--web"},
	} {
		out, stderr, err := f.berth(t, args...)
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, stderr)
		}
		if out != "http://127.0.0.1:8000/#/endpoints/a\n" {
			t.Errorf("%v: stdout = %q, want the studio's page of endpoint a on the scoring host", args, out)
		}
	}
	out, _, err := f.berth(t, "model", "show", "-n", "m", "--web")
	if err != nil || out != f.url+"/#/assets/model\n" {
		t.Errorf("model show --web = %q, %v; want the studio's models page %s/#/assets/model", out, err, f.url)
	}
}

func TestVersion(t *testing.T) {
	want := "berth " + Version() + "\n"
	for _, args := range [][]string{{"--version"}, {"version"}} {
		root := NewRoot()
		var out strings.Builder
		root.SetOut(&out)
		root.SetArgs(args)
		if err := root.Execute(); err != nil || out.String() != want {
			t.Errorf("berth %v = %q, %v; want %q", args, out.String(), err, want)
		}
	}
	if Version() == "" {
		t.Error("Version() is empty")
	}
}

func TestHashKeys(t *testing.T) {
	for expr, want := range map[string][]string{
		"{b: x, a: y}":                  {"b", "a"},
		"[].{z: name, a: state}":        {"z", "a"},
		"[?x > `1`].{q: q, p: p}":       {"q", "p"},
		"items[0] | {k2: a, k1: b}":     {"k2", "k1"},
		"name":                          nil,
		"[].[name, provisioning_state]": nil,
	} {
		q, err := compileQuery(expr)
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		if diff := cmp.Diff(want, q.keys); diff != "" {
			t.Errorf("%s: keys (-want +got):\n%s", expr, diff)
		}
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func TestSetOnAssetAndConnectionCreates(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "m")
	write(t, filepath.Join(dir, "model.json"), `{"w":1}`)
	digest, err := archive.DigestContext(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	f := newFakeServer(t, map[string]answer{
		"HEAD /artifacts/" + digest: {},
		"POST /assets/model":        {status: http.StatusCreated, body: modelView},
		"POST /assets/data":         {status: http.StatusCreated, body: `{}`},
		"POST /connections":         {body: `{}`},
	})
	for _, tc := range []struct {
		args []string
		want string // in the last request's body
	}{
		{[]string{"model", "create", "-n", "m", "-p", dir, "--set", "version=5", "--set", "tags.team=ml"}, `"version":"5"`},
		{[]string{"model", "create", "-n", "m", "-p", dir, "--set", "tags.team=ml"}, `"tags":{"team":"ml"}`},
		{[]string{"data", "create", "--set", "name=inputs", "--set", "path=" + dir, "--set", "description=raw rows"}, `"description":"raw rows"`},
		{[]string{"connection", "create", "-n", "c1", "--set", "target=https://example.org", "--set", "credentials.key=s3cret"}, `"target":"https://example.org"`},
	} {
		if _, stderr, err := f.berth(t, tc.args...); err != nil {
			t.Errorf("%v: %v\n%s", tc.args, err, stderr)
			continue
		}
		got := f.requests()
		if last := got[len(got)-1]; !strings.Contains(last.Body, tc.want) {
			t.Errorf("%v: %s %s body = %s, want %s in it", tc.args, last.Method, last.Path, last.Body, tc.want)
		}
	}
	_, stderr, err := f.berth(t, "model", "create", "-n", "m", "-p", dir, "--set", "colour=red")
	if de := diag.As(err); de == nil || de.Code != diag.BadArgument || !strings.Contains(stderr, "colour") {
		t.Errorf("--set colour=red: err = %v, stderr = %q; want a BadArgument naming the field", err, stderr)
	}
}

// TestUpdateSetReusesWhatItDoesNotChange: an update with --set reads again only the
// folder a set points elsewhere.
func TestUpdateSetReusesWhatItDoesNotChange(t *testing.T) {
	runs := wire.DeploymentPut{ModelArtifact: "sha256:m", CodeArtifact: "sha256:c"}
	for _, tc := range []struct {
		sets        []string
		model, code string
	}{
		{[]string{"instance_count=2"}, "sha256:m", "sha256:c"},
		{[]string{"code_configuration.scoring_script=other.py"}, "sha256:m", "sha256:c"},
		{[]string{"code_configuration.code=./src2"}, "sha256:m", ""},
		{[]string{"model.path=./model2"}, "", "sha256:c"},
		{[]string{"model=azureml:m:2", "code_configuration.code=./src2"}, "", ""},
	} {
		got := runsStill(runs, tc.sets)
		if got.ModelArtifact != tc.model || got.CodeArtifact != tc.code {
			t.Errorf("%q: reuses model %q, code %q; want %q, %q", tc.sets, got.ModelArtifact, got.CodeArtifact, tc.model, tc.code)
		}
	}
}
