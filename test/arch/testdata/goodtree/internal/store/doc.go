// Package store keeps its doc comment in doc.go, which is enough for the
// whole package.
package store
