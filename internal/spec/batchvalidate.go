package spec

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/berthml/berth/internal/diag"
)

// Ranges of a batch deployment's and a compute's integer fields. Azure documents none
// of them; they are Berth's bounds, wide enough for any real job and small enough that
// no product of them (nodes × processes, retries × timeout) overflows.
const (
	// MaxBatchInstanceCount bounds resources.instance_count and a compute's max_instances.
	MaxBatchInstanceCount = 1000
	// MaxComputeInstances bounds a compute's min_instances and max_instances.
	MaxComputeInstances = MaxBatchInstanceCount
	// MaxConcurrencyPerInstance bounds settings.max_concurrency_per_instance: Python
	// worker processes on one instance (node).
	MaxConcurrencyPerInstance = 64
	// MaxMiniBatchSize bounds settings.mini_batch_size, in files.
	MaxMiniBatchSize = 1_000_000
	// MaxBatchRetries bounds settings.retry_settings.max_retries.
	MaxBatchRetries = 100
	// MaxBatchTimeoutSeconds bounds settings.retry_settings.timeout (one day).
	MaxBatchTimeoutSeconds = 86400
	// MaxErrorThreshold bounds settings.error_threshold (-1 means no limit).
	MaxErrorThreshold = math.MaxInt32
	// DefaultBatchAuthMode is the only auth_mode of a batch endpoint.
	DefaultBatchAuthMode = "aad_token"
	// DefaultComputeType is the only compute type Berth creates.
	DefaultComputeType = "amlcompute"
)

// sortProblems orders problems by field path, as online validation does.
func sortProblems(p *problems) {
	sort.SliceStable(p.list, func(i, j int) bool { return p.list[i].Target < p.list[j].Target })
}

// Default fills the documented defaults.
func (e *BatchEndpoint) Default() {
	switch strings.ToLower(e.AuthMode) {
	case "", "aad_token", "aadtoken":
		e.AuthMode = DefaultBatchAuthMode
	}
}

// Validate returns every problem of a defaulted batch endpoint.
func (e *BatchEndpoint) Validate() error {
	p := &problems{source: "batch endpoint " + e.Name}
	e.validate(p)
	return p.err("batch endpoint")
}

func (e *BatchEndpoint) validate(p *problems) {
	if msg := nameProblem(e.Name); msg != "" {
		p.add("name", "%s", msg)
	}
	if e.AuthMode != DefaultBatchAuthMode {
		p.add("auth_mode", "batch endpoints support only auth_mode: aad_token, got %q", e.AuthMode)
	}
	if n := e.Defaults.DeploymentName; n != "" {
		if msg := nameProblem(n); msg != "" {
			p.add("defaults.deployment_name", "%s", msg)
		}
	}
	sortProblems(p)
}

// Default fills the documented defaults (spec §3.2).
func (d *BatchDeployment) Default() {
	if d.Resources.InstanceCount == 0 {
		d.Resources.InstanceCount = DefaultBatchInstanceCount
	}
	s := &d.Settings
	if s.MaxConcurrencyPerInstance == 0 {
		s.MaxConcurrencyPerInstance = DefaultMaxConcurrency
	}
	if s.MiniBatchSize == 0 {
		s.MiniBatchSize = DefaultMiniBatchSize
	}
	if s.OutputAction == "" {
		s.OutputAction = DefaultOutputAction
	}
	if s.OutputFileName == "" {
		s.OutputFileName = DefaultOutputFileName
	}
	if s.RetrySettings.MaxRetries == nil {
		n := DefaultBatchMaxRetries
		s.RetrySettings.MaxRetries = &n
	}
	if s.RetrySettings.Timeout == 0 {
		s.RetrySettings.Timeout = DefaultBatchTimeoutSeconds
	}
	if s.ErrorThreshold == nil {
		n := DefaultErrorThreshold
		s.ErrorThreshold = &n
	}
	if s.LoggingLevel == "" {
		s.LoggingLevel = DefaultBatchLoggingLevel
	}
	if d.Model != nil && !d.Model.IsRef() && d.Model.Type == "" {
		d.Model.Type = "custom_model"
	}
}

// Validate returns every problem of a defaulted batch deployment.
func (d *BatchDeployment) Validate() error {
	p := &problems{source: "batch deployment " + d.Name}
	d.validate(p)
	sortProblems(p)
	return p.err("batch deployment")
}

func (d *BatchDeployment) validate(p *problems) {
	if msg := nameProblem(d.Name); msg != "" {
		p.add("name", "%s (set it in the file, or with --name)", msg)
	}
	if msg := nameProblem(d.EndpointName); msg != "" {
		p.add("endpoint_name", "%s (set it in the file, or with --endpoint-name)", msg)
	}
	switch d.Type {
	case "", "model":
	case "pipeline":
		p.add("type", "pipeline component batch deployments are not supported yet: deploy a model (type: model) with a scoring script")
		return
	default:
		p.add("type", "must be model or pipeline, got %q", d.Type)
	}
	if d.Component != nil {
		p.add("component", "is for pipeline deployments (type: pipeline), which are not supported yet: deploy a model with a scoring script")
	}
	if d.JobDef != nil {
		p.add("job_definition", "is for pipeline deployments (type: pipeline), which are not supported yet: deploy a model with a scoring script")
	}
	if d.Model == nil {
		p.add("model", "is required for a model batch deployment: azureml:<name>:<version>, azureml:<name>@latest, or an inline model with a path")
	}
	// A missing code_configuration is allowed: only an mlflow_model runs without a
	// scoring script, and only the server knows the type of a registered model.
	(&Deployment{Model: d.Model, CodeConfiguration: d.CodeConfiguration}).validateSources(p)
	if d.Compute == "" {
		p.add("compute", "is required: compute: azureml:<cluster>, a compute made with `berth compute create -n <name> --type amlcompute`")
	} else if _, err := ComputeName(d.Compute); err != nil {
		p.add("compute", "%s", diag.As(err).Message)
	}
	d.validateSettings(p)
}

// validateSettings checks resources and settings of a defaulted batch deployment.
func (d *BatchDeployment) validateSettings(p *problems) {
	checkRange(p, "resources.instance_count", d.Resources.InstanceCount, 1, MaxBatchInstanceCount,
		"set the number of nodes a job runs on (default 1), at most the compute's max_instances")
	s := d.Settings
	checkRange(p, "settings.max_concurrency_per_instance", s.MaxConcurrencyPerInstance, 1, MaxConcurrencyPerInstance,
		fmt.Sprintf("set the number of worker processes per instance (default 1), %d per instance at most", MaxConcurrencyPerInstance))
	checkRange(p, "settings.mini_batch_size", s.MiniBatchSize, 1, MaxMiniBatchSize,
		"set the number of files one run() call receives (default 10)")
	if s.RetrySettings.MaxRetries != nil {
		checkRange(p, "settings.retry_settings.max_retries", *s.RetrySettings.MaxRetries, 0, MaxBatchRetries,
			"set how many times a failed or timed-out mini-batch is retried (default 3)")
	}
	checkRange(p, "settings.retry_settings.timeout", s.RetrySettings.Timeout, 1, MaxBatchTimeoutSeconds,
		"set the seconds one run() call may take (default 30), one day at most")
	if s.ErrorThreshold != nil {
		checkRange(p, "settings.error_threshold", *s.ErrorThreshold, -1, MaxErrorThreshold,
			"set the number of failed files the job tolerates, or -1 for no limit (the default)")
	}
	switch s.LoggingLevel {
	case "warning", "info", "debug":
	default:
		p.add("settings.logging_level", "must be warning, info or debug, got %q", s.LoggingLevel)
	}
	switch s.OutputAction {
	case OutputAppendRow, OutputSummaryOnly:
	default:
		p.add("settings.output_action", "must be append_row or summary_only, got %q", s.OutputAction)
	}
	if msg := fileNameProblem(s.OutputFileName); msg != "" {
		p.add("settings.output_file_name", "%s", msg)
	}
}

// fileNameProblem explains why name is not a plain file name, or returns "".
func fileNameProblem(name string) string {
	switch {
	case name == "":
		return "must not be empty: name the output file, e.g. predictions.csv"
	case name == "." || name == "..":
		return fmt.Sprintf("must be a file name, got %q: name the output file, e.g. predictions.csv", name)
	case strings.ContainsAny(name, `/\`) || strings.ContainsRune(name, 0):
		return fmt.Sprintf("must be a plain file name without folders, got %q: the file is written in the job's output folder", name)
	}
	return ""
}

// ComputeName returns the compute name of a deployment's compute reference,
// "azureml:<name>" or "<name>".
func ComputeName(ref string) (string, error) {
	name := strings.TrimPrefix(ref, "azureml:")
	if msg := nameProblem(name); msg != "" {
		return "", &diag.Error{Code: diag.BadArgument, Target: "compute", Message: fmt.Sprintf(
			"compute %q: the name %s: write compute: azureml:<cluster>, a compute made with `berth compute create -n <name> --type amlcompute`", ref, msg)}
	}
	return name, nil
}

// AsDeployment returns the online view of a batch deployment that the environment
// builder takes: Name, EndpointName, Model, CodeConfiguration, Environment,
// EnvironmentVariables (settings.environment_variables) and InstanceCount. It shares
// Model, CodeConfiguration, Environment and the variables' map with d.
func (d *BatchDeployment) AsDeployment() *Deployment {
	return &Deployment{
		Name:                 d.Name,
		EndpointName:         d.EndpointName,
		Model:                d.Model,
		CodeConfiguration:    d.CodeConfiguration,
		Environment:          d.Environment,
		EnvironmentVariables: d.Settings.EnvironmentVariables,
		InstanceCount:        d.Resources.InstanceCount,
	}
}

// Default fills the documented defaults: type amlcompute, min_instances 0,
// max_instances 1.
func (c *Compute) Default() {
	if c.Type == "" || strings.EqualFold(c.Type, DefaultComputeType) {
		c.Type = DefaultComputeType
	}
	if strings.EqualFold(c.Type, KubernetesComputeType) {
		c.Type = KubernetesComputeType
		if c.Namespace == "" {
			c.Namespace = "default"
		}
		if c.Image == "" {
			c.Image = DefaultBerthImage
		}
	}
	if c.MaxInstances == 0 {
		c.MaxInstances = 1
	}
	switch strings.ToLower(c.Tier) {
	case "dedicated", "low_priority":
		c.Tier = strings.ToLower(c.Tier)
	}
}

// Validate returns every problem of a defaulted compute.
func (c *Compute) Validate() error {
	p := &problems{source: "compute " + c.Name}
	c.validate(p)
	sortProblems(p)
	return p.err("compute")
}

func (c *Compute) validate(p *problems) {
	if msg := nameProblem(c.Name); msg != "" {
		p.add("name", "%s (set it in the file, or with --name)", msg)
	}
	switch {
	case c.Type == DefaultComputeType:
	case c.Type == KubernetesComputeType:
		if c.Kubeconfig == "" {
			p.add("kubeconfig", "a Kubernetes compute needs its cluster's kubeconfig: `berth compute attach -n %s --type kubernetes --kubeconfig <file> [--namespace <ns>]`", c.Name)
		}
		if msg := namespaceProblem(c.Namespace); msg != "" {
			p.add("namespace", "%s", msg)
		}
	default:
		p.add("type", "must be amlcompute (or kubernetes, with `berth compute attach`), got %q", c.Type)
	}
	instances := fmt.Sprintf("set a number of nodes, %d at most", MaxComputeInstances)
	checkRange(p, "min_instances", c.MinInstances, 0, MaxComputeInstances, instances+" (default 0)")
	checkRange(p, "max_instances", c.MaxInstances, 1, MaxComputeInstances, instances+" (default 1)")
	if c.MinInstances > c.MaxInstances && c.MaxInstances >= 1 && c.MinInstances <= MaxComputeInstances {
		p.add("min_instances", "must not exceed max_instances (%d), got %d: lower min_instances or raise max_instances", c.MaxInstances, c.MinInstances)
	}
	if c.IdleTimeBeforeScaleDown < 0 {
		p.add("idle_time_before_scale_down", "must be 0 or more seconds, got %d", c.IdleTimeBeforeScaleDown)
	}
	switch c.Tier {
	case "", "dedicated", "low_priority":
	default:
		p.add("tier", "must be dedicated or low_priority, got %q", c.Tier)
	}
}

// namespaceProblem says what is wrong with a Kubernetes namespace name, or "".
func namespaceProblem(ns string) string {
	if len(ns) == 0 || len(ns) > 63 {
		return fmt.Sprintf("must be 1 to 63 characters, got %q", ns)
	}
	for i, r := range ns {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' && i > 0 && i < len(ns)-1
		if !ok {
			return fmt.Sprintf("%q is not a Kubernetes namespace name: lower-case letters, digits and '-' inside", ns)
		}
	}
	return ""
}
