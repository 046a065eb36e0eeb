// Package e2e drives the real berth binary end to end: a server on loopback with a
// temporary data dir, the CLI against it, real Python workers, real HTTP scoring. The
// tests use Unix process signals (SIGSTOP, SIGKILL of process groups), so they build
// on Unix only.
package e2e
