package inference

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berthml/berth/internal/logs"
)

// logger writes azmlinfsrv's log lines: "<UTC time> <L> [<pid>] <logger> - <message>".
//
// Access lines, one per request, are held and written together within accessHold (or
// before any other line, so the order stays): a write per request costs the CPU the
// workers need. Everything else is written at once.
type logger struct {
	w     io.Writer
	mu    sync.Mutex
	pid   int
	held  []byte      // access lines not written yet; guarded by mu
	timer *time.Timer // writes held within accessHold; guarded by mu
}

// accessHold is how long an access line may wait to be written; accessMax how many
// bytes of them may wait.
const (
	accessHold = 50 * time.Millisecond
	accessMax  = 32 << 10
)

func (l *logger) line(level byte, name, msg string) {
	s := fmt.Sprintf("%s %c [%d] %s - %s\n", logs.Stamp(time.Now()), level, l.pid, name, msg)
	l.mu.Lock()
	l.writeLocked(s)
	l.mu.Unlock()
}

// writeLocked writes the held access lines, then s; l.mu is held.
func (l *logger) writeLocked(s string) {
	if len(l.held) > 0 {
		l.held = append(l.held, s...)
		l.w.Write(l.held)
		l.held = l.held[:0]
		return
	}
	io.WriteString(l.w, s)
}

// flush writes the held access lines.
func (l *logger) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.timer = nil
	l.writeLocked("")
}

// print writes lines as they are, as azmlinfsrv prints its settings block.
func (l *logger) print(lines ...string) {
	l.mu.Lock()
	l.writeLocked(strings.Join(lines, "\n") + "\n")
	l.mu.Unlock()
}

// info logs msg; rid, the request it is about, is not part of azmlinfsrv's format.
func (l *logger) info(rid, msg string) { l.line('I', "azmlinfsrv", msg) }

// errorf logs an error; rid, the request it is about, is not part of azmlinfsrv's format.
func (l *logger) errorf(rid, format string, args ...any) {
	l.line('E', "azmlinfsrv", fmt.Sprintf(format, args...))
}

// access logs a request as azmlinfsrv does: "<METHOD> <path> <status> <x.xxx>ms <length>".
func (l *logger) access(method, path string, status int, took time.Duration, length int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := logs.AppendStamp(l.held, time.Now())
	b = append(b, " I ["...)
	b = strconv.AppendInt(b, int64(l.pid), 10)
	b = append(b, "] azmlinfsrv - "...)
	b = append(b, method...)
	b = append(b, ' ')
	b = append(b, path...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	b = strconv.AppendFloat(b, float64(took.Microseconds())/1000, 'f', 3, 64)
	b = append(b, "ms "...)
	b = strconv.AppendInt(b, int64(length), 10)
	l.held = append(b, '\n')
	switch {
	case len(l.held) >= accessMax:
		l.writeLocked("")
	case l.timer == nil:
		l.timer = time.AfterFunc(accessHold, l.flush)
	}
}

func orNone(s string) string {
	if s == "" {
		return "None"
	}
	return s
}

// logBanner writes azmlinfsrv's start-up output: the server line, the settings block
// and the routes block; port is 0 for an instance run in-process by berth serve.
func logBanner(log *logger, cfg Config, port int) {
	st := cfg.started
	if len(st.extraKeys) > 0 {
		log.line('W', "azmlinfsrv", "Found extra keys in the config file that are not supported by the server.\nExtra keys = ['"+strings.Join(st.extraKeys, "', '")+"']")
	}
	if st.standalone {
		if cfg.ModelDir == "" {
			log.print("The environment variable 'AZUREML_MODEL_DIR' has not been set.", "Use the --model_dir command line argument to set it.")
		}
		if st.appInsightsEnabled && st.appInsightsKey != "" {
			if st.appInsights() {
				log.print("Valid Application Insights instrumentation key provided.")
			} else {
				log.print("Invalid Application Insights instrumentation key provided.", "Application Insights has been disabled.")
			}
		}
	}
	serverPort, healthPort, timeout := "none (in-process)", "none (in-process)", "None"
	if port != 0 {
		serverPort, healthPort = strconv.Itoa(port), strconv.Itoa(port)
		if cfg.healthPort != 0 {
			healthPort = strconv.Itoa(cfg.healthPort)
		}
	}
	if cfg.WorkerTimeout > 0 {
		timeout = strconv.Itoa(int(cfg.WorkerTimeout / time.Second))
	}
	key, version, cors := "None", Version, "None"
	if st.appInsightsKey != "" {
		key = "AppInsights key provided"
	}
	if cfg.NoServerVersion {
		version = "None"
	}
	if cfg.CORSOrigins != nil {
		cors = "Enabling CORS for " + strings.Join(cfg.CORSOrigins, ", ")
	}
	lines := []string{"", "Azure ML Inferencing HTTP server v" + CompatibleVersion, "", "", "Server Settings", "---------------"}
	for _, kv := range [][2]string{
		{"Entry Script Name", cfg.EntryScript}, {"Model Directory", orNone(cfg.ModelDir)}, {"Config File", orNone(st.configFile)},
		{"Worker Count", strconv.Itoa(cfg.WorkerCount)}, {"Worker Timeout (seconds)", timeout},
		{"Server Port", serverPort}, {"Health Port", healthPort},
		{"Application Insights Enabled", strconv.FormatBool(st.appInsights())}, {"Application Insights Key", key},
		{"Inferencing HTTP server version", version}, {"CORS for the specified origins", cors},
		{"Create dedicated endpoint for health", orNone(st.separateHealth)},
	} {
		lines = append(lines, kv[0]+": "+kv[1])
	}
	lines = append(lines, "", "", "Server Routes", "---------------")
	if port == 0 {
		lines = append(lines, "Liveness Probe: GET   in-process, through berth serve's router", "Score:          POST  /endpoints/<endpoint>/score on berth serve's router")
	} else {
		lines = append(lines, fmt.Sprintf("Liveness Probe: GET   127.0.0.1:%s/", healthPort), fmt.Sprintf("Score:          POST  127.0.0.1:%d/score", port))
	}
	log.print(append(lines, "")...)
	log.info("", "Served by Berth; Python interpreter: "+cfg.Python)
	if st.appInsightsKey != "" {
		log.info("", "Berth sends no telemetry to Application Insights: the instrumentation key is accepted and not used")
	}
	if cfg.CORSOrigins != nil {
		log.info("", "Enabling CORS for the following origins: "+strings.Join(cfg.CORSOrigins, ", "))
	}
	if cfg.ScoringTimeout > 0 {
		log.info("", fmt.Sprintf("Scoring timeout is set to %d", cfg.ScoringTimeout.Milliseconds()))
	}
}
