// Command astdecls prints the function declarations go/ast finds, for the planner test.
//
// Input (stdin): one file path per line. Output, per file:
//
//	F <path> ok|err
//	D <line> <receiver base type or -> <name> <generic 0|1> <pointer receiver 0|1> <has body 0|1>
//
// Lines are raw (//line directives not applied), like the planner's FuncUnit.line.
package main

import (
	"bufio"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
)

func recvType(e ast.Expr) (name string, generic, ptr bool) {
	for {
		switch t := e.(type) {
		case *ast.StarExpr:
			ptr = true
			e = t.X
		case *ast.ParenExpr:
			e = t.X
		case *ast.IndexExpr:
			generic = true
			e = t.X
		case *ast.IndexListExpr:
			generic = true
			e = t.X
		case *ast.Ident:
			return t.Name, generic, ptr
		default:
			return "?", generic, ptr
		}
	}
}

func b(v bool) int {
	if v {
		return 1
	}
	return 0
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	for in.Scan() {
		path := in.Text()
		if path == "" {
			continue
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil || f == nil {
			fmt.Fprintf(out, "F\t%s\terr\n", path)
			continue
		}
		fmt.Fprintf(out, "F\t%s\tok\n", path)
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok {
				continue
			}
			recv, generic, ptr := "-", false, false
			if fd.Recv != nil && len(fd.Recv.List) > 0 {
				recv, generic, ptr = recvType(fd.Recv.List[0].Type)
			}
			if fd.Type.TypeParams != nil && len(fd.Type.TypeParams.List) > 0 {
				generic = true
			}
			line := fset.PositionFor(fd.Pos(), false).Line
			fmt.Fprintf(out, "D\t%d\t%s\t%s\t%d\t%d\t%d\n", line, recv, fd.Name.Name, b(generic), b(ptr), b(fd.Body != nil))
		}
	}
}
