package spec

import (
	"sort"
	"strings"
)

// ExampleInstanceType is the SKU a warning suggests when instance_type is missing: the
// minimum the az CLI recommends.
const ExampleInstanceType = "Standard_DS3_v2"

// Warnings lists what a valid, defaulted deployment asks for that Berth accepts but
// Azure would not, or that has no effect on one machine. Each entry starts with the
// field path. They never stop a deployment: the CLI prints them on create and update,
// and the fields stay in the stored spec.
func (d *Deployment) Warnings() []string {
	var w []string
	if d.InstanceType == "" && d.Type != "kubernetes" {
		w = append(w, "instance_type: Azure requires instance_type on a managed online deployment and rejects this file without it; "+
			"Berth runs it on this machine anyway: add instance_type: "+ExampleInstanceType+" (or the SKU you deploy to on Azure)")
	}
	if d.Environment == nil && !d.modelBringsEnvironment() {
		w = append(w, "environment: Azure requires an environment unless the model is an MLflow model (type: mlflow_model); "+
			"Berth runs the scoring script on its own Python: add environment: {image: mcr.microsoft.com/azureml/minimal-py312-inference:latest, conda_file: ./conda.yaml} "+
			"or environment: azureml:<name>:<version>")
	}
	if d.AppInsightsEnabled {
		w = append(w, noEffect("app_insights_enabled", "nothing is sent to Application Insights; read logs with online-deployment get-logs"))
	}
	if d.EgressPublicNetworkAccess == "disabled" {
		w = append(w, noEffect("egress_public_network_access", "the scoring script keeps the machine's network access"))
	}
	w = append(w, d.DataCollector.warnings(d.Type)...)
	if s := d.ScaleSettings; s != nil && s.Type != "target_utilization" && (s.MinInstances != 0 || s.MaxInstances != 0 ||
		s.TargetUtilizationPercentage != 0 || s.PollingInterval != 0) {
		w = append(w, "scale_settings: min_instances, max_instances, target_utilization_percentage and polling_interval apply only with type: target_utilization, in Azure as in Berth; with type: default the deployment runs instance_count instances")
	}
	sort.Strings(w)
	return w
}

// modelBringsEnvironment reports whether Azure deploys the model without an
// environment: an inline MLflow (or Triton) model, or a registered model, whose type
// only the server knows, so the server decides.
func (d *Deployment) modelBringsEnvironment() bool {
	m := d.Model
	if m == nil {
		return false
	}
	if m.IsRef() {
		return strings.HasPrefix(m.Ref, "azureml:")
	}
	return m.Type == "mlflow_model" || m.Type == "triton_model"
}

// Warnings lists the endpoint fields that Berth keeps but that have no effect on one
// machine, each starting with the field path.
func (e *Endpoint) Warnings() []string {
	var w []string
	if e.Identity != nil {
		w = append(w, noEffect("identity", "scoring scripts and secret injection use Berth's own connections, not a managed identity"))
	}
	return w
}

func noEffect(field, why string) string {
	return field + ": has no effect on one machine (" + why + "); Berth keeps it in the stored spec for Azure"
}
