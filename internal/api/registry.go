package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/registry"
	"github.com/berthml/berth/internal/store"
	"github.com/berthml/berth/internal/wire"
)

func (a *api) putArtifact(w http.ResponseWriter, r *http.Request) {
	digest, size, err := a.Registry.PutArtifact(r.Body)
	if err != nil {
		if diag.As(err) == nil {
			err = diag.New(diag.BadArgument, "upload: %v", err) // an unreadable archive
		}
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, wire.Artifact{Digest: digest, Size: size})
}

func (a *api) hasArtifact(w http.ResponseWriter, r *http.Request) {
	if a.Registry.HasArtifact(r.PathValue("digest")) {
		w.WriteHeader(http.StatusOK)
		return
	}
	w.WriteHeader(http.StatusNotFound)
}

func (a *api) getArtifact(w http.ResponseWriter, r *http.Request) {
	digest := r.PathValue("digest")
	if !a.Registry.HasArtifact(digest) {
		writeError(w, diag.New(diag.ResourceNotFound, "artifact %s is not stored", digest))
		return
	}
	w.Header().Set("Content-Type", "application/x-tar")
	if err := a.Registry.WriteArtifact(w, digest); err != nil {
		a.Log.Error("write artifact", "digest", digest, "err", err)
	}
}

// assetView is one asset as `az ml <kind> show` prints it: a model with its type, tags
// and path; an environment or data asset with its spec's fields flattened next to its
// identity, and an environment built here with its build log.
func (a *api) assetView(as *store.Asset) (map[string]any, error) {
	v := map[string]any{}
	if len(as.Spec) > 0 {
		if err := json.Unmarshal(as.Spec, &v); err != nil {
			return nil, diag.New(diag.InternalServerError, "stored %s %s:%s has an unreadable spec: %v", as.Kind, as.Name, as.Version, err)
		}
	}
	stage := "Development"
	if as.Archived {
		stage = "Archived"
	}
	v["id"] = "azureml:" + as.Name + ":" + as.Version
	v["name"], v["version"], v["stage"] = as.Name, as.Version, stage
	v["created_at"] = as.CreatedAt.Format(time.RFC3339)
	if as.Artifact != "" {
		v["artifact"] = as.Artifact
	}
	if as.Kind == store.KindModel {
		tags := as.Tags
		if tags == nil {
			tags = map[string]string{}
		}
		v["type"], v["tags"], v["path"] = as.Type, tags, as.PathBase
		if as.Description != "" {
			v["description"] = as.Description
		}
	}
	if log := a.Controller.EnvironmentBuildLog(as); log != "" {
		v["build_log"] = log
	}
	return v, nil
}

// writeAsset answers with one asset's view.
func (a *api) writeAsset(w http.ResponseWriter, status int, as *store.Asset) {
	v, err := a.assetView(as)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, status, v)
}

func (a *api) createAsset(w http.ResponseWriter, r *http.Request) {
	var body wire.AssetCreate
	if err := decode(r, &body); err != nil {
		writeError(w, err)
		return
	}
	as, err := a.Registry.CreateAsset(r.Context(), store.Asset{Kind: r.PathValue("kind"), Name: body.Name, Version: body.Version,
		Type: body.Type, Description: body.Description, Tags: body.Tags, PathBase: body.PathBase, Spec: body.Spec, Artifact: body.Artifact})
	if err != nil {
		writeError(w, err)
		return
	}
	a.writeAsset(w, http.StatusCreated, as)
}

func (a *api) listAssets(w http.ResponseWriter, r *http.Request) {
	list, err := a.Registry.ListAssets(r.Context(), r.PathValue("kind"), r.URL.Query().Get("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	out := make([]map[string]any, 0, len(list))
	for _, as := range list {
		v, err := a.assetView(as)
		if err != nil {
			writeError(w, err)
			return
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) getAsset(w http.ResponseWriter, r *http.Request) {
	as, err := a.Registry.GetAsset(r.Context(), r.PathValue("kind"), r.PathValue("name"), r.PathValue("version"))
	if err != nil {
		writeError(w, err)
		return
	}
	a.writeAsset(w, http.StatusOK, as)
}

func (a *api) archiveAsset(w http.ResponseWriter, r *http.Request) {
	kind, name, version := r.PathValue("kind"), r.PathValue("name"), r.PathValue("version")
	if err := a.Registry.ArchiveAsset(r.Context(), kind, name, version, strings.HasSuffix(r.URL.Path, "/archive")); err != nil {
		writeError(w, err)
		return
	}
	as, err := a.Registry.GetAsset(r.Context(), kind, name, version)
	if err != nil {
		writeError(w, err)
		return
	}
	a.writeAsset(w, http.StatusOK, as)
}

func (a *api) putConnection(w http.ResponseWriter, r *http.Request) {
	var body wire.Connection
	if err := decode(r, &body); err != nil {
		writeError(w, err)
		return
	}
	conn := registry.Connection(body)
	if err := a.Registry.PutConnection(r.Context(), conn); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, conn.Masked())
}

func (a *api) listConnections(w http.ResponseWriter, r *http.Request) {
	conns, err := a.Registry.ListConnections(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, conns)
}

func (a *api) getConnection(w http.ResponseWriter, r *http.Request) {
	conn, err := a.Registry.GetConnection(r.Context(), r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, conn.Masked())
}

func (a *api) deleteConnection(w http.ResponseWriter, r *http.Request) {
	if err := a.Registry.DeleteConnection(r.Context(), r.PathValue("name")); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
