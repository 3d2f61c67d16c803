// Command hello is fgo's smallest example: two packages and the standard library.
package main

import (
	"fmt"
	"os"

	"example.com/hello/greet"
)

func main() {
	name := "fgo"
	if len(os.Args) > 1 {
		name = os.Args[1]
	}
	fmt.Println(greet.Hello(name))
}
