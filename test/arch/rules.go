// Package arch checks Berth's architecture: the import rules of
// docs/architecture.md (imports_test.go, with `go list`) and the house rules of
// /work/shared/STYLE.md that a syntax tree can prove (this file, with go/parser):
// no init(), a package doc comment on every package, no file over MaxFileLines
// lines, no function over MaxFuncLines lines and no grab-bag package names.
package arch

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Rule names one house rule; it is printed with every violation so that a
// failure says which rule to read.
type Rule string

// The house rules that Check enforces.
const (
	// RuleNoInit forbids func init() in non-test files: construct, don't register.
	RuleNoInit Rule = "no-init"
	// RulePackageDoc requires a package doc comment in one non-test file.
	RulePackageDoc Rule = "package-doc"
	// RuleFileLength forbids non-test files over MaxFileLines lines.
	RuleFileLength Rule = "file-length"
	// RuleFuncLength forbids functions over MaxFuncLines lines in non-test files.
	RuleFuncLength Rule = "func-length"
	// RulePackageName forbids grab-bag package names such as util or common.
	RulePackageName Rule = "package-name"
	// RuleStoredContext forbids struct fields of type context.Context: a context is
	// passed to each call, never kept.
	RuleStoredContext Rule = "stored-context"
	// RuleBackgroundContext allows context.Background() and context.TODO() only in
	// package main: everything else takes its caller's context.
	RuleBackgroundContext Rule = "background-context"
)

// Limits of the length rules; a file or function at the limit passes.
const (
	MaxFileLines = 500
	MaxFuncLines = 80
)

// Violation is one breach of a house rule.
type Violation struct {
	// File is the slash-separated path, relative to the checked root, of the
	// offending file, or of the package folder for package-wide rules.
	File string
	// Line is the 1-based line of the offending declaration, or 0 when the
	// rule is about a whole file or package.
	Line int
	// Rule is the rule broken.
	Rule Rule
	// Message says what is wrong and how to fix it.
	Message string
}

// String formats v as "file:line: message [rule]", the line left out when 0.
func (v Violation) String() string {
	if v.Line > 0 {
		return fmt.Sprintf("%s:%d: %s [%s]", v.File, v.Line, v.Message, v.Rule)
	}
	return fmt.Sprintf("%s: %s [%s]", v.File, v.Message, v.Rule)
}

// Check walks the Go packages under root's cmd/, internal/ and web/ folders and
// returns every house-rule violation, sorted by file and line. Folders named
// testdata, or starting with "." or "_", are skipped as the go tool skips
// them; _test.go files count only toward the package-name rule. The error
// reports a folder that cannot be read or a file that does not parse.
func Check(root string) ([]Violation, error) {
	var out []Violation
	for _, top := range []string{"cmd", "internal", "web"} {
		dirs, err := goDirs(filepath.Join(root, top))
		if err != nil {
			return nil, err
		}
		for _, dir := range dirs {
			vs, err := checkPackage(root, dir)
			if err != nil {
				return nil, err
			}
			out = append(out, vs...)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].File != out[j].File {
			return out[i].File < out[j].File
		}
		if out[i].Line != out[j].Line {
			return out[i].Line < out[j].Line
		}
		return out[i].Message < out[j].Message
	})
	return out, nil
}

// goDirs returns top and the folders under it that the go tool would look
// at for packages; a missing top yields none.
func goDirs(top string) ([]string, error) {
	var dirs []string
	err := filepath.WalkDir(top, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == top && os.IsNotExist(err) {
				return fs.SkipDir
			}
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != top && (name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return fs.SkipDir
			}
			dirs = append(dirs, path)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("walk %s: %w", top, err)
	}
	return dirs, nil
}

// checkPackage applies every rule to the package in dir, if dir holds one.
func checkPackage(root, dir string) ([]Violation, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read package %s: %w", dir, err)
	}
	rel := relPath(root, dir)
	var (
		out     []Violation
		names   = map[string]bool{}
		docs    int
		nonTest int
		pkgName string
	)
	fset := token.NewFileSet()
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		src, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		f, err := parser.ParseFile(fset, path, src, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", path, err)
		}
		names[f.Name.Name] = true
		if strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		nonTest++
		pkgName = f.Name.Name
		if hasPackageDoc(f) {
			docs++
		}
		out = append(out, checkFile(fset, f, relPath(root, path), src)...)
	}
	if len(names) == 0 {
		return nil, nil
	}
	if nonTest > 0 && docs == 0 {
		out = append(out, Violation{File: rel, Rule: RulePackageDoc, Message: fmt.Sprintf(
			"package %s has no package doc comment: add `// Package %s ...` (one sentence on what it owns) above the package clause of one non-test file, usually doc.go or %s.go",
			pkgName, pkgName, pkgName)})
	}
	names[filepath.Base(dir)] = true
	for name := range names {
		if isGrabBag(name) {
			out = append(out, Violation{File: rel, Rule: RulePackageName, Message: fmt.Sprintf(
				"package or folder named %q says nothing about what it owns: move each piece to the package that uses it, or name the package after what it provides",
				name)})
		}
	}
	return out, nil
}

// isGrabBag reports whether name is a package or folder name that says
// nothing about what the package provides.
func isGrabBag(name string) bool {
	switch name {
	case "util", "utils", "common", "helpers", "misc":
		return true
	}
	return false
}

// hasPackageDoc reports whether f carries a package doc comment: "Package
// name ..." for a library, any comment for a command (package main).
func hasPackageDoc(f *ast.File) bool {
	if f.Doc == nil {
		return false
	}
	text := f.Doc.Text()
	if f.Name.Name == "main" {
		return strings.TrimSpace(text) != ""
	}
	return strings.HasPrefix(text, "Package "+f.Name.Name+" ") || strings.HasPrefix(text, "Package "+f.Name.Name+"\n")
}

// checkFile applies the per-file rules to the non-test file f, whose
// root-relative path is rel and whose content is src.
func checkFile(fset *token.FileSet, f *ast.File, rel string, src []byte) []Violation {
	var out []Violation
	if n := lineCount(src); n > MaxFileLines {
		out = append(out, Violation{File: rel, Rule: RuleFileLength, Message: fmt.Sprintf(
			"%d lines, over %d: split it by concern, one idea per file", n, MaxFileLines)})
	}
	out = append(out, checkContexts(fset, f, rel)...)
	for _, decl := range f.Decls {
		fd, ok := decl.(*ast.FuncDecl)
		if !ok {
			continue
		}
		line := fset.Position(fd.Pos()).Line
		if fd.Recv == nil && fd.Name.Name == "init" {
			out = append(out, Violation{File: rel, Line: line, Rule: RuleNoInit, Message: "func init(): construct, don't register; build this state in a constructor and pass it to whoever needs it"})
		}
		if fd.Body == nil {
			continue
		}
		if n := fset.Position(fd.Body.Rbrace).Line - line + 1; n > MaxFuncLines {
			out = append(out, Violation{File: rel, Line: line, Rule: RuleFuncLength, Message: fmt.Sprintf(
				"func %s is %d lines, over %d: extract its steps into named helpers", funcName(fd), n, MaxFuncLines)})
		}
	}
	return out
}

// checkContexts reports struct fields of type context.Context, and
// context.Background() or context.TODO() outside package main.
func checkContexts(fset *token.FileSet, f *ast.File, rel string) []Violation {
	ctxName := importName(f, "context")
	if ctxName == "" {
		return nil
	}
	isContext := func(e ast.Expr, sel string) bool {
		s, ok := e.(*ast.SelectorExpr)
		if !ok || s.Sel.Name != sel {
			return false
		}
		x, ok := s.X.(*ast.Ident)
		return ok && x.Name == ctxName
	}
	var out []Violation
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.StructType:
			for _, field := range n.Fields.List {
				if isContext(field.Type, "Context") {
					out = append(out, Violation{File: rel, Line: fset.Position(field.Pos()).Line, Rule: RuleStoredContext,
						Message: "a struct keeps a context.Context: pass the context to each call instead (a lifetime is a done channel or a cancel func)"})
				}
			}
		case *ast.CallExpr:
			if f.Name.Name != "main" && (isContext(n.Fun, "Background") || isContext(n.Fun, "TODO")) {
				out = append(out, Violation{File: rel, Line: fset.Position(n.Pos()).Line, Rule: RuleBackgroundContext,
					Message: "context.Background() outside main: take the caller's ctx (context.WithoutCancel(ctx) for work that outlives a request)"})
			}
		}
		return true
	})
	return out
}

// importName is the name file f uses for the package at path, "" when not imported.
func importName(f *ast.File, path string) string {
	for _, imp := range f.Imports {
		if strings.Trim(imp.Path.Value, `"`) != path {
			continue
		}
		if imp.Name != nil {
			return imp.Name.Name
		}
		return path[strings.LastIndex(path, "/")+1:]
	}
	return ""
}

// funcName renders fd's name with its receiver type, e.g. (*Server).Run.
func funcName(fd *ast.FuncDecl) string {
	if fd.Recv == nil || len(fd.Recv.List) == 0 {
		return fd.Name.Name
	}
	return "(" + typeName(fd.Recv.List[0].Type) + ")." + fd.Name.Name
}

// typeName renders a receiver type expression such as *T or T[K].
func typeName(e ast.Expr) string {
	switch t := e.(type) {
	case *ast.StarExpr:
		return "*" + typeName(t.X)
	case *ast.Ident:
		return t.Name
	case *ast.IndexExpr:
		return typeName(t.X)
	case *ast.IndexListExpr:
		return typeName(t.X)
	case *ast.ParenExpr:
		return typeName(t.X)
	}
	return "?"
}

// lineCount counts lines as wc -l does, plus a last line without newline.
func lineCount(src []byte) int {
	n := bytes.Count(src, []byte("\n"))
	if len(src) > 0 && src[len(src)-1] != '\n' {
		n++
	}
	return n
}

// relPath returns path relative to root with forward slashes, or path itself
// when it is not under root.
func relPath(root, path string) string {
	rel, err := filepath.Rel(root, path)
	if err != nil {
		return filepath.ToSlash(path)
	}
	return filepath.ToSlash(rel)
}
