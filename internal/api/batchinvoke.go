package api

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/berthml/berth/internal/auth"
	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/jobs"
	"github.com/berthml/berth/internal/wire"
)

// MLTokens is what the data-plane invocation needs of the token issuer.
type MLTokens interface {
	ValidateML(tok string) error
}

// NewBatchInvoke returns the handler of a batch endpoint's scoring_uri,
// POST /endpoints/{name}/jobs: Azure's REST invocation with an access token for
// https://ml.azure.com (or the admin token) and the deployment in the
// azureml-model-deployment header when it is not the default.
func NewBatchInvoke(cfg Config, tokens MLTokens) http.Handler {
	a := &api{cfg}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := checkMLToken(r, cfg.Token, tokens); err != nil {
			writeError(w, err)
			return
		}
		var body wire.BatchInvoke
		if err := decode(r, &body); err != nil {
			writeError(w, err)
			return
		}
		inv, err := invocation(r, body)
		if err != nil {
			writeError(w, err)
			return
		}
		j, err := a.Batch.Invoke(r.Context(), inv)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusCreated, a.jobView(j))
	})
}

// checkMLToken accepts the admin token or an access token for the Azure ML data plane.
func checkMLToken(r *http.Request, admin string, tokens MLTokens) error {
	tok, ok := auth.BearerToken(r)
	if ok && auth.Match(tok, admin) {
		return nil
	}
	if ok && tokens != nil && auth.LooksLikeToken(tok) {
		if err := tokens.ValidateML(tok); err != nil {
			return diag.New(diag.Unauthorized, "%s: %v. Get a token for the batch endpoint with `berth account get-access-token --resource %s`", diag.BatchAudience, err, auth.MLResource)
		}
		return nil
	}
	return diag.New(diag.Unauthorized, "missing or wrong bearer token: send Authorization: Bearer <token> with a token from `berth account get-access-token --resource %s`", auth.MLResource)
}

// invocation reads Azure's REST body: exactly one input, at most one output.
func invocation(r *http.Request, body wire.BatchInvoke) (jobs.Invocation, error) {
	inv := jobs.Invocation{Endpoint: r.PathValue("name"), Deployment: r.Header.Get("azureml-model-deployment")}
	if len(body.Properties.InputData) != 1 {
		return inv, &diag.Error{Code: diag.UserError, Target: "properties.InputData",
			Message: fmt.Sprintf("%s The invocation has %d inputs: a model deployment takes exactly one, e.g. {\"properties\": {\"InputData\": {\"heart_dataset\": {\"JobInputType\": \"UriFolder\", \"Uri\": \"azureml://datastores/workspaceblobstore/paths/data\"}}}}",
				diag.BatchUnsupportedInput, len(body.Properties.InputData))}
	}
	for _, in := range body.Properties.InputData {
		typ := "uri_folder"
		switch strings.ToLower(in.JobInputType) {
		case "urifolder", "uri_folder", "":
		case "urifile", "uri_file":
			typ = "uri_file"
		default:
			return inv, &diag.Error{Code: diag.UserError, Target: "JobInputType",
				Message: fmt.Sprintf("%s JobInputType %q is not supported: use UriFolder or UriFile", diag.BatchUnsupportedInput, in.JobInputType)}
		}
		inv.Input = wire.JobInput{Type: typ, Path: in.URI}
	}
	for _, out := range body.Properties.OutputData {
		inv.OutputPath = out.URI
	}
	inv.ExperimentName = body.Properties.Properties["experimentName"]
	return inv, nil
}
