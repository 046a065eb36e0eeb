// Command tool is a clean command: Check must report nothing here.
package main

func main() {}
