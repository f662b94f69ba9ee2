// Command inlines prints, one JSON object per line, every inlined call that Go's own
// debug/dwarf reads from a Go binary: each DW_TAG_inlined_subroutine below a concrete
// subprogram, with the inlined function's name (from its abstract origin), the subprogram
// holding it, the enclosing inlined calls (innermost first), the call site and the PC ranges.
// It is the oracle of tests/inline_oracle.rs. Standard library only.
//
// Usage: inlines BINARY
package main

import (
	"debug/dwarf"
	"debug/elf"
	"encoding/json"
	"fmt"
	"os"
)

type site struct {
	Func     string      `json:"func"`
	Parent   string      `json:"parent"`
	Callers  []string    `json:"callers"`
	CallFile string      `json:"call_file"`
	CallLine int64       `json:"call_line"`
	Ranges   [][2]uint64 `json:"ranges"`
	// Params are the names of the formal parameters directly below the call, in order.
	Params []string `json:"params"`
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: inlines BINARY")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "inlines:", err)
		os.Exit(1)
	}
}

func run(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return err
	}
	d, err := f.DWARF()
	if err != nil {
		return err
	}
	// Pass 1: the name of every subprogram and formal parameter DIE, by offset (abstract
	// origins may be in another unit).
	names := map[dwarf.Offset]string{}
	r := d.Reader()
	for {
		e, err := r.Next()
		if err != nil {
			return err
		}
		if e == nil {
			break
		}
		if e.Tag == dwarf.TagSubprogram || e.Tag == dwarf.TagFormalParameter {
			if name, ok := e.Val(dwarf.AttrName).(string); ok {
				names[e.Offset] = name
			}
		}
	}
	nameOf := func(e *dwarf.Entry) string {
		if name, ok := e.Val(dwarf.AttrName).(string); ok {
			return name
		}
		if origin, ok := e.Val(dwarf.AttrAbstractOrigin).(dwarf.Offset); ok {
			return names[origin]
		}
		return ""
	}

	// Pass 2: walk each unit's tree with a stack of open entries.
	out := json.NewEncoder(os.Stdout)
	r = d.Reader()
	type open struct {
		tag  dwarf.Tag
		name string
	}
	var stack []open
	// The site being printed, and the depth of its DIE, until its children are read.
	var pending *site
	pendingDepth := -1
	flush := func() error {
		if pending == nil {
			return nil
		}
		err := out.Encode(pending)
		pending = nil
		return err
	}
	var files []*dwarf.LineFile
	for {
		e, err := r.Next()
		if err != nil {
			return err
		}
		if e == nil {
			break
		}
		if pending != nil && (e.Tag == 0 && len(stack) == pendingDepth+1 || e.Tag != 0 && e.Tag != dwarf.TagFormalParameter && len(stack) <= pendingDepth+1) {
			if err := flush(); err != nil {
				return err
			}
		}
		if e.Tag == dwarf.TagFormalParameter && pending != nil && len(stack) == pendingDepth+1 {
			pending.Params = append(pending.Params, nameOf(e))
		}
		if e.Tag == 0 {
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			continue
		}
		if e.Tag == dwarf.TagCompileUnit {
			stack = stack[:0]
			files = nil
			if lr, err := d.LineReader(e); err == nil && lr != nil {
				files = lr.Files()
			}
		}
		name := nameOf(e)
		if e.Tag == dwarf.TagInlinedSubroutine {
			s := site{Func: name, Callers: []string{}, Ranges: [][2]uint64{}, Params: []string{}}
			for i := len(stack) - 1; i >= 0; i-- {
				if stack[i].tag == dwarf.TagInlinedSubroutine {
					s.Callers = append(s.Callers, stack[i].name)
				} else if stack[i].tag == dwarf.TagSubprogram {
					s.Parent = stack[i].name
					break
				}
			}
			if idx, ok := e.Val(dwarf.AttrCallFile).(int64); ok && idx >= 0 && int(idx) < len(files) && files[idx] != nil {
				s.CallFile = files[idx].Name
			}
			s.CallLine, _ = e.Val(dwarf.AttrCallLine).(int64)
			ranges, err := d.Ranges(e)
			if err != nil {
				return fmt.Errorf("ranges of the inlined call at %#x: %v", e.Offset, err)
			}
			for _, rg := range ranges {
				s.Ranges = append(s.Ranges, [2]uint64{rg[0], rg[1]})
			}
			if err := flush(); err != nil {
				return err
			}
			if e.Children {
				pending, pendingDepth = &s, len(stack)
			} else if err := out.Encode(s); err != nil {
				return err
			}
		}
		if e.Children {
			stack = append(stack, open{e.Tag, name})
		}
	}
	return flush()
}
