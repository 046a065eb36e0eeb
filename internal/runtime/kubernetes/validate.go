package kubernetes

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/berthml/berth/internal/diag"
)

// ResourceGPU is the GPU resource name Azure's Kubernetes deployments use.
const ResourceGPU = "nvidia.com/gpu"

// resourceNames are the resources a deployment may ask for, as Azure documents them.
func resourceNames() []corev1.ResourceName {
	return []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, ResourceGPU}
}

// Validate checks what Kubernetes would refuse, or Azure refuses for Kubernetes
// deployments, before anything is applied, and returns the container resources to
// apply. Every problem is reported at once, as one BadArgument whose details name each
// field and its fix: a name Kubernetes cannot take, a quantity it cannot parse, a
// resource other than cpu, memory and nvidia.com/gpu, requests greater than limits, a
// GPU not in limits, limits over the instance type's, and a liveness_probe
// success_threshold other than 1.
func Validate(s DeploymentSpec) (corev1.ResourceRequirements, error) {
	var p problems
	name := ObjectName(s.Endpoint, s.Deployment)
	for _, msg := range validation.IsDNS1123Label(name) {
		p.add("name", "the Kubernetes name %q (endpoint and deployment names joined by -) is invalid: %s; endpoint and deployment names together must be 6 to 62 characters", name, msg)
	}
	if s.Namespace != "" {
		for _, msg := range validation.IsDNS1123Label(s.Namespace) {
			p.add("namespace", "%q is not a Kubernetes namespace name: %s", s.Namespace, msg)
		}
	}
	if t := s.Liveness.SuccessThreshold; t != 1 && t != 0 {
		p.add("liveness_probe.success_threshold", "must be 1 on Kubernetes, got %d: a liveness probe fails or succeeds on one answer; remove the field or set it to 1", t)
	}
	var out corev1.ResourceRequirements
	var typeLimits corev1.ResourceList
	if it := s.InstanceType; it != nil {
		what := "instance type " + it.Name
		req, lim := p.resources(what+" requests", what+" limits", it.Resources, false)
		out = corev1.ResourceRequirements{Requests: req, Limits: lim}
		typeLimits = lim
	}
	if r := s.Resources; r != nil {
		req, lim := p.resources("resources.requests", "resources.limits", *r, true)
		out = corev1.ResourceRequirements{Requests: req, Limits: lim}
		p.withinInstanceType(lim, typeLimits, s.InstanceType)
	}
	if err := p.err(s); err != nil {
		return corev1.ResourceRequirements{}, err
	}
	return out, nil
}

// problems collects BadArgument details, each with its field path.
type problems []*diag.Error

func (p *problems) add(field, format string, args ...any) {
	*p = append(*p, &diag.Error{Code: diag.BadArgument, Target: field, Message: fmt.Sprintf(format, args...)})
}

func (p problems) err(s DeploymentSpec) error {
	if len(p) == 0 {
		return nil
	}
	sort.SliceStable(p, func(i, j int) bool { return p[i].Target < p[j].Target })
	source := fmt.Sprintf("deployment %s of endpoint %s", s.Deployment, s.Endpoint)
	if len(p) == 1 {
		return &diag.Error{Code: diag.BadArgument, Target: p[0].Target, Details: p,
			Message: fmt.Sprintf("%s: invalid for Kubernetes: %s: %s", source, p[0].Target, p[0].Message)}
	}
	return &diag.Error{Code: diag.BadArgument, Details: p,
		Message: fmt.Sprintf("%s: invalid for Kubernetes, %d problems", source, len(p))}
}

// resources parses one requests/limits pair. required says requests.cpu and
// requests.memory must be set (Azure's schema for a deployment's resources block).
func (p *problems) resources(reqField, limField string, r Resources, required bool) (corev1.ResourceList, corev1.ResourceList) {
	req := p.list(reqField, r.Requests)
	lim := p.list(limField, r.Limits)
	if required {
		for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			if _, ok := r.Requests[string(name)]; !ok {
				p.add(reqField+"."+string(name), "is required on Kubernetes: write cores as 500m or 1, memory as 512Mi or 2Gi")
			}
		}
	}
	if q, ok := req[ResourceGPU]; ok {
		if l, ok := lim[ResourceGPU]; !ok {
			p.add(reqField+"."+ResourceGPU, "GPUs are asked for in limits on Kubernetes: move %s: %s to %s", ResourceGPU, q.String(), limField)
		} else if q.Cmp(l) != 0 {
			p.add(reqField+"."+ResourceGPU, "must equal %s.%s (%s), got %s: Kubernetes does not overcommit GPUs; set it in limits only", limField, ResourceGPU, l.String(), q.String())
		}
	}
	for _, name := range resourceNames() {
		q, ok1 := req[name]
		l, ok2 := lim[name]
		if ok1 && ok2 && q.Cmp(l) > 0 && name != ResourceGPU {
			p.add(reqField+"."+string(name), "resource requests greater than limits: %s.%s is %s but %s.%s is %s; lower the request or raise the limit",
				reqField, name, r.Requests[string(name)], limField, name, r.Limits[string(name)])
		}
	}
	return req, lim
}

// list parses one map of quantities, adding a problem for each bad name or value.
func (p *problems) list(field string, m map[string]string) corev1.ResourceList {
	if len(m) == 0 {
		return nil
	}
	out := corev1.ResourceList{}
	for name, v := range m {
		if !knownResource(name) {
			p.add(field+"."+name, "is not a resource Berth maps: use cpu, memory or %s", ResourceGPU)
			continue
		}
		q, err := resource.ParseQuantity(strings.TrimSpace(v))
		switch {
		case err != nil:
			p.add(field+"."+name, "%q is not a quantity: write cores as 2 or 500m, memory as 512Mi or 2Gi, GPUs as 1", v)
		case q.Sign() <= 0:
			p.add(field+"."+name, "must be greater than 0, got %q", v)
		default:
			out[corev1.ResourceName(name)] = q
		}
	}
	return out
}

func knownResource(name string) bool {
	for _, n := range resourceNames() {
		if string(n) == name {
			return true
		}
	}
	return false
}

// withinInstanceType checks that the deployment's limits do not exceed its instance
// type's.
func (p *problems) withinInstanceType(lim, typeLimits corev1.ResourceList, it *InstanceType) {
	for _, name := range resourceNames() {
		l, ok1 := lim[name]
		t, ok2 := typeLimits[name]
		if ok1 && ok2 && l.Cmp(t) > 0 {
			p.add("resources.limits."+string(name), "%s is over the limit of instance type %s (%s): lower it, or pick an instance type with more %s",
				l.String(), it.Name, t.String(), name)
		}
	}
}
