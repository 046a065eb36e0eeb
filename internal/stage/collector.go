package stage

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/berthml/berth/internal/instance"
	"github.com/berthml/berth/internal/runtime"
	"github.com/berthml/berth/internal/spec"
)

// CollectionsDir is where a deployment's collected data goes:
// <data dir>/collections/<endpoint>/<deployment>, beside instances/ (an instance folder
// is <data dir>/instances/<endpoint>/<deployment>/<n>).
func CollectionsDir(instanceDir, endpoint, deployment string) string {
	root := filepath.Dir(filepath.Dir(filepath.Dir(filepath.Dir(instanceDir))))
	if filepath.Base(filepath.Dir(filepath.Dir(filepath.Dir(instanceDir)))) != "instances" {
		// Not under instances/ (a test's folder): keep the data beside the instance.
		root = filepath.Dir(instanceDir)
	}
	return filepath.Join(root, "collections", endpoint, deployment)
}

// collector tells the instance what its deployment's data_collector collects, in
// instance.EnvDataCollector, and records it in the storage-initializer log.
func collector(w io.Writer, d *spec.Deployment, is *runtime.InstanceSpec) error {
	dc := d.DataCollector
	enabled := dc.Enabled()
	if len(enabled) == 0 {
		return nil
	}
	c := instance.Collector{
		Dir:      CollectionsDir(is.Dir, is.Endpoint, is.Deployment),
		Endpoint: is.Endpoint, Deployment: is.Deployment, Instance: is.Index,
		SamplingRate: dc.SamplingRate, RollingRate: dc.RollingRate, Collections: enabled,
	}
	if dc.RequestLogging != nil {
		c.Headers = dc.RequestLogging.CaptureHeaders
	}
	v, err := c.Env()
	if err != nil {
		return err
	}
	is.Env[instance.EnvDataCollector] = v
	fmt.Fprintf(w, "data collector: %s at sampling rate %g, one folder per %s, in %s\n",
		strings.Join(enabled, ", "), dc.SamplingRate, strings.ToLower(dc.RollingRate), c.Dir)
	return nil
}
