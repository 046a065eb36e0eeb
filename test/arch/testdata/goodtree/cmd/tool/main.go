// Command tool is a clean command.
package main

func main() {}
