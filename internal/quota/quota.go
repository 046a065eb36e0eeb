// Package quota owns what deployments may use: the instance_type table (cores, memory
// and disk of each VM size) and the host's quota, checked before anything is stored.
package quota

import (
	"fmt"
	"sort"
	"strings"

	"github.com/berthml/berth/internal/diag"
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
// documentation and samples: cores, memory and temporary disk of each VM size, keyed
// by lower-case name.
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

// Limits is what the host lends to all deployments together; zero means no limit.
type Limits struct {
	Cores       float64
	MemoryBytes int64
	// MaxEndpoints is the number of endpoints allowed (Azure: 100 per subscription and region).
	MaxEndpoints int
}

// MaxDeploymentsPerEndpoint is Azure's limit.
const MaxDeploymentsPerEndpoint = 20

// Checker checks asks against the instance types and the limits.
type Checker struct {
	// Types maps lower-case instance_type names to sizes (nil: DefaultInstanceTypes).
	Types  map[string]InstanceType
	Limits Limits
}

// InstanceType resolves an instance_type name ("" = no limits).
func (c Checker) InstanceType(name string) (InstanceType, error) {
	if name == "" {
		return InstanceType{}, nil
	}
	types := c.Types
	if types == nil {
		types = DefaultInstanceTypes()
	}
	if t, ok := types[strings.ToLower(name)]; ok {
		return t, nil
	}
	known := make([]string, 0, len(types))
	for _, t := range types {
		known = append(known, t.Name)
	}
	sort.Strings(known)
	return InstanceType{}, &diag.Error{Code: diag.BadArgument, Target: "instance_type",
		Message: fmt.Sprintf("instance_type %q is not known: use one of %s, or add it to the file given to `berth serve --instance-types`", name, strings.Join(known, ", "))}
}

// Use is what one deployment takes: count instances of an instance type.
type Use struct {
	Endpoint, Deployment string
	InstanceType         string
	Count                int
}

// Ask is a deployment about to be stored.
type Ask struct {
	Use
	// Replacing is set for an update: the deployment's current use is released.
	Replacing bool
	// ModelBytes is the size of its model; FreeDisk the free disk of the data dir
	// (negative when unknown) and DataDir its path, for the message.
	ModelBytes int64
	FreeDisk   int64
	DataDir    string
}

// Deployment refuses an ask whose instances would take the host over its quota, an
// endpoint over the deployment limit, or a model over the disk. others is what every
// stored, not failed deployment uses.
func (c Checker) Deployment(ask Ask, others []Use) error {
	it, err := c.InstanceType(ask.InstanceType)
	if err != nil {
		return err
	}
	if err := checkDisk(ask, it); err != nil {
		return err
	}
	onEndpoint := 0
	var usedCores float64
	var usedMemory int64
	for _, o := range others {
		if o.Endpoint == ask.Endpoint {
			onEndpoint++
			if o.Deployment == ask.Deployment && ask.Replacing {
				continue
			}
		}
		ot, err := c.InstanceType(o.InstanceType)
		if err != nil {
			continue
		}
		usedCores += ot.Cores * float64(o.Count)
		usedMemory += ot.MemoryBytes * int64(o.Count)
	}
	if !ask.Replacing && onEndpoint >= MaxDeploymentsPerEndpoint {
		return &diag.Error{Code: diag.OutOfQuota, Target: "deployments",
			Message: fmt.Sprintf("endpoint %q already has %d deployments, the most an endpoint may have: delete one you no longer use (`berth online-deployment delete`)", ask.Endpoint, onEndpoint)}
	}
	q := c.Limits
	askCores := it.Cores * float64(ask.Count)
	askMemory := it.MemoryBytes * int64(ask.Count)
	if q.Cores > 0 && usedCores+askCores > q.Cores {
		return &diag.Error{Code: diag.OutOfQuota, Target: "cores",
			Message: fmt.Sprintf("not enough CPU quota: %d × %s asks for %g cores, but only %g of the host's %g are free (%g are used by other deployments): lower instance_count, pick a smaller instance_type, delete unused deployments, or raise `berth serve --quota-cores`",
				ask.Count, it.Name, askCores, max(q.Cores-usedCores, 0), q.Cores, usedCores)}
	}
	if q.MemoryBytes > 0 && usedMemory+askMemory > q.MemoryBytes {
		return &diag.Error{Code: diag.OutOfQuota, Target: "memory",
			Message: fmt.Sprintf("not enough memory quota: %d × %s asks for %s, but only %s of the host's %s are free: lower instance_count, pick a smaller instance_type, delete unused deployments, or raise `berth serve --quota-memory`",
				ask.Count, it.Name, Bytes(askMemory), Bytes(max(q.MemoryBytes-usedMemory, 0)), Bytes(q.MemoryBytes))}
	}
	return nil
}

// checkDisk refuses a model larger than its instance_type's disk, or than the free disk
// of the data dir for all its instances' copies.
func checkDisk(ask Ask, it InstanceType) error {
	size := ask.ModelBytes
	if size <= 0 {
		return nil
	}
	if it.DiskBytes > 0 && size > it.DiskBytes {
		return &diag.Error{Code: diag.OutOfQuota, Target: "disk",
			Message: fmt.Sprintf("the model is %s but instance_type %s has %s of disk: pick an instance_type with more disk, or make the model smaller", Bytes(size), it.Name, Bytes(it.DiskBytes))}
	}
	if need := size * int64(ask.Count); ask.FreeDisk >= 0 && need > ask.FreeDisk {
		return &diag.Error{Code: diag.OutOfQuota, Target: "disk",
			Message: fmt.Sprintf("%d copies of the %s model need %s but only %s of disk is free under %s: free some space, or lower instance_count", ask.Count, Bytes(size), Bytes(need), Bytes(ask.FreeDisk), ask.DataDir)}
	}
	return nil
}

// Endpoints refuses an endpoint beyond the configured count, given how many exist.
func (c Checker) Endpoints(existing int) error {
	if c.Limits.MaxEndpoints <= 0 || existing < c.Limits.MaxEndpoints {
		return nil
	}
	return &diag.Error{Code: diag.OutOfQuota, Target: "endpoints",
		Message: fmt.Sprintf("there are already %d endpoints, the most this server allows: delete unused ones (`berth online-endpoint delete`) or raise `berth serve --max-endpoints`", existing)}
}

// Bytes prints a size for people: GiB, MiB or bytes.
func Bytes(n int64) string {
	switch {
	case n >= gib:
		return fmt.Sprintf("%.1f GiB", float64(n)/gib)
	case n >= 1<<20:
		return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d bytes", n)
}
