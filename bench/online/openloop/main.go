// Command openloop is bench/online's open-loop load generator. It sends POST requests
// at a fixed rate, on a precomputed schedule, over a fixed number of keep-alive
// connections, and prints one line:
//
//	target_rps=900 rps=899.7 p50_us=412 p99_us=1830 ok=8997 errors=0
//
// With -rate max it sends back to back on every connection instead (closed loop, as wrk)
// and prints target_rps=0: the most this generator reaches against the server, the
// base of the fixed rates, since the generator shares the machine with the server.
//
// Latency runs from each request's scheduled send time, not from the moment a
// connection was free to send it, so a server that falls behind is charged for the
// queue it builds (no coordinated omission). wrk, a closed-loop tool, cannot do this:
// it only sends when an answer came back.
//
// It costs the machine little, since it shares the CPUs with the server it measures:
// one OS thread drives non-blocking sockets with epoll (no goroutine, channel or
// net/http client per request), a timerfd wakes it for each slot, and while every
// connection is busy it does not wake per slot at all: due slots are sent, oldest first,
// as answers free connections. Linux only.
//
//	go run ./bench/online/openloop -url http://127.0.0.1:8080/score -rate 900 \
//	    -duration 10s -conns 8 -body-file body.json -key KEY
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// errUsage reports bad or missing flags.
var errUsage = errors.New("usage")

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "openloop:", err)
		os.Exit(1)
	}
}

// run parses the flags, runs the load and prints its summary on stdout.
func run(args []string) error {
	cfg, err := parseFlags(args)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	sum, err := generate(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Println(sum)
	return nil
}

// parseFlags reads the configuration and checks it.
func parseFlags(args []string) (config, error) {
	var cfg config
	var bodyFile string
	fs := flag.NewFlagSet("openloop", flag.ContinueOnError)
	fs.StringVar(&cfg.url, "url", "", "URL to POST to (required)")
	var rate string
	fs.StringVar(&rate, "rate", "", "requests per second to schedule, or \"max\": send back to back on every connection (closed loop) to find the rate this generator can reach (required)")
	fs.DurationVar(&cfg.duration, "duration", 10*time.Second, "how long to send for")
	fs.IntVar(&cfg.conns, "conns", 8, "connections, hence requests in flight at most")
	fs.StringVar(&bodyFile, "body-file", "", "file holding the request body (empty body if unset)")
	fs.StringVar(&cfg.key, "key", "", "sent as Authorization: Bearer KEY when set")
	fs.DurationVar(&cfg.timeout, "timeout", 30*time.Second, "per-request timeout; a timed-out request is an error")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if rate == "max" {
		cfg.closed = true
	} else if _, err := fmt.Sscan(rate, &cfg.rate); err != nil {
		cfg.rate = 0
	}
	switch {
	case cfg.url == "":
		return cfg, fmt.Errorf("%w: -url is required", errUsage)
	case !cfg.closed && cfg.rate <= 0:
		return cfg, fmt.Errorf("%w: -rate must be > 0 or max, got %q", errUsage, rate)
	case cfg.conns < 1:
		return cfg, fmt.Errorf("%w: -conns must be >= 1, got %d", errUsage, cfg.conns)
	case cfg.timeout <= 0:
		return cfg, fmt.Errorf("%w: -timeout must be > 0, got %s", errUsage, cfg.timeout)
	case cfg.duration <= 0:
		return cfg, fmt.Errorf("%w: -duration must be > 0, got %s", errUsage, cfg.duration)
	}
	if bodyFile != "" {
		body, err := os.ReadFile(bodyFile)
		if err != nil {
			return cfg, fmt.Errorf("read body: %w", err)
		}
		cfg.body = body
	}
	return cfg, nil
}
