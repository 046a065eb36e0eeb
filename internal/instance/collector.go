package instance

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Data collection: how berth serve tells an instance what to collect and where.
const (
	// EnvDataCollector carries a deployment's data collector to its instance and its
	// Python workers, as the JSON of Collector; unset, nothing is collected.
	EnvDataCollector = "BERTH_DATA_COLLECTOR"
	// EnvCollectMaxFileBytes is the size at which a collection file is rotated (a
	// deployment's environment_variables, else berth serve's environment).
	EnvCollectMaxFileBytes = "BERTH_COLLECT_MAX_FILE_BYTES"
	// DefaultCollectMaxFileBytes is the rotation size when EnvCollectMaxFileBytes is unset.
	DefaultCollectMaxFileBytes = 64 << 20
	// MinCollectMaxFileBytes is the smallest rotation size accepted.
	MinCollectMaxFileBytes = 1024
)

// Collector is what one instance collects: the enabled collections of the
// deployment's data_collector and where their files go.
type Collector struct {
	// Dir is the deployment's folder of collections,
	// <data dir>/collections/<endpoint>/<deployment>; each collection has a folder in it.
	Dir          string   `json:"dir"`
	Endpoint     string   `json:"endpoint"`
	Deployment   string   `json:"deployment"`
	Instance     int      `json:"instance"`
	SamplingRate float64  `json:"sampling_rate"`
	RollingRate  string   `json:"rolling_rate"`              // Minute, Hour, Day, Month or Year
	Collections  []string `json:"collections"`               // the enabled ones
	Headers      []string `json:"capture_headers,omitempty"` // request headers kept by the request collection
	MaxFileBytes int64    `json:"max_file_bytes,omitempty"`  // rotation size; 0: from the environment
}

// Has reports whether collection name is enabled.
func (c *Collector) Has(name string) bool {
	for _, n := range c.Collections {
		if n == name {
			return true
		}
	}
	return false
}

// Env is the KEY=VALUE variable that carries c.
func (c *Collector) Env() (string, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("encode data collector: %w", err)
	}
	return string(b), nil
}

// ReadCollector reads the collector from the variables an instance starts with (the
// last of env wins, then getenv, the server's own environment); nil when none is set.
// A bad rotation size is an error naming the variable and the fix.
func ReadCollector(env []string, getenv func(string) string) (*Collector, error) {
	lookup := func(key string) string {
		v := getenv(key)
		for _, kv := range env {
			if k, val, ok := strings.Cut(kv, "="); ok && k == key {
				v = val
			}
		}
		return v
	}
	raw := lookup(EnvDataCollector)
	if raw == "" {
		return nil, nil
	}
	var c Collector
	if err := json.Unmarshal([]byte(raw), &c); err != nil {
		return nil, fmt.Errorf("%s: not the JSON berth serve writes: %w", EnvDataCollector, err)
	}
	if c.MaxFileBytes == 0 {
		c.MaxFileBytes = DefaultCollectMaxFileBytes
		if s := strings.TrimSpace(lookup(EnvCollectMaxFileBytes)); s != "" {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n < MinCollectMaxFileBytes {
				return nil, fmt.Errorf("%s=%q: want a whole number of bytes, at least %d (default %d, 64 MiB)", EnvCollectMaxFileBytes, s, MinCollectMaxFileBytes, DefaultCollectMaxFileBytes)
			}
			c.MaxFileBytes = n
		}
	}
	if c.SamplingRate <= 0 || c.SamplingRate > 1 {
		c.SamplingRate = 1
	}
	return &c, nil
}
