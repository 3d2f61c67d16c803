// Package greet says hello.
package greet

import "strings"

// Hello greets name, loudly.
func Hello(name string) string { return "hello, " + strings.ToUpper(name) }
