package controller

import (
	"context"
	"encoding/json"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/store"
)

// Operation kinds and end states, as Azure's operation status shows them.
const (
	opCreate    = "Create"
	opUpdate    = "Update"
	opDelete    = "Delete"
	opSucceeded = "Succeeded"
	opFailed    = "Failed"
	opCanceled  = "Canceled"
)

// startOp records the start of an operation; 0 when it could not be recorded.
func (c *Controller) startOp(ctx context.Context, endpoint, deployment, kind string) int64 {
	id, err := c.cfg.Store.StartOperation(context.WithoutCancel(ctx), &store.Operation{Endpoint: endpoint, Deployment: deployment, Kind: kind})
	if err != nil {
		c.log.Warn("record operation", "endpoint", endpoint, "deployment", deployment, "kind", kind, "err", err)
		return 0
	}
	return id
}

// finishOp records how an operation ended, even when ctx was cancelled (a cancelled
// operation is recorded as such).
func (c *Controller) finishOp(ctx context.Context, id int64, state string, failure error) {
	if id == 0 {
		return
	}
	var raw json.RawMessage
	if failure != nil {
		de := diag.As(failure)
		if de == nil {
			de = &diag.Error{Code: diag.InternalServerError, Message: failure.Error()}
		}
		raw, _ = json.Marshal(de)
	}
	if err := c.cfg.Store.FinishOperation(context.WithoutCancel(ctx), id, state, raw); err != nil {
		c.log.Warn("record operation end", "id", id, "err", err)
	}
}

// endOp finishes an operation from the error of the step that ran it.
func (c *Controller) endOp(ctx context.Context, id int64, err error) {
	if err != nil {
		c.finishOp(ctx, id, opFailed, err)
		return
	}
	c.finishOp(ctx, id, opSucceeded, nil)
}

// Operations returns the endpoint's newest operations, or EndpointNotFound.
func (c *Controller) Operations(ctx context.Context, endpoint string, limit int) ([]*store.Operation, error) {
	if _, err := c.GetEndpoint(ctx, endpoint); err != nil {
		return nil, err
	}
	return c.cfg.Store.ListOperations(ctx, endpoint, limit)
}
