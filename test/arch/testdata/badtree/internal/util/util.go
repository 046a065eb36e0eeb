// Package util is a grab bag, which Check must report by its name.
package util

// Max returns the larger of a and b.
func Max(a, b int) int { return max(a, b) }
