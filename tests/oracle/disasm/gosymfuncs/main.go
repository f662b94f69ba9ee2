// Command gosymfuncs prints every function of a Go ELF binary's pclntab as
// "entry end name" (hex addresses), one per line, read by Go's own debug/gosym. It is the
// oracle for function ranges of stripped binaries, where `go tool nm` finds no symbols.
package main

import (
	"bufio"
	"debug/elf"
	"debug/gosym"
	"fmt"
	"os"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: gosymfuncs BINARY")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "gosymfuncs:", err)
		os.Exit(1)
	}
}

func run(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	pclntab := f.Section(".gopclntab")
	text := f.Section(".text")
	if pclntab == nil || text == nil {
		return fmt.Errorf("%s: no .gopclntab or .text section", path)
	}
	data, err := pclntab.Data()
	if err != nil {
		return err
	}
	table, err := gosym.NewTable(nil, gosym.NewLineTable(data, text.Addr))
	if err != nil {
		return err
	}
	out := bufio.NewWriter(os.Stdout)
	for _, fn := range table.Funcs {
		fmt.Fprintf(out, "%x %x %s\n", fn.Entry, fn.End, fn.Name)
	}
	return out.Flush()
}
