package batch

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/berthml/berth/internal/diag"
)

// Input types of a job.
const (
	URIFile   = "uri_file"
	URIFolder = "uri_folder"
)

// manifest is the list of a job's input files, written once when the job starts so
// that a resumed job cuts the same mini-batches. Files are relative to Input, with
// slashes ("." for a uri_file input), which keeps the file small.
type manifest struct {
	Input string   `json:"input"`
	Files []string `json:"files"`
}

// paths are the manifest's files under input.
func (m manifest) paths(input string) []string {
	out := make([]string, len(m.Files))
	for i, f := range m.Files {
		out[i] = filepath.Join(input, filepath.FromSlash(f))
	}
	return out
}

// inputError is a job's input that cannot be read, in Azure's words.
func inputError(input, why string) *diag.Error {
	return &diag.Error{Code: diag.UserError, Target: "input",
		Message: fmt.Sprintf("Dataset initialization failed: the input %s %s. Source of the dataset is either not accessible or doesn't contain any data.", input, why)}
}

// listInput lists the files of the input, relative to it with slashes: "." (the file
// itself) for uri_file; for uri_folder every regular file under it sorted by relative
// path, or only those at its top level when topOnly (the built-in MLflow scorer, which
// does not explore folders).
func listInput(input, inputType string, topOnly bool) ([]string, error) {
	fi, err := os.Stat(input)
	if err != nil {
		return nil, inputError(input, "cannot be read: "+errText(err))
	}
	if inputType == URIFile {
		if !fi.Mode().IsRegular() {
			return nil, inputError(input, "is not a file (use --input-type uri_folder for a folder)")
		}
		return []string{"."}, nil
	}
	if !fi.IsDir() {
		return nil, inputError(input, "is not a folder (use --input-type uri_file for a file)")
	}
	var rels []string
	err = filepath.WalkDir(input, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if topOnly && path != input {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			// A symbolic link counts when it leads to a regular file.
			if st, err := os.Stat(path); err != nil || !st.Mode().IsRegular() {
				return nil
			}
		}
		rel, err := filepath.Rel(input, path)
		if err != nil {
			return err
		}
		rels = append(rels, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		return nil, inputError(input, "cannot be listed: "+errText(err))
	}
	if len(rels) == 0 {
		return nil, inputError(input, "has no files")
	}
	sort.Strings(rels)
	return rels, nil
}

func errText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// readManifest reads Dir/manifest; ok is false when there is none (a fresh job).
func readManifest(path string) (m manifest, ok bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return m, false, nil
	}
	if err != nil {
		return m, false, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, false, fmt.Errorf("read the job's manifest %s: %w", path, err)
	}
	return m, true, nil
}

// writeManifest writes Dir/manifest durably.
func writeManifest(path string, m manifest) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return writeDurable(path, b)
}

// miniBatches cuts files into consecutive chunks of size files.
func miniBatches(files []string, size int) [][]string {
	var out [][]string
	for start := 0; start < len(files); start += size {
		out = append(out, files[start:min(start+size, len(files))])
	}
	return out
}
