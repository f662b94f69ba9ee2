// Command gosym is a test oracle: it prints every function of a Go binary's pclntab, as read by
// Go's own debug/gosym, one JSON object per line:
//
//	{"name":"main.main","entry":4739552,"end":4739808,"file":"example/main.go","line":42}
//
// It finds the table the way cmd/internal/objfile (go tool addr2line, go tool objdump) does:
// the .gopclntab section (.data.rel.ro.gopclntab in some PIE builds), else the bytes between
// the runtime.pclntab and runtime.epclntab symbols; the text start is the runtime.text symbol
// when the binary has a symbol table, else the start of .text (stripped binaries). This matters
// from Go 1.26 on, whose pclntab header no longer records the text start.
//
// Usage: gosym BINARY
package main

import (
	"bufio"
	"debug/elf"
	"debug/gosym"
	"encoding/json"
	"errors"
	"fmt"
	"os"
)

// function is one output line.
type function struct {
	Name  string `json:"name"`
	Entry uint64 `json:"entry"`
	End   uint64 `json:"end"`
	File  string `json:"file"`
	Line  int    `json:"line"`
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: gosym BINARY")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintf(os.Stderr, "gosym: %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func run(path string) error {
	file, err := elf.Open(path)
	if err != nil {
		return err
	}
	defer file.Close()

	symbols, err := file.Symbols()
	if err != nil && !errors.Is(err, elf.ErrNoSymbols) {
		return err
	}
	pclntab, err := tableBytes(file, symbols, ".gopclntab", "runtime.pclntab", "runtime.epclntab")
	if err != nil {
		return err
	}
	if pclntab == nil {
		return errors.New("no .gopclntab section and no runtime.pclntab symbol")
	}
	// Empty since Go 1.3; kept for the old format's sake.
	symtab, err := tableBytes(file, symbols, ".gosymtab", "runtime.symtab", "runtime.esymtab")
	if err != nil {
		return err
	}

	table, err := gosym.NewTable(symtab, gosym.NewLineTable(pclntab, textStart(file, symbols)))
	if err != nil {
		return err
	}
	out := bufio.NewWriter(os.Stdout)
	encoder := json.NewEncoder(out)
	for i := range table.Funcs {
		fn := &table.Funcs[i]
		fileName, line, _ := table.PCToLine(fn.Entry)
		record := function{Name: fn.Name, Entry: fn.Entry, End: fn.End, File: fileName, Line: line}
		if err := encoder.Encode(record); err != nil {
			return err
		}
	}
	return out.Flush()
}

// textStart is the address pclntab offsets are relative to: runtime.text, else .text.
func textStart(file *elf.File, symbols []elf.Symbol) uint64 {
	for _, sym := range symbols {
		if sym.Name == "runtime.text" {
			return sym.Value
		}
	}
	if text := file.Section(".text"); text != nil {
		return text.Addr
	}
	return 0
}

// tableBytes returns the contents of section name (or .data.rel.ro<name>), else the bytes
// between the start and end symbols, else nil.
func tableBytes(file *elf.File, symbols []elf.Symbol, name, start, end string) ([]byte, error) {
	for _, sectionName := range []string{name, ".data.rel.ro" + name} {
		if section := file.Section(sectionName); section != nil {
			return section.Data()
		}
	}
	var from, to uint64
	for _, sym := range symbols {
		switch sym.Name {
		case start:
			from = sym.Value
		case end:
			to = sym.Value
		}
	}
	if from == 0 || to <= from {
		return nil, nil
	}
	for _, prog := range file.Progs {
		if prog.Type == elf.PT_LOAD && from >= prog.Vaddr && to <= prog.Vaddr+prog.Filesz {
			data := make([]byte, to-from)
			if _, err := prog.ReadAt(data, int64(from-prog.Vaddr)); err != nil {
				return nil, err
			}
			return data, nil
		}
	}
	return nil, fmt.Errorf("%s..%s is not inside a loaded segment", start, end)
}
