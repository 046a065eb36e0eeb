package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strings"

	"github.com/berthml/berth/internal/artifacts/archive"
	"github.com/berthml/berth/internal/client"
	"github.com/berthml/berth/internal/spec"
	"github.com/berthml/berth/internal/wire"
)

// Where a deployment's model and code come from: the folders a YAML names, uploaded
// unless the server has them, or, for an update without a file, what it runs.

// storedDeployment reads the spec the server stores for a deployment, applies sets to
// it, and returns it with the digests of the model and code it runs. Its model and code
// paths are the local paths it was created from, which may have changed or gone since.
func storedDeployment(ctx context.Context, c *client.Client, endpoint, name string, sets []string) (*spec.Deployment, wire.DeploymentPut, error) {
	var runs wire.DeploymentPut
	raw, err := c.GetDeployment(ctx, endpoint, name)
	if err != nil {
		return nil, runs, err
	}
	stored, err := storedSpec(raw)
	if err == nil {
		err = json.Unmarshal(raw, &runs)
	}
	if err != nil {
		return nil, runs, fmt.Errorf("read the stored spec of deployment %s/%s: %w", endpoint, name, err)
	}
	d, err := spec.DecodeDeployment(fmt.Sprintf("the stored spec of deployment %s/%s", endpoint, name), stored, sets)
	return d, runs, err
}

// runsStill is what of runs an update with sets still runs: the model unless a set
// changes the model, the code unless one changes code_configuration or its code folder
// (its scoring_script is a file of the same folder).
func runsStill(runs wire.DeploymentPut, sets []string) *wire.DeploymentPut {
	still := runs
	for _, s := range sets {
		key, _, _ := strings.Cut(s, "=")
		if key == "model" || strings.HasPrefix(key, "model.") {
			still.ModelArtifact = ""
		}
		if key == "code_configuration" || key == "code_configuration.code" {
			still.CodeArtifact = ""
		}
	}
	return &still
}

// storedSpec is the spec in a deployment's read view: its spec field when it has one,
// else the view without the status fields of wire.Deployment.
func storedSpec(raw json.RawMessage) (json.RawMessage, error) {
	var view map[string]json.RawMessage
	if err := json.Unmarshal(raw, &view); err != nil {
		return nil, err
	}
	if s, ok := view["spec"]; ok {
		return s, nil
	}
	t := reflect.TypeFor[wire.Deployment]()
	for i := range t.NumField() {
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if tag != "" && tag != "-" {
			delete(view, tag)
		}
	}
	return json.Marshal(view)
}

// upload sends the model and code folders to the server unless it already has them,
// and returns the deployment with the digests it will run; those of reuse, when given,
// instead of reading the folders.
func upload(ctx context.Context, c *client.Client, d *spec.Deployment, reuse *wire.DeploymentPut, progress io.Writer) (wire.DeploymentPut, error) {
	var put wire.DeploymentPut
	one := func(what, path string) (string, error) {
		kept := map[string]string{}
		if reuse != nil {
			kept = map[string]string{"model": reuse.ModelArtifact, "code": reuse.CodeArtifact}
		}
		if digest := kept[what]; digest != "" {
			fmt.Fprintf(progress, "Using the %s the deployment runs (%s)\n", what, short(digest))
			return digest, nil
		}
		return uploadPath(ctx, c, what, path, progress)
	}
	var err error
	if env := d.Environment; env != nil {
		if path, ok := env.CondaFile.(string); ok {
			// The server builds the environment, so it gets the file's content.
			content, err := readCondaFile(path)
			if err != nil {
				return put, err
			}
			env.CondaFile = content
		}
	}
	if d.Model != nil && !d.Model.IsRef() && d.Model.Path != "" {
		if put.ModelArtifact, err = one("model", d.Model.Path); err != nil {
			return put, err
		}
	}
	if d.CodeConfiguration != nil && d.CodeConfiguration.Code != "" {
		if put.CodeArtifact, err = one("code", d.CodeConfiguration.Code); err != nil {
			return put, err
		}
	}
	put.Spec, err = json.Marshal(d)
	return put, err
}

// uploadPath sends a file or folder to the server unless it already has it, and
// returns its digest.
func uploadPath(ctx context.Context, c *client.Client, what, path string, progress io.Writer) (string, error) {
	digest, err := archive.DigestContext(ctx, path)
	if err != nil {
		return "", fmt.Errorf("read %s %s: %w", what, path, err)
	}
	if ok, err := c.HasArtifact(ctx, digest); err != nil {
		return "", err
	} else if ok {
		fmt.Fprintf(progress, "Using %s %s (already uploaded as %s)\n", what, path, short(digest))
		return digest, nil
	}
	fmt.Fprintf(progress, "Uploading %s %s ...", what, path)
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(archive.WriteTar(pw, path)) }()
	a, err := c.UploadArtifact(ctx, pr)
	pr.Close()
	if err != nil {
		fmt.Fprintln(progress)
		return "", fmt.Errorf("upload %s %s: %w", what, path, err)
	}
	fmt.Fprintf(progress, " %s, %s\n", humanBytes(a.Size), short(a.Digest))
	return a.Digest, nil
}

func short(digest string) string {
	if i := strings.IndexByte(digest, ':'); i >= 0 && len(digest) > i+13 {
		return digest[:i+13]
	}
	return digest
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
