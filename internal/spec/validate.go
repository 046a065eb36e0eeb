package spec

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/berthml/berth/internal/diag"
)

var nameRE = regexp.MustCompile(`^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$`)

// Limits from the Azure documentation.
const (
	// MaxRequestTimeoutMs bounds request_settings.request_timeout_ms (180 s, managed).
	MaxRequestTimeoutMs = 180000
	// DefaultRequestTimeoutMs is request_settings.request_timeout_ms when a deployment sets none.
	DefaultRequestTimeoutMs = 5000
	// DefaultAuthMode is the auth_mode of an endpoint that sets none.
	DefaultAuthMode = "key"
	// MaxInstanceCount bounds instance_count: 50 instances per deployment.
	MaxInstanceCount = 50
	// MaxMirrorPercent bounds mirror_traffic: 50 percent of live traffic.
	MaxMirrorPercent = 50
)

func nameProblem(name string) string {
	switch {
	case name == "":
		return "is required"
	case len(name) < 3 || len(name) > 32:
		return fmt.Sprintf("must be 3 to 32 characters long, got %q (%d)", name, len(name))
	case !nameRE.MatchString(name) || strings.Contains(name, "--"):
		return fmt.Sprintf("must start with a letter, end with a letter or digit, and hold only letters, digits and single dashes, got %q", name)
	}
	return ""
}

// ValidateName checks an endpoint or deployment name against Azure's rules.
func ValidateName(field, name string) error {
	if msg := nameProblem(name); msg != "" {
		return &diag.Error{Code: diag.BadArgument, Target: field, Message: field + " " + msg}
	}
	return nil
}

// Default fills the documented defaults.
func (e *Endpoint) Default() {
	switch strings.ToLower(e.AuthMode) {
	case "", DefaultAuthMode:
		e.AuthMode = DefaultAuthMode
	case "amltoken", "aml_token":
		e.AuthMode = "aml_token"
	case "aadtoken", "aad_token":
		e.AuthMode = "aad_token"
	}
	if e.PublicNetworkAccess == "" {
		e.PublicNetworkAccess = "enabled"
	}
}

// Validate returns every problem of a defaulted endpoint.
func (e *Endpoint) Validate() error {
	p := &problems{source: "endpoint " + e.Name}
	e.validate(p)
	return p.err("endpoint")
}

func (e *Endpoint) validate(p *problems) {
	if msg := nameProblem(e.Name); msg != "" {
		p.add("name", "%s", msg)
	}
	switch e.AuthMode {
	case DefaultAuthMode, "aml_token", "aad_token":
	default:
		p.add("auth_mode", "must be key, aml_token or aad_token, got %q", e.AuthMode)
	}
	if e.PublicNetworkAccess != "enabled" && e.PublicNetworkAccess != "disabled" {
		p.add("public_network_access", "must be enabled or disabled, got %q", e.PublicNetworkAccess)
	}
	if len(e.Traffic) > 0 {
		if err := ValidateTraffic(e.Traffic); err != nil {
			p.list = append(p.list, diag.As(err).Details...)
		}
	}
	validateMirror(p, e.MirrorTraffic)
}

// ValidateMirror checks mirror_traffic: one deployment at most, 0..50 percent.
func ValidateMirror(m map[string]int) error {
	p := &problems{source: "mirror_traffic"}
	validateMirror(p, m)
	if len(p.list) == 0 {
		return nil
	}
	return &diag.Error{Code: diag.BadArgument, Message: "invalid mirror traffic: " + p.list[0].Message, Target: "mirror_traffic", Details: p.list}
}

func validateMirror(p *problems, m map[string]int) {
	if len(m) > 1 {
		p.add("mirror_traffic", "may name only one deployment, got %d", len(m))
	}
	for d, v := range m {
		if v < 0 || v > MaxMirrorPercent {
			p.add("mirror_traffic."+d, "must be between 0 and %d percent, got %d", MaxMirrorPercent, v)
		}
	}
}

// ParseTraffic parses "blue=90 green=10" (spaces or commas between entries).
func ParseTraffic(s string) (map[string]int, error) {
	out := map[string]int{}
	for _, part := range strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' }) {
		name, val, ok := strings.Cut(part, "=")
		n, err := strconv.Atoi(val)
		if !ok || name == "" || err != nil {
			return nil, &diag.Error{Code: diag.BadArgument, Target: "traffic",
				Message: fmt.Sprintf("%q is not deployment=percent: write it as \"blue=90 green=10\"", part)}
		}
		out[name] = n
	}
	return out, nil
}

// ValidateTraffic checks that every percent is 0..100 and that they sum to 0 or 100.
func ValidateTraffic(t map[string]int) error {
	p := &problems{source: "traffic"}
	sum := 0
	names := make([]string, 0, len(t))
	for d := range t {
		names = append(names, d)
	}
	sort.Strings(names)
	for _, d := range names {
		v := t[d]
		if v < 0 || v > 100 {
			p.add("traffic."+d, "must be between 0 and 100 percent, got %d", v)
		}
		sum += v
	}
	if sum != 0 && sum != 100 {
		parts := make([]string, len(names))
		for i, d := range names {
			parts[i] = fmt.Sprintf("%s=%d", d, t[d])
		}
		p.add("traffic", "must sum to 0 or 100 percent, got %d (%s): adjust the split so it adds up to 100", sum, strings.Join(parts, " "))
	}
	if len(p.list) == 0 {
		return nil
	}
	return &diag.Error{Code: diag.BadArgument, Message: "invalid traffic: " + p.list[len(p.list)-1].Message, Target: "traffic", Details: p.list}
}

// Default fills the documented defaults.
func (d *Deployment) Default() {
	if d.InstanceCount == 0 {
		d.InstanceCount = 1
	}
	rs := &d.RequestSettings
	if rs.RequestTimeoutMs == 0 {
		rs.RequestTimeoutMs = DefaultRequestTimeoutMs
	}
	if rs.MaxConcurrentRequestsPerInstance == 0 {
		rs.MaxConcurrentRequestsPerInstance = 1
	}
	for _, pr := range []*Probe{&d.LivenessProbe, &d.ReadinessProbe} {
		if pr.InitialDelay == 0 {
			pr.InitialDelay = 10
		}
		if pr.Period == 0 {
			pr.Period = 10
		}
		if pr.Timeout == 0 {
			pr.Timeout = 2
		}
		if pr.SuccessThreshold == 0 {
			pr.SuccessThreshold = 1
		}
		if pr.FailureThreshold == 0 {
			pr.FailureThreshold = 30
		}
	}
	if d.Model != nil && !d.Model.IsRef() && d.Model.Type == "" {
		d.Model.Type = "custom_model"
	}
	if d.DataCollector != nil {
		d.DataCollector.defaults(d.EndpointName, d.Name)
	}
}

// Validate returns every problem of a defaulted deployment.
func (d *Deployment) Validate() error {
	p := &problems{source: "deployment " + d.Name}
	d.validate(p)
	return p.err("deployment")
}

func (d *Deployment) validate(p *problems) {
	if msg := nameProblem(d.Name); msg != "" {
		p.add("name", "%s (set it in the file, or with --name)", msg)
	}
	if msg := nameProblem(d.EndpointName); msg != "" {
		p.add("endpoint_name", "%s (set it in the file, or with --endpoint-name)", msg)
	}
	if d.Type != "" && d.Type != "managed" && d.Type != "kubernetes" {
		p.add("type", "must be managed or kubernetes, got %q", d.Type)
	}
	d.validateSources(p)
	switch d.EgressPublicNetworkAccess {
	case "", "enabled", "disabled":
	default:
		p.add("egress_public_network_access", "must be enabled or disabled, got %q", d.EgressPublicNetworkAccess)
	}
	d.validateNumbers(p)
	if d.DataCollector != nil {
		d.DataCollector.validate(p)
	}
	if s := d.ScaleSettings; s != nil && s.Type != "" && s.Type != "default" && s.Type != "target_utilization" {
		p.add("scale_settings.type", "must be default or target_utilization, got %q", s.Type)
	}

	if r := d.Resources; r != nil {
		for res, req := range r.Requests {
			lim, ok := r.Limits[res]
			if !ok {
				continue
			}
			rq, err1 := ParseQuantity(req)
			lq, err2 := ParseQuantity(lim)
			switch {
			case err1 != nil:
				p.add("resources.requests."+res, "%v", err1)
			case err2 != nil:
				p.add("resources.limits."+res, "%v", err2)
			case rq > lq:
				p.add("resources.requests."+res, "resource requests greater than limits: requests.%s is %s but limits.%s is %s; lower the request or raise the limit", res, req, res, lim)
			}
		}
	}
	sort.Slice(p.list, func(i, j int) bool { return p.list[i].Target < p.list[j].Target })
}

// validateSources checks the model and the code configuration.
func (d *Deployment) validateSources(p *problems) {
	if m := d.Model; m != nil {
		if m.IsRef() {
			if !strings.HasPrefix(m.Ref, "azureml:") {
				p.add("model", "a model reference looks like azureml:<name>:<version> or azureml:<name>@latest, got %q", m.Ref)
			}
		} else {
			if m.Path == "" {
				p.add("model.path", "is required for an inline model: the file or folder with the model")
			}
			switch m.Type {
			case "custom_model", "mlflow_model", "triton_model":
			default:
				p.add("model.type", "must be custom_model, mlflow_model or triton_model, got %q", m.Type)
			}
		}
	}
	if cc := d.CodeConfiguration; cc != nil {
		if cc.Code == "" {
			p.add("code_configuration.code", "is required: the folder that holds the scoring script")
		}
		if cc.ScoringScript == "" {
			p.add("code_configuration.scoring_script", "is required: the scoring script's path inside code, e.g. score.py")
		} else if msg := scriptOutsideCode(cc.ScoringScript); msg != "" {
			p.add("code_configuration.scoring_script", "%s", msg)
		}
	}
}

// scriptOutsideCode explains why a scoring_script path leaves the code folder, or
// returns "" when it stays inside. The check is lexical: Azure uploads only the code
// folder, so an absolute path or one that climbs out with .. cannot be found there.
func scriptOutsideCode(script string) string {
	slashed := filepath.ToSlash(script)
	if filepath.IsAbs(script) || strings.HasPrefix(slashed, "/") {
		return fmt.Sprintf("must be a path inside code_configuration.code, got the absolute path %q: write it relative to the code folder, e.g. score.py", script)
	}
	if !filepath.IsLocal(filepath.FromSlash(slashed)) {
		return fmt.Sprintf("must stay inside code_configuration.code, got %q, which leaves it through ..: move the script into the code folder (only that folder is deployed) and write its path relative to it", script)
	}
	return ""
}

// ParseQuantity reads a Kubernetes quantity: "500m" or "2" cores, "512Mi", "1.5Gi", "1G" bytes.
func ParseQuantity(q string) (float64, error) {
	units := []struct {
		suffix string
		factor float64
	}{{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40}, {"m", 0.001}, {"k", 1e3}, {"K", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12}}
	factor := 1.0
	num := q
	for _, u := range units {
		if strings.HasSuffix(q, u.suffix) {
			num, factor = strings.TrimSuffix(q, u.suffix), u.factor
			break
		}
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 || math.IsNaN(v) || math.IsInf(v*factor, 0) {
		return 0, fmt.Errorf("%q is not a quantity: write cores as 2 or 500m, memory as 512Mi or 2Gi", q)
	}
	return v * factor, nil
}

// LoadDeployment reads a deployment YAML file, resolves model.path,
// code_configuration.code and environment paths against the file's folder, and checks
// that they exist.
func LoadDeployment(path string, sets []string) (*Deployment, error) {
	data, err := readSpecFile(path, "deployment")
	if err != nil {
		return nil, err
	}
	d, p, err := decodeDeployment(path, data, sets)
	if err != nil {
		return nil, err
	}
	resolvePaths(p, filepath.Dir(path), d)
	if err := p.err("deployment"); err != nil {
		return nil, err
	}
	return d, nil
}

// resolvePaths makes d's local model, code and environment paths absolute against base
// (the spec file's folder) and adds a problem for each one that does not exist.
func resolvePaths(p *problems, base string, d *Deployment) {
	resolve := func(field string, v *string, wantDir bool) {
		if *v == "" || strings.HasPrefix(*v, "azureml:") {
			return
		}
		if !filepath.IsAbs(*v) {
			*v = filepath.Join(base, *v)
		}
		abs, err := filepath.Abs(*v)
		if err == nil {
			*v = abs
		}
		info, err := os.Stat(*v)
		switch {
		case err != nil:
			p.add(field, "%s does not exist (paths are relative to %s)", *v, base)
		case wantDir && !info.IsDir():
			p.add(field, "%s is a file; it must be a folder", *v)
		}
	}
	if m := d.Model; m != nil && !m.IsRef() {
		resolve("model.path", &m.Path, false)
	}
	if cc := d.CodeConfiguration; cc != nil && cc.Code != "" {
		resolve("code_configuration.code", &cc.Code, true)
		if cc.ScoringScript != "" {
			script := filepath.Join(cc.Code, cc.ScoringScript)
			if info, err := os.Stat(script); err != nil || info.IsDir() {
				p.add("code_configuration.scoring_script", "%s is not a file in code_configuration.code (%s)%s", cc.ScoringScript, cc.Code, scriptChoices(cc.Code))
			}
		}
	}
	if env := d.Environment; env != nil && env.Ref == "" {
		if s, ok := env.CondaFile.(string); ok {
			resolve("environment.conda_file", &s, false)
			env.CondaFile = s
		}
		if env.Build != nil {
			resolve("environment.build.path", &env.Build.Path, true)
		}
	}
}

// scriptChoices names the Python files at the top of the code folder, as the fix for a
// scoring_script that is not there ("" when there are none to name).
func scriptChoices(code string) string {
	entries, err := os.ReadDir(code)
	if err != nil {
		return ""
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".py") {
			names = append(names, e.Name())
		}
	}
	switch {
	case len(names) == 0:
		return "; it holds no .py file: put the scoring script there, or point code_configuration.code at the folder that has it"
	case len(names) > 8:
		names = append(names[:8], "...")
	}
	return "; set scoring_script to one of its Python files: " + strings.Join(names, ", ")
}
