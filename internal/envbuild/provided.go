package envbuild

import (
	"regexp"
	"strings"
)

// providedReason says why Berth provides the distribution dist (a name normalized by
// distName), or returns "" when Berth does not. Such requirements are never installed:
// Berth's worker stands in for the packages Azure's serving image brings, so only
// distributions whose imports the worker really provides are listed, plus the
// meta-package that pulls the serving stack in.
func providedReason(dist string) string {
	switch dist {
	case "azureml-inference-server-http":
		return "Berth is the inference server; its worker provides azureml_inference_server_http.api.aml_request and .aml_response"
	case "azureml-contrib-services":
		return "Berth's worker provides azureml.contrib.services.aml_request and .aml_response"
	case "inference-schema":
		return "Berth's worker provides inference_schema.schema_decorators and inference_schema.parameter_types"
	case "azureml-ai-monitoring":
		return "Berth's worker provides azureml.ai.monitoring (Collector, BasicCorrelationContext) and writes what it collects"
	case "azureml-defaults":
		return "the meta-package of Azure's serving stack, which Berth provides"
	}
	return ""
}

var (
	leadingName = regexp.MustCompile(`^\s*([A-Za-z0-9][A-Za-z0-9._-]*)`)
	separators  = regexp.MustCompile(`[-_.]+`)
)

// distName returns the distribution a requirement line names, normalized as PEP 503
// does (lower case, each run of "-", "_" and "." one "-"), without extras, version
// specifiers, environment markers or a conda channel; "" if the line names none.
func distName(line string) string {
	if i := strings.Index(line, "::"); i >= 0 { // conda channel::package
		line = line[i+2:]
	}
	m := leadingName.FindStringSubmatch(line)
	if m == nil {
		return ""
	}
	return separators.ReplaceAllString(strings.ToLower(m[1]), "-")
}

// splitProvided separates the requirements Berth provides from those to build.
func splitProvided(reqs []Requirement) (build, provided []Requirement) {
	for _, r := range reqs {
		line := r.Line
		if line == "" {
			line = r.Name
		}
		if providedReason(distName(line)) != "" {
			provided = append(provided, r)
			continue
		}
		build = append(build, r)
	}
	return build, provided
}

// providedLine is the log line naming the requirements Berth provides, as written.
func providedLine(provided []Requirement) string {
	lines := make([]string, len(provided))
	for i, r := range provided {
		lines[i] = r.Line
	}
	return "provided by Berth, not installed: " + strings.Join(lines, ", ")
}
