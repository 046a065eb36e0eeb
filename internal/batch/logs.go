package batch

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/berthml/berth/internal/logs"
)

// logBook writes a job's logs in Azure's layout (spec §3.5) under Dir/logs, and the driver
// log under Dir/azureml-logs. Every write appends; a write that fails is dropped, as a
// job does not fail because a log line could not be written.
type logBook struct {
	dir    string    // Dir/logs
	driver string    // Dir/azureml-logs/70_driver_log.txt
	extra  io.Writer // Job.Log, or nil
	mu     sync.Mutex
	open   map[string]*os.File // files appended to during the run, kept open; guarded by mu
	// held are lines of the per-mini-batch logs (master_role, sys/node) not yet written:
	// they are written together within holdFor, so a job does not pay two writes per
	// mini-batch. Guarded by mu.
	held    map[string]*bytes.Buffer
	pending *time.Timer
}

// holdFor is how long a per-mini-batch log line may wait to be written.
const holdFor = 100 * time.Millisecond

func newLogs(j Job) *logBook {
	return &logBook{
		dir:    filepath.Join(j.Dir, "logs"),
		driver: filepath.Join(j.Dir, "azureml-logs", "70_driver_log.txt"),
		extra:  j.Log,
		open:   map[string]*os.File{},
		held:   map[string]*bytes.Buffer{},
	}
}

// appendLocked appends text to path through a file kept open for the run; l.mu is held.
func (l *logBook) appendLocked(path, text string) {
	f := l.open[path]
	if f == nil {
		var err error
		if f, err = logs.OpenAppend(path); err != nil {
			return
		}
		l.open[path] = f
	}
	f.WriteString(text)
}

// hold adds text to the lines of path written within holdFor.
func (l *logBook) hold(path, text string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.held[path]
	if b == nil {
		b = &bytes.Buffer{}
		l.held[path] = b
	}
	b.WriteString(text)
	if l.pending == nil {
		l.pending = time.AfterFunc(holdFor, l.release)
	}
}

// release writes the held lines.
func (l *logBook) release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.releaseLocked()
}

func (l *logBook) releaseLocked() {
	if l.pending != nil {
		l.pending.Stop()
		l.pending = nil
	}
	for path, b := range l.held {
		if b.Len() > 0 {
			l.appendLocked(path, b.String())
			b.Reset()
		}
	}
}

// close writes the held lines and closes the files the run appended to.
func (l *logBook) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.releaseLocked()
	for path, f := range l.open {
		f.Close()
		delete(l.open, path)
	}
}

// stamp is the time stamp of a log line.
func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000") }

// stamped is one time-stamped log line.
func stamped(format string, args ...any) string {
	return stamp(time.Now()) + " " + strings.TrimRight(fmt.Sprintf(format, args...), "\n") + "\n"
}

// line appends one time-stamped line to logs/<rel>.
func (l *logBook) line(rel, format string, args ...any) {
	text := stamped(format, args...)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.appendLocked(filepath.Join(l.dir, rel), text)
}

// driverf writes a line to the driver log (and Job.Log).
func (l *logBook) driverf(format string, args ...any) {
	text := stamp(time.Now()) + " " + fmt.Sprintf(format, args...) + "\n"
	l.mu.Lock()
	defer l.mu.Unlock()
	l.appendLocked(l.driver, text)
	if l.extra != nil {
		io.WriteString(l.extra, text)
	}
}

// overview appends a line to this hour's job_progress_overview file.
func (l *logBook) overview(format string, args ...any) {
	now := time.Now().UTC()
	l.line("job_progress_overview."+now.Format("2006010215")+".txt", format, args...)
}

// master appends a line to sys/master_role.txt: the scheduler's view.
func (l *logBook) master(format string, args ...any) {
	l.hold(filepath.Join(l.dir, "sys", "master_role.txt"), stamped(format, args...))
}

// sys appends a line to sys/node/<node>/<process>.txt.
func (l *logBook) sys(s *slot, format string, args ...any) {
	l.hold(filepath.Join(l.dir, "sys", "node", s.node, s.proc+".txt"), stamped(format, args...))
}

// userError records a failure of a script: its traceback in
// user/error/<node>/<process>.txt and a summary line in user/error.txt.
func (l *logBook) userError(s *slot, what, summary, trace string) {
	l.line("user/error.txt", "%s/%s: %s: %s", s.node, s.proc, what, summary)
	if trace == "" {
		trace = summary
	}
	l.line(filepath.Join("user", "error", s.node, s.proc+".txt"), "%s:\n%s", what, trace)
}

// result overwrites job_result.txt.
func (l *logBook) result(text string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	os.MkdirAll(l.dir, 0o755)
	os.WriteFile(filepath.Join(l.dir, "job_result.txt"), []byte(text+"\n"), 0o644)
}

// readme writes logs/readme.txt, the map of the layout.
func (l *logBook) readme() {
	l.mu.Lock()
	defer l.mu.Unlock()
	os.MkdirAll(l.dir, 0o755)
	os.WriteFile(filepath.Join(l.dir, "readme.txt"), []byte(readmeText), 0o644)
}

const readmeText = `Logs of a batch scoring job, in the layout of Azure Machine Learning batch endpoints.

Start here:
  job_result.txt                  how the job ended and, when it failed, why.
  job_progress_overview.<YYYYMMDDHH>.txt
                                  mini-batches created, processed and failed, hour by hour,
                                  and the final result.
  user/error.txt                  one line per error of your scoring script: init() or run()
                                  raised, returned nothing, or ran past the timeout.
  user/error/<node>/<process>.txt the full Python traceback of each of those errors.

Your script's own output:
  user/stdout/<node>/<process>.stdout.txt   what the script printed or logged (logging goes
                                            to stdout, e.g. "ERROR:azureml:...").
  user/stderr/<node>/<process>.stderr.txt   what the script wrote to stderr.

The scheduler's view:
  sys/master_role.txt             which worker got which mini-batch, and each retry.
  sys/node/<node>/<process>.txt   per worker: its process id, each mini-batch it ran with
                                  its files, rows returned, start and duration, timeouts
                                  and restarts.

Workers are named <node>/<process>: node0, node1, ... (instance_count) and process000,
process001, ... (max_concurrency_per_instance) on each node. The driver log,
../azureml-logs/70_driver_log.txt, follows the job as it runs.
`
