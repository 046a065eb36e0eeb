// Package initpkg registers state from init, which Check must report.
package initpkg

var registry = map[string]int{}

func init() {
	registry["x"] = 1
}
