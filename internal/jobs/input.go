package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/store"
	"github.com/berthml/berth/internal/wire"
)

// HTTPDoer downloads http(s) inputs.
type HTTPDoer interface {
	Do(*http.Request) (*http.Response, error)
}

func defaultHTTPClient() HTTPDoer { return &http.Client{Timeout: 10 * time.Minute} }

// Kinds of a resolved input.
const (
	sourceArtifact  = "artifact"  // an uploaded local folder or file, or a data asset's files
	sourceDatastore = "datastore" // a folder or file under datastores/<name>/
	sourceURL       = "url"       // downloaded when the job starts
)

// source is where a job's input is, resolved when the job is invoked.
type source struct {
	Kind     string `json:"kind"`
	Artifact string `json:"artifact,omitempty"`
	Path     string `json:"path,omitempty"` // datastore: absolute path
	URL      string `json:"url,omitempty"`
	// Type is uri_folder or uri_file.
	Type string `json:"type"`
}

// unsupportedInput is Azure's answer to an input a batch endpoint cannot take.
func unsupportedInput(what, fix string) *diag.Error {
	return &diag.Error{Code: diag.UserError, Target: "input",
		Message: diag.BatchUnsupportedInput + " " + what + ": " + fix}
}

// resolveInput checks a job's input and says where its files are.
func (s *Service) resolveInput(ctx context.Context, in wire.JobInput) (source, error) {
	typ := in.Type
	if typ == "" {
		typ = "uri_folder"
	}
	if typ != "uri_folder" && typ != "uri_file" {
		return source{}, unsupportedInput(fmt.Sprintf("input type %q is not supported", typ),
			"batch endpoints take uri_folder or uri_file inputs (--input-type uri_folder|uri_file); MLTable and v1 datasets are not supported")
	}
	p := in.Path
	switch {
	case in.Artifact != "":
		if !s.cfg.Registry.HasArtifact(in.Artifact) {
			return source{}, &diag.Error{Code: diag.BadArgument, Target: "input",
				Message: fmt.Sprintf("the uploaded input %s is not on the server: run the command again so the CLI uploads it", in.Artifact)}
		}
		return source{Kind: sourceArtifact, Artifact: in.Artifact, Type: typ}, nil
	case strings.HasPrefix(p, "azureml://"):
		dir, err := s.datastorePath(p)
		if err != nil {
			return source{}, err
		}
		if _, err := os.Stat(dir); err != nil {
			return source{}, &diag.Error{Code: diag.UserError, Target: "input",
				Message: fmt.Sprintf("Dataset initialization failed: %s does not exist (it is %s on this server): put the files there, or give another --input", p, dir)}
		}
		return source{Kind: sourceDatastore, Path: dir, Type: typ}, nil
	case strings.HasPrefix(p, "azureml:"):
		return s.resolveData(ctx, p, in.Type)
	case strings.HasPrefix(p, "http://"), strings.HasPrefix(p, "https://"):
		if _, err := url.Parse(p); err != nil {
			return source{}, &diag.Error{Code: diag.BadArgument, Target: "input", Message: fmt.Sprintf("input URL %q: %v", p, err)}
		}
		return source{Kind: sourceURL, URL: p, Type: typ}, nil
	case p == "":
		return source{}, &diag.Error{Code: diag.BadArgument, Target: "input",
			Message: "the job has no input: give --input with a local folder, azureml:<data>@latest, an azureml://datastores/<name>/paths/<path> path or an http(s) URL"}
	}
	return source{}, unsupportedInput(fmt.Sprintf("input %q is not a data asset, a datastore path or a URL", p),
		"give a local folder (the CLI uploads it), azureml:<data>:<version>, azureml://datastores/<name>/paths/<path>, or an http(s) URL")
}

// resolveData resolves a data asset reference to its files.
func (s *Service) resolveData(ctx context.Context, ref, typ string) (source, error) {
	a, err := s.cfg.Registry.Resolve(ctx, store.KindData, ref)
	if err != nil {
		return source{}, err
	}
	atype := a.Type
	if atype == "" {
		var sp struct {
			Type string `json:"type"`
		}
		_ = json.Unmarshal(a.Spec, &sp)
		atype = sp.Type
	}
	if atype != "uri_folder" && atype != "uri_file" {
		return source{}, unsupportedInput(fmt.Sprintf("data asset %s:%s is of type %q", a.Name, a.Version, atype),
			"register the files as a uri_folder or uri_file data asset (`berth data create --type uri_folder --path <folder>`)")
	}
	if typ == "" {
		typ = atype
	}
	if a.Artifact == "" {
		return source{}, unsupportedInput(fmt.Sprintf("data asset %s:%s has no files on this server", a.Name, a.Version),
			"register it from a local path so its files are uploaded")
	}
	return source{Kind: sourceArtifact, Artifact: a.Artifact, Type: typ}, nil
}

// datastorePath maps azureml://datastores/<name>/paths/<p> (or the long form with
// subscriptions/.../workspaces/...) to its folder under the data dir.
func (s *Service) datastorePath(uri string) (string, error) {
	rest := uri[strings.Index(uri, "://")+3:]
	if i := strings.Index(rest, "datastores/"); i >= 0 {
		rest = rest[i+len("datastores/"):]
	} else {
		rest = ""
	}
	name, p, ok := strings.Cut(rest, "/paths/")
	if !ok || !datastoreName(name) {
		return "", &diag.Error{Code: diag.BadArgument, Target: "path",
			Message: fmt.Sprintf("%q is not a datastore path: write azureml://datastores/<name>/paths/<path>, e.g. azureml://datastores/%s/paths/data", uri, DefaultDatastore)}
	}
	clean := path.Clean("/" + p)
	root := filepath.Join(s.cfg.DataDir, "datastores", name)
	if _, err := os.Stat(root); err != nil {
		return "", &diag.Error{Code: diag.ResourceNotFound, Target: name,
			Message: fmt.Sprintf("datastore %q does not exist: a datastore is a folder under %s (%s exists by default); create the folder or use %s",
				name, filepath.Join(s.cfg.DataDir, "datastores"), DefaultDatastore, DefaultDatastore)}
	}
	return filepath.Join(root, filepath.FromSlash(clean)), nil
}

// materialize returns the input's file or folder on disk, downloading a URL into the
// job's folder.
func (s *Service) materialize(ctx context.Context, src source, dir string, log io.Writer) (string, error) {
	switch src.Kind {
	case sourceDatastore:
		return src.Path, nil
	case sourceURL:
		return s.download(ctx, src, dir, log)
	}
	root, err := s.cfg.Artifacts.Path(src.Artifact)
	if err != nil {
		return "", err
	}
	if src.Type == "uri_folder" {
		return root, nil
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return "", err
	}
	for _, e := range entries {
		if e.Type().IsRegular() {
			return filepath.Join(root, e.Name()), nil
		}
	}
	return "", &diag.Error{Code: diag.UserError, Target: "input", Message: "the uri_file input holds no file: give a file, or --input-type uri_folder for a folder"}
}

// download fetches a URL input into the job's folder; a URL it cannot reach fails the
// job naming the URL and the network error.
func (s *Service) download(ctx context.Context, src source, dir string, log io.Writer) (string, error) {
	fail := func(err error) error {
		return &diag.Error{Code: diag.UserError, Target: "input",
			Message: fmt.Sprintf("Dataset initialization failed: cannot download %s: %v. Check the URL and that this server can reach it", src.URL, err)}
	}
	u, _ := url.Parse(src.URL)
	name := path.Base(u.Path)
	if name == "/" || name == "." || name == "" {
		name = "input"
	}
	folder := filepath.Join(dir, "inputs")
	file := filepath.Join(folder, name)
	result := folder
	if src.Type == "uri_file" {
		result = file
	}
	// A resumed job (its manifest written) runs on the file it listed, not a new download.
	if _, err := os.Stat(filepath.Join(dir, "manifest")); err == nil {
		if _, err := os.Stat(file); err == nil {
			return result, nil
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src.URL, nil)
	if err != nil {
		return "", fail(err)
	}
	resp, err := s.cfg.HTTPClient.Do(req)
	if err != nil {
		return "", fail(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fail(fmt.Errorf("HTTP %s", resp.Status))
	}
	if err := os.MkdirAll(folder, 0o700); err != nil {
		return "", err
	}
	// Written under a temporary name and renamed once whole: a crash leaves no part file
	// under the input's name.
	part := filepath.Join(dir, "inputs.part")
	f, err := os.Create(part)
	if err != nil {
		return "", err
	}
	n, err := io.Copy(f, resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(part, file)
	}
	if err != nil {
		os.Remove(part)
		return "", fail(err)
	}
	fmt.Fprintf(log, "downloaded %s: %d bytes to %s\n", src.URL, n, file)
	return result, nil
}

// datastoreName reports whether name can name a datastore folder: letters, digits, '_'
// and '-' only, so no name reaches outside datastores/.
func datastoreName(name string) bool {
	if name == "" {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}
