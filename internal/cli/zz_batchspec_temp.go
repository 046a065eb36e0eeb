package cli

// TEMPORARY: this file stands in for spec's batch decoders (spec/batchdecode.go,
// written on another branch) so that this package compiles and its tests run. When
// merging, delete this file and replace "batchspec." with "spec." in this package.

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/spec"
)

type batchspecDecoders struct{}

// batchspec names the stand-ins: batchspec.LoadX is spec.LoadX.
var batchspec batchspecDecoders

func tempDecode(path string, v any, sets []string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return diag.New(diag.BadArgument, "read %s: %v", path, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		return diag.New(diag.BadArgument, "%s: %v", path, err)
	}
	if err := spec.ApplySets(v, sets); err != nil {
		return err
	}
	return finishSpec(v)
}

func (batchspecDecoders) LoadBatchEndpoint(path string, sets []string) (*spec.BatchEndpoint, error) {
	var e spec.BatchEndpoint
	return &e, tempDecode(path, &e, sets)
}

func (batchspecDecoders) LoadCompute(path string, sets []string) (*spec.Compute, error) {
	var c spec.Compute
	return &c, tempDecode(path, &c, sets)
}

func (batchspecDecoders) LoadBatchDeployment(path string, sets []string) (*spec.BatchDeployment, error) {
	var d spec.BatchDeployment
	if err := tempDecode(path, &d, sets); err != nil {
		return nil, err
	}
	base := filepath.Dir(path)
	resolve := func(v *string) error {
		if *v == "" || strings.HasPrefix(*v, "azureml:") {
			return nil
		}
		if !filepath.IsAbs(*v) {
			*v = filepath.Join(base, *v)
		}
		if _, err := os.Stat(*v); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		return nil
	}
	if d.Model != nil && !d.Model.IsRef() {
		if err := resolve(&d.Model.Path); err != nil {
			return nil, err
		}
	}
	if d.CodeConfiguration != nil {
		if err := resolve(&d.CodeConfiguration.Code); err != nil {
			return nil, err
		}
	}
	if env := d.Environment; env != nil {
		if p, ok := env.CondaFile.(string); ok {
			if err := resolve(&p); err != nil {
				return nil, err
			}
			env.CondaFile = p
		}
	}
	return &d, nil
}
