package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/berthml/berth/internal/diag"
)

var secretRef = regexp.MustCompile(`^\$\{\{\s*(.*?)\s*\}\}$`)

// ResolveSecrets replaces environment_variables values written as secret references
// (${{azureml://connections/<name>/credentials/<key>}}, .../metadata/<key>, .../target,
// or the whole connection) with their values. It returns how many it resolved; a
// reference that cannot be resolved is a SecretsInjectionError naming it, never a value.
func (r *Registry) ResolveSecrets(ctx context.Context, env map[string]string) (int, error) {
	names := make([]string, 0, len(env))
	for k := range env {
		names = append(names, k)
	}
	sort.Strings(names)
	resolved := 0
	var problems []*diag.Error
	for _, k := range names {
		m := secretRef.FindStringSubmatch(env[k])
		if m == nil {
			continue
		}
		val, err := r.resolveRef(ctx, m[1])
		if err != nil {
			problems = append(problems, &diag.Error{Code: diag.SecretsInjectionError, Target: "environment_variables." + k,
				Message: fmt.Sprintf("environment_variables.%s refers to %s: %v", k, env[k], err)})
			continue
		}
		env[k] = val
		resolved++
	}
	switch len(problems) {
	case 0:
		return resolved, nil
	case 1:
		return resolved, problems[0]
	}
	return resolved, &diag.Error{Code: diag.SecretsInjectionError, Message: fmt.Sprintf("%d secret references could not be resolved", len(problems)), Details: problems}
}

var errRefForm = errors.New("the reference is not of the form azureml://connections/<name>[/credentials/<key> | /metadata/<key> | /target]")

func (r *Registry) resolveRef(ctx context.Context, ref string) (string, error) {
	if strings.HasPrefix(ref, "keyvault:") {
		return "", errors.New("Key Vault references are not resolved by Berth: store the value with `berth connection create -n <name> --credential <key>=<value>` and write ${{azureml://connections/<name>/credentials/<key>}}")
	}
	rest, ok := strings.CutPrefix(ref, "azureml://connections/")
	if !ok {
		return "", errRefForm
	}
	parts := strings.Split(rest, "/")
	conn, err := r.GetConnection(ctx, parts[0])
	if err != nil {
		if de := diag.As(err); de != nil {
			return "", errors.New(de.Message)
		}
		return "", err
	}
	switch {
	case len(parts) == 1:
		b, err := json.Marshal(conn)
		return string(b), err
	case len(parts) == 2 && parts[1] == "target":
		return conn.Target, nil
	case len(parts) == 3 && parts[1] == "credentials":
		if v, ok := conn.Credentials[parts[2]]; ok {
			return v, nil
		}
		return "", fmt.Errorf("connection %q has no credential %q: add it with `berth connection create -n %s --credential %s=...`", parts[0], parts[2], parts[0], parts[2])
	case len(parts) == 3 && parts[1] == "metadata":
		if v, ok := conn.Metadata[parts[2]]; ok {
			return v, nil
		}
		return "", fmt.Errorf("connection %q has no metadata %q", parts[0], parts[2])
	}
	return "", errRefForm
}
