// Package soak runs the real berth binary for minutes at a time under faults and load:
// a steady request stream while Python workers and the server itself are killed and
// deployments change, an overload of ten times a deployment's capacity, and a flood of
// idle connections. Every test checks that each answer has a documented status, that no
// process outlives its server and that stopped instances leave only their logs, and
// prints one row of the report table described in README.md. The tests use process
// signals and /proc, so they build on Linux only; BERTH_SOAK=long runs the long form.
package soak
