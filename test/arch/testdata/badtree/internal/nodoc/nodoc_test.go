// Package nodoc has its doc in a test file only, which does not count.
package nodoc
