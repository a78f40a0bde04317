package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"sort"
	"strings"
)

// BenchDoc is the doc comment of one benchmark function, which is where its
// author states what it measures and how the contender is configured.
// A BenchDoc is a plain value.
type BenchDoc struct {
	Package string `json:"package"`
	Func    string `json:"func"`
	File    string `json:"file"`
	Doc     string `json:"doc"`
}

// BenchmarkDocs reads the doc comments of the Benchmark functions in the
// _test.go files of each package directory. A file that does not parse is
// skipped: the build step reports it.
func BenchmarkDocs(root string, dirs []string) []BenchDoc {
	var out []BenchDoc
	for _, dir := range dirs {
		files, _ := filepath.Glob(filepath.Join(root, dir, "*_test.go"))
		sort.Strings(files)
		for _, file := range files {
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, file, nil, parser.ParseComments|parser.SkipObjectResolution)
			if err != nil {
				continue
			}
			for _, decl := range f.Decls {
				fn, ok := decl.(*ast.FuncDecl)
				if !ok || fn.Recv != nil || !strings.HasPrefix(fn.Name.Name, "Benchmark") || fn.Doc == nil {
					continue
				}
				out = append(out, BenchDoc{
					Package: dir,
					Func:    fn.Name.Name,
					File:    filepath.ToSlash(filepath.Join(dir, filepath.Base(file))),
					Doc:     strings.TrimSpace(fn.Doc.Text()),
				})
			}
		}
	}
	return out
}
