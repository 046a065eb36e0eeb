package cli

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berthml/berth/internal/client"
	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/wire"
)

// Stream timing: how often the log is polled, and how often a plain progress line is
// printed when stderr is not a terminal.
const (
	streamPoll  = 500 * time.Millisecond
	plainPeriod = 5 * time.Second
)

// streamer follows one job as `az ml job stream` does: the driver log goes to stdout
// as it grows, framed by az's RunId / Execution Summary lines; the progress goes to
// stderr, as one live line on a terminal, else as a plain line at most every
// plainPeriod when it changed.
type streamer struct {
	c        *client.Client
	out, err io.Writer
	tty      bool
	poll     time.Duration
	start    time.Time
	// shown is whether the live line is on screen; lastPlain and plain are when and
	// what the last plain line was.
	shown     bool
	lastPlain time.Time
	plain     string
}

func newStreamer(c *client.Client, cmd *cobra.Command) *streamer {
	return &streamer{c: c, out: cmd.OutOrStdout(), err: cmd.ErrOrStderr(), tty: isTerminal(cmd.ErrOrStderr()), poll: streamPoll}
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// run follows the job until it ends and the whole log is printed. A Failed job is its
// error, a Canceled one OperationCanceled, so the exit status is non-zero for both.
func (s *streamer) run(ctx context.Context, name string) error {
	s.start = time.Now()
	tick := time.NewTicker(s.poll)
	defer tick.Stop()
	var offset int64
	for first := true; ; first = false {
		l, err := s.c.JobLog(ctx, name, offset)
		if err != nil {
			s.clear()
			return err
		}
		if first {
			fmt.Fprintf(s.out, "RunId: %s\nWeb View: %s\n\nStreaming azureml-logs/70_driver_log.txt\n%s\n\n",
				l.Job.Name, s.page(&l.Job), strings.Repeat("=", 40))
		}
		if l.Text != "" {
			s.clear()
			io.WriteString(s.out, l.Text)
		}
		more := l.Next > offset
		offset = l.Next
		if wire.JobTerminal(l.Job.Status) && !more {
			return s.finish(&l.Job)
		}
		s.progress(&l.Job)
		if wire.JobTerminal(l.Job.Status) {
			continue // read the rest of the log at once
		}
		select {
		case <-ctx.Done():
			s.clear()
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// page is the job's web page: its Studio service, else the server's job route.
func (s *streamer) page(j *wire.Job) string {
	if st, ok := j.Services["Studio"]; ok && st.Endpoint != "" {
		return st.Endpoint
	}
	return s.c.BaseURL() + "/#/jobs/" + url.PathEscape(j.Name)
}

// progressLine describes a job's status and progress in one line.
func progressLine(j *wire.Job) string {
	p := j.Progress
	var b strings.Builder
	b.WriteString(j.Status)
	if p.MiniBatches > 0 {
		const width = 20
		done := (p.MiniBatchesDone + p.MiniBatchesFailed) * width / p.MiniBatches
		fmt.Fprintf(&b, " [%s%s] %d/%d mini-batches", strings.Repeat("#", done), strings.Repeat("-", width-done),
			p.MiniBatchesDone+p.MiniBatchesFailed, p.MiniBatches)
		if p.MiniBatchesFailed > 0 {
			fmt.Fprintf(&b, " (%d failed)", p.MiniBatchesFailed)
		}
	}
	if p.FilesPerSecond > 0 {
		fmt.Fprintf(&b, ", %.1f files/s", p.FilesPerSecond)
	}
	if p.ETASeconds > 0 && !wire.JobTerminal(j.Status) {
		fmt.Fprintf(&b, ", ETA %s", (time.Duration(p.ETASeconds) * time.Second).String())
	}
	return b.String()
}

// progress shows the job's progress line.
func (s *streamer) progress(j *wire.Job) {
	line := fmt.Sprintf("job %s: %s", j.Name, progressLine(j))
	if s.tty {
		fmt.Fprintf(s.err, "\r\033[K%s", line)
		s.shown = true
		return
	}
	if line == s.plain || (s.plain != "" && time.Since(s.lastPlain) < plainPeriod) {
		return
	}
	fmt.Fprintf(s.err, "[%5.1fs] %s\n", time.Since(s.start).Seconds(), line)
	s.plain, s.lastPlain = line, time.Now()
}

// clear removes the live line before anything else is printed.
func (s *streamer) clear() {
	if s.shown {
		io.WriteString(s.err, "\r\033[K")
		s.shown = false
	}
}

// finish prints az's execution summary and the final status line, and returns the
// error of a job that did not complete.
func (s *streamer) finish(j *wire.Job) error {
	s.clear()
	fmt.Fprintf(s.out, "\nExecution Summary\n=================\nRunId: %s\nWeb View: %s\n", j.Name, s.page(j))
	fmt.Fprintf(s.err, "job %s: %s\n", j.Name, progressLine(j))
	switch j.Status {
	case wire.JobCompleted:
		return nil
	case wire.JobCanceled:
		return diag.New(diag.OperationCanceled, "job %s was canceled", j.Name)
	}
	fmt.Fprintf(s.err, "For the logs: berth job download -n %s --all (they go to ./artifacts; logs/user/error.txt has the errors of init() and run())\n", j.Name)
	if j.Error != nil {
		return client.FromWire(j.Error)
	}
	return diag.New(diag.UserError, "job %s failed", j.Name)
}
