//go:build !unix

package main

// reexec does nothing where there is no exec: berth runs with Go's defaults.
func reexec(string, []string, []string) {}
