//go:build unix

package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// envProject writes a deployment named name whose conda file lists deps.
func envProject(t *testing.T, dir, name, deps string) string {
	t.Helper()
	writeFiles(t, dir, map[string]string{
		"code/score.py":      "import numpy\n\ndef init():\n    pass\n\ndef run(d):\n    return numpy.__version__\n",
		"model/m.txt":        "x",
		name + ".conda.yaml": "name: env\nchannels: [conda-forge]\ndependencies:\n" + deps,
		name + ".yml": fmt.Sprintf("name: %s\nendpoint_name: dataplane\nmodel: {path: ./model}\ncode_configuration: {code: ./code, scoring_script: score.py}\n"+
			"environment: {conda_file: ./%s.conda.yaml, image: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest}\n", name, name),
	})
	return filepath.Join(dir, name+".yml")
}

func TestEnvironmentBuilds(t *testing.T) {
	requireDebianPython(t, "numpy, sklearn, joblib")
	noIndex := t.TempDir()
	s := startServer(t, "", "BERTH_PYTHON=/usr/bin/python3", "PIP_NO_INDEX=1", "PIP_FIND_LINKS="+noIndex)
	s.ok("online-endpoint", "create", "-n", "dataplane")
	dir := t.TempDir()
	base := "  - python=3\n  - numpy\n  - scikit-learn\n  - pip\n  - pip:\n    - joblib\n"

	start := time.Now()
	s.ok("online-deployment", "create", "-f", envProject(t, dir, "first", base))
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("an environment whose packages are all in the base took %s", took)
	}
	si := s.ok("online-deployment", "get-logs", "-e", "dataplane", "-n", "first", "--container", "storage-initializer")
	if !strings.Contains(si, "creating a virtual environment") || !strings.Contains(si, "/envs/") {
		t.Fatalf("first build not in the log:\n%s", si)
	}
	s.ok("online-deployment", "create", "-f", envProject(t, dir, "second", base))
	si = s.ok("online-deployment", "get-logs", "-e", "dataplane", "-n", "second", "--container", "storage-initializer")
	if !strings.Contains(si, "reusing the build") || strings.Contains(si, "creating a virtual environment") {
		t.Fatalf("the second deployment rebuilt the environment:\n%s", si)
	}

	r := s.berth("online-deployment", "create", "-f", envProject(t, dir, "missing", base+"    - berth-no-such-package-xyz==1.0\n"))
	if r.code == 0 || !strings.Contains(r.stderr, "ImageBuildFailure") || !strings.Contains(r.stderr, "berth-no-such-package-xyz") ||
		!strings.Contains(r.stderr, "ERROR:") || !strings.Contains(r.stderr, "build log") {
		t.Fatalf("an uninstallable package: %+v", r)
	}
	si = s.ok("online-deployment", "get-logs", "-e", "dataplane", "-n", "missing", "--container", "storage-initializer")
	if !strings.Contains(si, "tail of the build log") || !strings.Contains(si, "berth-no-such-package-xyz") {
		t.Fatalf("the build log tail is not in get-logs:\n%s", si)
	}

	r = s.berth("online-deployment", "create", "-f", envProject(t, dir, "pinned", "  - numpy==1.0.0\n"))
	if r.code != 0 || !strings.Contains(r.stderr, "WARNING") || !strings.Contains(r.stderr, "numpy==1.0.0") {
		t.Fatalf("a pin the base does not meet should warn (lenient): %+v", r)
	}
	if show := s.ok("online-deployment", "show", "-e", "dataplane", "-n", "pinned"); !strings.Contains(show, "numpy==1.0.0") {
		t.Fatalf("show lacks the pin warning:\n%s", show)
	}

	// A pip requirements file works as a conda file.
	writeFiles(t, dir, map[string]string{
		"requirements.txt": "# from pip freeze\nnumpy\njoblib\n",
		"reqs.yml": "name: reqs\nendpoint_name: dataplane\nmodel: {path: ./model}\ncode_configuration: {code: ./code, scoring_script: score.py}\n" +
			"environment: {conda_file: ./requirements.txt, image: mcr.microsoft.com/azureml/minimal-py312-inference:latest}\n",
	})
	s.ok("online-deployment", "create", "-f", filepath.Join(dir, "reqs.yml"))
	if si := s.ok("online-deployment", "get-logs", "-e", "dataplane", "-n", "reqs", "--container", "storage-initializer"); !strings.Contains(si, "checking 2 requirement(s)") {
		t.Fatalf("requirements.txt was not built:\n%s", si)
	}

	strict := startServer(t, "", "BERTH_PYTHON=/usr/bin/python3", "BERTH_ENV_STRICT=true")
	strict.ok("online-endpoint", "create", "-n", "dataplane")
	r = strict.berth("online-deployment", "create", "-f", envProject(t, dir, "strictpin", "  - numpy==1.0.0\n"))
	if r.code == 0 || !strings.Contains(r.stderr, "ImageBuildFailure") || !strings.Contains(r.stderr, "numpy==1.0.0") {
		t.Fatalf("a pin the base does not meet should fail in strict mode: %+v", r)
	}
}
