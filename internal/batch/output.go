package batch

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/berthml/berth/internal/diag"
)

// Output actions.
const (
	AppendRow   = "append_row"
	SummaryOnly = "summary_only"
)

// outputPath is the append_row output file.
func (j Job) outputPath() string { return filepath.Join(j.OutputDir, j.Settings.OutputFileName) }

// outputExists is the error of an output file that is already there: Azure never
// overwrites predictions, and neither does Berth.
func outputExists(j Job) *diag.Error {
	return &diag.Error{Code: diag.UserError, Target: "output",
		Message: fmt.Sprintf("the output file %s already exists, and an existing output file is never overwritten: "+
			"invoke the job with a unique --output-path, or another file name with --set output_file_name=<name>",
			j.outputPath())}
}

// checkOutput fails a fresh append_row job whose output file exists.
func checkOutput(j Job) *diag.Error {
	if j.Settings.OutputAction != AppendRow {
		return nil
	}
	if _, err := os.Lstat(j.outputPath()); err == nil {
		return outputExists(j)
	}
	return nil
}

// finalize writes the append_row output: the parts of the succeeded mini-batches in
// index order, through a temp file in OutputDir hard-linked to the output name, which
// fails rather than replace a file. Dir/finalized records that the file is ours, so a
// job that died while finalizing is finished by the next Run.
func finalize(j Job, jr *journal, done map[int]entry, n int) error {
	final := j.outputPath()
	marker := filepath.Join(j.Dir, "finalized")
	tmp := filepath.Join(j.OutputDir, "."+j.Settings.OutputFileName+"."+filepath.Base(j.Dir)+".berth-tmp")
	if _, err := os.Stat(marker); err == nil {
		os.Remove(tmp) // left by a crash after the marker was written
		return nil
	}
	// A temp file that already is the output: the previous Run died after the link.
	if a, err := os.Stat(tmp); err == nil {
		if b, err := os.Stat(final); err == nil && os.SameFile(a, b) {
			return markFinalized(marker, tmp, final)
		}
	}
	if _, err := os.Lstat(final); err == nil {
		return outputExists(j)
	}
	if err := os.MkdirAll(j.OutputDir, 0o755); err != nil {
		return err
	}
	os.Remove(tmp)
	if err := concatParts(tmp, jr, done, n); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Link(tmp, final); err != nil {
		os.Remove(tmp)
		if errors.Is(err, fs.ErrExist) {
			return outputExists(j)
		}
		return fmt.Errorf("write the output file: %w", err)
	}
	return markFinalized(marker, tmp, final)
}

func markFinalized(marker, tmp, final string) error {
	if err := syncDir(filepath.Dir(final)); err != nil {
		return err
	}
	if err := writeDurable(marker, []byte(final+"\n")); err != nil {
		return err
	}
	os.Remove(tmp)
	return nil
}

// concatParts writes the rows of the succeeded mini-batches, in order, to path.
func concatParts(path string, jr *journal, done map[int]entry, n int) error {
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(out, 1<<20)
	rowsOf, err := jr.rowsReader()
	for mb := 0; mb < n && err == nil; mb++ {
		if e, ok := done[mb]; ok && e.OK {
			var rows []byte
			if rows, err = rowsOf(mb); err == nil {
				_, err = w.Write(rows)
			}
		}
	}
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}
