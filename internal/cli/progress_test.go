package cli

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/wire"
)

// logServer answers GET /jobs/job-1/log?offset=N with pages[N] and invoke with
// jobRunning, and records the offsets asked for.
func logServer(t *testing.T, pages map[string]wire.JobLog) (*fakeServer, func() []string) {
	t.Helper()
	var mu sync.Mutex
	var offsets []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/api/v1/batch-endpoints/be/jobs":
			io.WriteString(w, jobRunning)
		case "/api/v1/jobs/job-1/log":
			off := r.URL.Query().Get("offset")
			mu.Lock()
			offsets = append(offsets, off)
			mu.Unlock()
			page, ok := pages[off]
			if !ok {
				w.WriteHeader(http.StatusBadRequest)
				io.WriteString(w, `{"error":{"code":"BadArgument","message":"offset `+off+` is past the log"}}`)
				return
			}
			json.NewEncoder(w).Encode(page)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(srv.Close)
	return &fakeServer{url: srv.URL}, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), offsets...)
	}
}

func job1(status string, done, failed int, e *wire.Error) wire.Job {
	return wire.Job{Name: "job-1", Status: status, Error: e,
		Progress: wire.JobProgress{MiniBatches: 4, MiniBatchesDone: done, MiniBatchesFailed: failed, FilesPerSecond: 2.5, ETASeconds: 12}}
}

func TestJobStreamCompleted(t *testing.T) {
	f, offsets := logServer(t, map[string]wire.JobLog{
		"0":  {Offset: 0, Next: 6, Text: "line1\n", Job: job1(wire.JobRunning, 1, 0, nil)},
		"6":  {Offset: 6, Next: 12, Text: "line2\n", Job: job1(wire.JobCompleted, 4, 0, nil)},
		"12": {Offset: 12, Next: 12, Job: job1(wire.JobCompleted, 4, 0, nil)},
	})
	out, stderr, err := f.berth(t, "job", "stream", "-n", "job-1")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	page := f.url + "/#/jobs/job-1"
	want := "RunId: job-1\nWeb View: " + page + "\n\nStreaming azureml-logs/70_driver_log.txt\n" + strings.Repeat("=", 40) + "\n\n" +
		"line1\nline2\n\nExecution Summary\n=================\nRunId: job-1\nWeb View: " + page + "\n"
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("stdout (-want +got):\n%s", diff)
	}
	if !strings.Contains(stderr, "] job job-1: Running [#####---------------] 1/4 mini-batches, 2.5 files/s, ETA 12s\n") {
		t.Errorf("stderr = %q, want a plain progress line", stderr)
	}
	if !strings.HasSuffix(stderr, "job job-1: Completed [####################] 4/4 mini-batches, 2.5 files/s\n") {
		t.Errorf("stderr = %q, want the final status line", stderr)
	}
	// The rest of the log is read at once when the job has ended.
	if diff := cmp.Diff([]string{"0", "6", "12"}, offsets()); diff != "" {
		t.Errorf("offsets (-want +got):\n%s", diff)
	}
}

func TestJobStreamFailedAndCanceled(t *testing.T) {
	runFailed := &wire.Error{Code: string(diag.UserError), Message: diag.BatchRunFailed}
	for _, tc := range []struct {
		status string
		err    *wire.Error
		want   string
	}{
		{wire.JobFailed, runFailed, "ERROR: (UserError) " + diag.BatchRunFailed + "\n"},
		{wire.JobFailed, nil, "ERROR: (UserError) job job-1 failed\n"},
		{wire.JobCanceled, nil, "ERROR: (OperationCanceled) job job-1 was canceled\n"},
	} {
		f, _ := logServer(t, map[string]wire.JobLog{
			"0": {Offset: 0, Next: 5, Text: "boom\n", Job: job1(tc.status, 1, 3, tc.err)},
			"5": {Offset: 5, Next: 5, Job: job1(tc.status, 1, 3, tc.err)},
		})
		out, stderr, err := f.berth(t, "job", "stream", "-n", "job-1")
		if err == nil || ExitCode(err) == 0 {
			t.Fatalf("%s: err = %v, want a non-zero exit", tc.status, err)
		}
		if !strings.Contains(out, "boom\n") || !strings.Contains(out, "Execution Summary") {
			t.Errorf("%s: stdout = %q", tc.status, out)
		}
		if !strings.HasSuffix(stderr, tc.want) {
			t.Errorf("%s: stderr = %q, want it to end with %q", tc.status, stderr, tc.want)
		}
		if hint := "berth job download -n job-1 --all"; (tc.status == wire.JobFailed) != strings.Contains(stderr, hint) {
			t.Errorf("%s: stderr = %q: the logs hint is for failed jobs only", tc.status, stderr)
		}
	}
}

func TestInvokeStream(t *testing.T) {
	f, _ := logServer(t, map[string]wire.JobLog{
		"0": {Offset: 0, Next: 3, Text: "ok\n", Job: job1(wire.JobCompleted, 4, 0, nil)},
		"3": {Offset: 3, Next: 3, Job: job1(wire.JobCompleted, 4, 0, nil)},
	})
	out, stderr, err := f.berth(t, "batch-endpoint", "invoke", "-n", "be", "--input", "azureml:d@latest", "--stream", "--query", "name", "-o", "tsv")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if !strings.HasPrefix(out, "job-1\nRunId: job-1\n") || !strings.Contains(out, "\nok\n") {
		t.Errorf("stdout = %q, want the job name, then the stream", out)
	}
}

func TestJobStreamLogError(t *testing.T) {
	f, _ := logServer(t, map[string]wire.JobLog{})
	_, stderr, err := f.berth(t, "job", "stream", "-n", "job-1")
	if err == nil || !strings.Contains(stderr, "offset 0 is past the log") {
		t.Errorf("err = %v, stderr = %q", err, stderr)
	}
}

// TestLiveLine checks the terminal's progress line: redrawn in place and cleared
// before log text or the end.
func TestLiveLine(t *testing.T) {
	var errw bytes.Buffer
	s := &streamer{err: &errw, tty: true}
	j := job1(wire.JobRunning, 2, 1, nil)
	s.progress(&j)
	s.progress(&j)
	s.clear()
	s.clear()
	line := "job job-1: Running [###############-----] 3/4 mini-batches (1 failed), 2.5 files/s, ETA 12s"
	want := "\r\033[K" + line + "\r\033[K" + line + "\r\033[K"
	if diff := cmp.Diff(want, errw.String()); diff != "" {
		t.Errorf("stderr (-want +got):\n%s", diff)
	}
}

func TestProgressLineWithoutCounts(t *testing.T) {
	j := wire.Job{Name: "j", Status: wire.JobPreparing}
	if got := progressLine(&j); got != "Preparing" {
		t.Errorf("progressLine = %q", got)
	}
}
