package envbuild

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDistName(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{"azureml-inference-server-http==1.4.1", "azureml-inference-server-http"},
		{"AzureML_Inference.Server--HTTP", "azureml-inference-server-http"},
		{"azureml_defaults", "azureml-defaults"},
		{"azureml.defaults>=1.0", "azureml-defaults"},
		{"Inference-Schema[numpy-support]", "inference-schema"},
		{"inference-schema[numpy-support,pandas-support] == 1.5", "inference-schema"},
		{"inference_schema~=1.5", "inference-schema"},
		{`inference-schema; python_version>"3.8"`, "inference-schema"},
		{`azureml-inference-server-http>=1.0,<2 ; sys_platform == "linux"`, "azureml-inference-server-http"},
		{"  azureml-contrib-services  ", "azureml-contrib-services"},
		{"conda-forge::azureml-defaults=1.0=py_0", "azureml-defaults"},
		{"inference-schema @ https://example.com/inference_schema-1.5-py3-none-any.whl", "inference-schema"},
		{"azureml_ai_monitoring>=0.1.0b4", "azureml-ai-monitoring"},
		{"numpy", "numpy"},
		{"-r other.txt", ""},
	} {
		if got := distName(tc.line); got != tc.want {
			t.Errorf("distName(%q) = %q, want %q", tc.line, got, tc.want)
		}
	}
}

func TestSplitProvided(t *testing.T) {
	reqs := ParseRequirements([]byte(`azureml-inference-server-http==1.4.1
inference-schema[numpy-support]
Azureml_Defaults
azureml-contrib-services
azureml-ai-monitoring==0.1.0b4
azureml-core
azureml-mlflow
azureml-inference-server-http-extra
numpy
`))
	build, provided := splitProvided(reqs)
	names := func(rs []Requirement) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.Line)
		}
		return out
	}
	if diff := cmp.Diff([]string{"azureml-core", "azureml-mlflow", "azureml-inference-server-http-extra", "numpy"}, names(build)); diff != "" {
		t.Errorf("built (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"azureml-inference-server-http==1.4.1", "inference-schema[numpy-support]", "Azureml_Defaults", "azureml-contrib-services", "azureml-ai-monitoring==0.1.0b4"}, names(provided)); diff != "" {
		t.Errorf("provided (-want +got):\n%s", diff)
	}
	if Key("py", reqs, false) != Key("py", build, false) {
		t.Error("requirements Berth provides change the environment key")
	}
}

// azureSample is the conda file of Azure's online-endpoint samples.
const azureSample = `name: model-env
channels:
  - conda-forge
dependencies:
  - python=3.9
  - pip
  - pip:
    - azureml-inference-server-http==1.4.1
    - inference-schema[numpy-support]==1.5
    - numpy
`

func TestAzureSampleNeedsNoPip(t *testing.T) {
	base := "/usr/bin/python3"
	if exec.Command(base, "-c", "import numpy").Run() != nil {
		t.Skip("no /usr/bin/python3 with numpy")
	}
	reqs, err := ParseConda([]byte(azureSample))
	if err != nil {
		t.Fatal(err)
	}
	var pipCalls [][]string
	b := &Builder{Root: t.TempDir(), Pip: func(_ context.Context, _ string, reqs []string, _ io.Writer) error {
		pipCalls = append(pipCalls, reqs)
		return nil
	}}
	var progress bytes.Buffer
	r, err := b.Build(context.Background(), base, reqs, &progress)
	if err != nil {
		t.Fatal(err)
	}
	if len(pipCalls) > 0 {
		t.Fatalf("pip ran for %v", pipCalls)
	}
	const line = "provided by Berth, not installed: azureml-inference-server-http==1.4.1, inference-schema[numpy-support]==1.5\n"
	if n := strings.Count(progress.String(), line); n != 1 {
		t.Errorf("progress has the line %d times, want once:\n%s", n, progress.String())
	}
	log, err := os.ReadFile(r.LogPath)
	if err != nil || !strings.Contains(string(log), line) {
		t.Errorf("build log %s lacks the line (%v):\n%s", r.LogPath, err, log)
	}
	// The python=3.9 pin stays a warning when the base is another version.
	version, err := exec.Command(base, "-c", "import sys; print('%d.%d' % sys.version_info[:2])").Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(version)) != "3.9" && (len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "python=3.9")) {
		t.Errorf("python %s: warnings %v, want one for python=3.9", version, r.Warnings)
	}

	// Reusing the environment names them again.
	progress.Reset()
	again, err := b.Build(context.Background(), base, reqs, &progress)
	if err != nil || !again.Reused || !strings.Contains(progress.String(), line) {
		t.Fatalf("reuse: %+v %v\n%s", again, err, progress.String())
	}
}

func TestMissingPackagesGoToPip(t *testing.T) {
	base := "/usr/bin/python3"
	if exec.Command(base, "-c", "import json").Run() != nil {
		t.Skip("no /usr/bin/python3")
	}
	reqs := ParseRequirements([]byte("azureml-defaults\nberth-no-such-package-xyz==1.0\n"))
	var pipCalls [][]string
	b := &Builder{Root: t.TempDir(), Pip: func(_ context.Context, _ string, reqs []string, _ io.Writer) error {
		pipCalls = append(pipCalls, reqs)
		return nil
	}}
	if _, err := b.Build(context.Background(), base, reqs, io.Discard); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([][]string{{"berth-no-such-package-xyz==1.0"}}, pipCalls); diff != "" {
		t.Fatalf("pip calls (-want +got):\n%s", diff)
	}
}
