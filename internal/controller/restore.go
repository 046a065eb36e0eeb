package controller

import (
	"bytes"
	"context"

	"github.com/berthml/berth/internal/fleet"
	"github.com/berthml/berth/internal/spec"
	"github.com/berthml/berth/internal/stage"
	"github.com/berthml/berth/internal/store"
)

// restoreServing starts again, after a restart, the version of a Failed deployment that
// served until the restart: the one that last succeeded, when an update failed after it
// (store.Deployment.Serving). The deployment stays Failed with its error, as it was
// before the restart; its next update, or a create over it, replaces that version as
// usual. Deployments on a cluster are left to its own pods (rewatchCluster).
func (c *Controller) restoreServing(ctx context.Context, k fleet.Key, rec *store.Deployment) {
	good, ok := servingVersion(rec)
	if !ok {
		return
	}
	if t, err := c.endpointCluster(ctx, k.Endpoint); err != nil || t != nil {
		return
	}
	c.log.Info("restart: serving again the version of a Failed deployment that last succeeded",
		"endpoint", k.Endpoint, "deployment", k.Deployment)
	gen := c.newGeneration(k, false)
	c.startRun(ctx, k, 0, func(ctx context.Context) error {
		d, err := spec.DecodeDeployment("the serving version of "+k.Endpoint+"/"+k.Deployment, good.Spec, nil)
		if err != nil {
			c.log.Warn("restart: read the serving version", "endpoint", k.Endpoint, "deployment", k.Deployment, "err", err)
			return err
		}
		return c.rollOutHere(ctx, k, gen, good, d, outcome{
			failed: func(_ context.Context, err error) {
				c.log.Warn("restart: the version that last succeeded did not start again", "endpoint", k.Endpoint, "deployment", k.Deployment, "err", err)
			},
			succeeded: func(context.Context, string) {
				c.log.Info("restart: the version that last succeeded serves again", "endpoint", k.Endpoint, "deployment", k.Deployment)
			},
			restore: true,
		})
	})
}

// pastOf is what rec ran on: the interpreter its version was built on, if recorded, and
// the one the version that last succeeded ran on.
func pastOf(rec *store.Deployment) stage.Past {
	v, _ := rec.ServedVersion()
	return stage.Past{Kept: rec.Python, Before: v.Python}
}

// servingVersion returns rec as it was when it last succeeded, when that is not its
// current version (the one whose update failed).
func servingVersion(rec *store.Deployment) (*store.Deployment, bool) {
	v, ok := rec.ServedVersion()
	if !ok {
		return nil, false
	}
	if bytes.Equal(v.Spec, rec.Spec) && v.ModelArtifact == rec.ModelArtifact && v.CodeArtifact == rec.CodeArtifact {
		return nil, false // it failed itself (a crash loop): nothing else served
	}
	good := *rec
	good.Spec, good.ModelArtifact, good.CodeArtifact, good.Python = v.Spec, v.ModelArtifact, v.CodeArtifact, v.Python
	return &good, true
}
