package controller

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"syscall"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/spec"
)

// InstanceType is a VM size: what one instance of a deployment may use.
type InstanceType struct {
	Name        string  `json:"name" yaml:"name"`
	Cores       float64 `json:"cores" yaml:"cores"`
	MemoryBytes int64   `json:"memory_bytes" yaml:"memory_bytes"`
	DiskBytes   int64   `json:"disk_bytes" yaml:"disk_bytes"`
}

const gib = 1 << 30

// DefaultInstanceTypes are the Azure managed online endpoint SKUs used in the
// documentation and samples: cores, memory and temporary disk of each VM size.
func DefaultInstanceTypes() map[string]InstanceType {
	table := []InstanceType{
		{"Standard_DS1_v2", 1, 3.5 * gib, 7 * gib},
		{"Standard_DS2_v2", 2, 7 * gib, 14 * gib},
		{"Standard_DS3_v2", 4, 14 * gib, 28 * gib},
		{"Standard_DS4_v2", 8, 28 * gib, 56 * gib},
		{"Standard_DS5_v2", 16, 56 * gib, 112 * gib},
		{"Standard_F2s_v2", 2, 4 * gib, 16 * gib},
		{"Standard_F4s_v2", 4, 8 * gib, 32 * gib},
		{"Standard_F8s_v2", 8, 16 * gib, 64 * gib},
		{"Standard_F16s_v2", 16, 32 * gib, 128 * gib},
		{"Standard_E2s_v3", 2, 16 * gib, 32 * gib},
		{"Standard_E4s_v3", 4, 32 * gib, 64 * gib},
		{"Standard_E8s_v3", 8, 64 * gib, 128 * gib},
		{"Standard_NC6s_v3", 6, 112 * gib, 736 * gib},
	}
	out := make(map[string]InstanceType, len(table))
	for _, t := range table {
		out[strings.ToLower(t.Name)] = t
	}
	return out
}

// Quota is what the host lends to all deployments together; zero means no limit.
type Quota struct {
	Cores       float64
	MemoryBytes int64
	// MaxEndpoints is the number of endpoints allowed (Azure: 100 per subscription and region).
	MaxEndpoints int
}

// Limits from the Azure documentation.
const maxDeploymentsPerEndpoint = 20

// instanceType resolves a deployment's instance_type ("" = no limits).
func (c *Controller) instanceType(name string) (InstanceType, error) {
	if name == "" {
		return InstanceType{}, nil
	}
	if t, ok := c.cfg.InstanceTypes[strings.ToLower(name)]; ok {
		return t, nil
	}
	known := make([]string, 0, len(c.cfg.InstanceTypes))
	for _, t := range c.cfg.InstanceTypes {
		known = append(known, t.Name)
	}
	sort.Strings(known)
	return InstanceType{}, &diag.Error{Code: diag.BadArgument, Target: "instance_type",
		Message: fmt.Sprintf("instance_type %q is not known: use one of %s, or add it to the file given to `berth serve --instance-types`", name, strings.Join(known, ", "))}
}

// checkQuota refuses a deployment whose instances would take the host over its quota,
// or an endpoint over the deployment limit. replacing names a deployment whose current
// use is released by this one (an update).
func (c *Controller) checkQuota(ctx context.Context, in DeploymentInput, replacing bool) error {
	d := in.Spec
	it, err := c.instanceType(d.InstanceType)
	if err != nil {
		return err
	}
	if err := c.checkDisk(in, it); err != nil {
		return err
	}
	deps, err := c.cfg.Store.ListDeployments(ctx, "")
	if err != nil {
		return err
	}
	onEndpoint := 0
	var usedCores float64
	var usedMemory int64
	for _, other := range deps {
		if other.Endpoint == d.EndpointName {
			onEndpoint++
		}
		if other.Endpoint == d.EndpointName && other.Name == d.Name && replacing {
			continue
		}
		if other.State == StateFailed || other.State == StateDeleting {
			continue
		}
		od, err := spec.DecodeDeployment("stored deployment", other.Spec, nil)
		if err != nil {
			continue
		}
		ot, err := c.instanceType(od.InstanceType)
		if err != nil {
			continue
		}
		usedCores += ot.Cores * float64(od.InstanceCount)
		usedMemory += ot.MemoryBytes * int64(od.InstanceCount)
	}
	if !replacing && onEndpoint >= maxDeploymentsPerEndpoint {
		return &diag.Error{Code: diag.OutOfQuota, Target: "deployments",
			Message: fmt.Sprintf("endpoint %q already has %d deployments, the most an endpoint may have: delete one you no longer use (`berth online-deployment delete`)", d.EndpointName, onEndpoint)}
	}
	q := c.cfg.Quota
	askCores := it.Cores * float64(d.InstanceCount)
	askMemory := it.MemoryBytes * int64(d.InstanceCount)
	if q.Cores > 0 && usedCores+askCores > q.Cores {
		return &diag.Error{Code: diag.OutOfQuota, Target: "cores",
			Message: fmt.Sprintf("not enough CPU quota: %d × %s asks for %g cores, but only %g of the host's %g are free (%g are used by other deployments): lower instance_count, pick a smaller instance_type, delete unused deployments, or raise `berth serve --quota-cores`",
				d.InstanceCount, it.Name, askCores, max(q.Cores-usedCores, 0), q.Cores, usedCores)}
	}
	if q.MemoryBytes > 0 && usedMemory+askMemory > q.MemoryBytes {
		return &diag.Error{Code: diag.OutOfQuota, Target: "memory",
			Message: fmt.Sprintf("not enough memory quota: %d × %s asks for %s, but only %s of the host's %s are free: lower instance_count, pick a smaller instance_type, delete unused deployments, or raise `berth serve --quota-memory`",
				d.InstanceCount, it.Name, bytesString(askMemory), bytesString(max(q.MemoryBytes-usedMemory, 0)), bytesString(q.MemoryBytes))}
	}
	return nil
}

// checkEndpointQuota refuses an endpoint beyond the configured count.
func (c *Controller) checkEndpointQuota(ctx context.Context) error {
	if c.cfg.Quota.MaxEndpoints <= 0 {
		return nil
	}
	eps, err := c.cfg.Store.ListEndpoints(ctx)
	if err != nil {
		return err
	}
	if len(eps) >= c.cfg.Quota.MaxEndpoints {
		return &diag.Error{Code: diag.OutOfQuota, Target: "endpoints",
			Message: fmt.Sprintf("there are already %d endpoints, the most this server allows: delete unused ones (`berth online-endpoint delete`) or raise `berth serve --max-endpoints`", len(eps))}
	}
	return nil
}

func bytesString(n int64) string {
	switch {
	case n >= gib:
		return fmt.Sprintf("%.1f GiB", float64(n)/gib)
	case n >= 1<<20:
		return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d bytes", n)
}

// checkDisk refuses a model larger than its instance_type's disk, or than the free disk
// of the data dir for all its instances' copies.
func (c *Controller) checkDisk(in DeploymentInput, it InstanceType) error {
	if in.ModelArtifact == "" {
		return nil
	}
	size, err := c.cfg.Artifacts.Size(in.ModelArtifact)
	if err != nil {
		return nil // reported by check() as a missing artifact
	}
	if it.DiskBytes > 0 && size > it.DiskBytes {
		return &diag.Error{Code: diag.OutOfQuota, Target: "disk",
			Message: fmt.Sprintf("the model is %s but instance_type %s has %s of disk: pick an instance_type with more disk, or make the model smaller", bytesString(size), it.Name, bytesString(it.DiskBytes))}
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(c.cfg.DataDir, &st); err == nil {
		free := int64(st.Bavail) * int64(st.Bsize)
		need := size * int64(in.Spec.InstanceCount)
		if need > free {
			return &diag.Error{Code: diag.OutOfQuota, Target: "disk",
				Message: fmt.Sprintf("%d copies of the %s model need %s but only %s of disk is free under %s: free some space, or lower instance_count", in.Spec.InstanceCount, bytesString(size), bytesString(need), bytesString(free), c.cfg.DataDir)}
		}
	}
	return nil
}
