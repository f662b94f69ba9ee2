// Command dwarfdump prints, as one JSON object, what Go's own debug/dwarf reads from a Go
// binary: every function's parameters and results, every CU-level global with a static
// address, every struct type's fields, the runtime.g / runtime.m field offsets, and the
// runtime's wait-reason strings (runtime.waitReasonStrings, read through debug/elf's symbols).
// It is the oracle of tests/dwarf_oracle.rs. Standard library only.
//
// Usage: dwarfdump BINARY
package main

import (
	"debug/dwarf"
	"debug/elf"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
)

// Go's own DWARF attributes.
const attrGoKind = dwarf.Attr(0x2900)

// opAddr is DW_OP_addr.
const opAddr = 0x03

type param struct {
	Name string `json:"name"`
	Type string `json:"type"`
	// Size is debug/dwarf's size of the type (-1 when it cannot say).
	Size int64 `json:"size"`
}

type signature struct {
	Params   []param `json:"params"`
	Results  []param `json:"results"`
	concrete bool
}

type global struct {
	Name string `json:"name"`
	Addr uint64 `json:"addr"`
	Type string `json:"type"`
}

type field struct {
	Name   string `json:"name"`
	Offset int64  `json:"offset"`
	Type   string `json:"type"`
}

type structType struct {
	Size   int64   `json:"size"`
	Fields []field `json:"fields"`
}

type runtimeLayout struct {
	GGoid    int64 `json:"g_goid"`
	GStackLo int64 `json:"g_stack_lo"`
	GStackHi int64 `json:"g_stack_hi"`
	GM       int64 `json:"g_m"`
	MCurg    int64 `json:"m_curg"`
	// GAtomicstatus and GWaitreason: g.atomicstatus, g.waitreason.
	GAtomicstatus int64 `json:"g_atomicstatus"`
	GWaitreason   int64 `json:"g_waitreason"`
}

type output struct {
	Functions map[string]*signature `json:"functions"`
	Globals   []global              `json:"globals"`
	Structs   map[string]structType `json:"structs"`
	Runtime   *runtimeLayout        `json:"runtime"`
	// WaitReasons is runtime.waitReasonStrings in index order (null without the symbol).
	WaitReasons []string `json:"wait_reasons"`
}

// paramDIE is a formal parameter below a subprogram: its own, or its abstract origin's.
type paramDIE struct {
	offset   dwarf.Offset
	own      *param
	result   bool
	origin   dwarf.Offset
	isOrigin bool
}

type funcDIE struct {
	offset     dwarf.Offset
	name       string
	origin     dwarf.Offset
	hasOrigin  bool
	concrete   bool
	isAbstract bool
	params     []paramDIE
}

type dumper struct {
	data      *dwarf.Data
	ptrSize   int
	order     binary.ByteOrder
	typeNames map[dwarf.Offset]string
	out       output
	// Abstract subprograms and their parameters, by offset.
	abstractFuncs  map[dwarf.Offset]string
	abstractParams map[dwarf.Offset]paramDIE
	instances      []*funcDIE
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: dwarfdump BINARY")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "dwarfdump:", err)
		os.Exit(1)
	}
}

func run(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	data, err := f.DWARF()
	if err != nil {
		return err
	}
	d := &dumper{
		data:           data,
		ptrSize:        8,
		order:          f.ByteOrder,
		typeNames:      map[dwarf.Offset]string{},
		abstractFuncs:  map[dwarf.Offset]string{},
		abstractParams: map[dwarf.Offset]paramDIE{},
		out: output{
			Functions: map[string]*signature{},
			Globals:   []global{},
			Structs:   map[string]structType{},
		},
	}
	if f.Class == elf.ELFCLASS32 {
		d.ptrSize = 4
	}
	if err := d.walk(); err != nil {
		return err
	}
	for _, fn := range d.instances {
		if name, ok := d.abstractFuncs[fn.origin]; ok {
			d.addFunction(name, fn)
		}
	}
	d.out.Runtime = d.runtimeLayout()
	if d.out.WaitReasons, err = waitReasons(f, d.ptrSize); err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(d.out)
}

// walk reads every DIE in order, keeping track of depth.
func (d *dumper) walk() error {
	r := d.data.Reader()
	depth := 0
	var fn *funcDIE
	fnDepth := -1
	for {
		e, err := r.Next()
		if err != nil {
			return err
		}
		if e == nil {
			break
		}
		if e.Tag == 0 {
			depth--
			if fn != nil && depth <= fnDepth {
				d.closeFunc(fn)
				fn = nil
			}
			continue
		}
		switch {
		case e.Tag == dwarf.TagSubprogram && depth == 1:
			fn = d.openFunc(e)
			fnDepth = depth
			if !e.Children {
				d.closeFunc(fn)
				fn = nil
			}
		case e.Tag == dwarf.TagFormalParameter && fn != nil && depth == fnDepth+1:
			fn.params = append(fn.params, d.paramOf(e))
		case e.Tag == dwarf.TagVariable && depth == 1:
			d.global(e)
		case e.Tag == dwarf.TagStructType && depth == 1:
			d.structOf(e)
		}
		if e.Children {
			depth++
		}
	}
	return nil
}

func (d *dumper) openFunc(e *dwarf.Entry) *funcDIE {
	fn := &funcDIE{
		offset:     e.Offset,
		concrete:   e.Val(dwarf.AttrLowpc) != nil,
		isAbstract: e.Val(dwarf.AttrInline) != nil,
	}
	if name, ok := e.Val(dwarf.AttrName).(string); ok {
		fn.name = name
	} else if origin, ok := e.Val(dwarf.AttrAbstractOrigin).(dwarf.Offset); ok {
		fn.origin = origin
		fn.hasOrigin = true
	}
	return fn
}

func (d *dumper) paramOf(e *dwarf.Entry) paramDIE {
	name, hasName := e.Val(dwarf.AttrName).(string)
	if origin, ok := e.Val(dwarf.AttrAbstractOrigin).(dwarf.Offset); ok && !hasName {
		return paramDIE{origin: origin, isOrigin: true}
	}
	p := param{Name: name, Type: "<unknown>", Size: -1}
	if off, ok := e.Val(dwarf.AttrType).(dwarf.Offset); ok {
		p.Type = d.typeName(off)
		p.Size = d.typeSize(off)
	}
	result, _ := e.Val(dwarf.AttrVarParam).(bool)
	return paramDIE{offset: e.Offset, own: &p, result: result}
}

func (d *dumper) closeFunc(fn *funcDIE) {
	if fn.isAbstract {
		if fn.name != "" {
			d.abstractFuncs[fn.offset] = fn.name
		}
		for _, p := range fn.params {
			if !p.isOrigin {
				d.abstractParams[p.offset] = p
			}
		}
	}
	switch {
	case fn.name != "":
		d.addFunction(fn.name, fn)
	case fn.hasOrigin:
		d.instances = append(d.instances, fn)
	}
}

// addFunction keeps the first signature of a name, except that a concrete subprogram replaces
// an abstract one.
func (d *dumper) addFunction(name string, fn *funcDIE) {
	if old, ok := d.out.Functions[name]; ok && (old.concrete || !fn.concrete) {
		return
	}
	sig := &signature{Params: []param{}, Results: []param{}, concrete: fn.concrete}
	for _, p := range fn.params {
		if p.isOrigin {
			resolved, ok := d.abstractParams[p.origin]
			if !ok {
				resolved = paramDIE{own: &param{Type: "<unknown>", Size: -1}}
			}
			p = resolved
		}
		if p.result {
			sig.Results = append(sig.Results, *p.own)
		} else {
			sig.Params = append(sig.Params, *p.own)
		}
	}
	d.out.Functions[name] = sig
}

func (d *dumper) global(e *dwarf.Entry) {
	name, ok := e.Val(dwarf.AttrName).(string)
	loc, ok2 := e.Val(dwarf.AttrLocation).([]byte)
	if !ok || !ok2 || len(loc) != 1+d.ptrSize || loc[0] != opAddr {
		return
	}
	var addr uint64
	if d.ptrSize == 8 {
		addr = d.order.Uint64(loc[1:])
	} else {
		addr = uint64(d.order.Uint32(loc[1:]))
	}
	g := global{Name: name, Addr: addr}
	if off, ok := e.Val(dwarf.AttrType).(dwarf.Offset); ok {
		g.Type = d.typeName(off)
	}
	d.out.Globals = append(d.out.Globals, g)
}

// structOf records a plain struct type (not a Go string or slice) through debug/dwarf's own
// type reader.
func (d *dumper) structOf(e *dwarf.Entry) {
	name, _ := e.Val(dwarf.AttrName).(string)
	if kind, ok := e.Val(attrGoKind).(int64); ok && kind != 25 {
		return
	}
	if _, seen := d.out.Structs[name]; seen || name == "" {
		return
	}
	t, err := d.data.Type(e.Offset)
	if err != nil {
		return
	}
	st, ok := t.(*dwarf.StructType)
	if !ok {
		return
	}
	s := structType{Size: st.ByteSize, Fields: []field{}}
	for _, f := range st.Field {
		s.Fields = append(s.Fields, field{Name: f.Name, Offset: f.ByteOffset, Type: f.Type.String()})
	}
	d.out.Structs[name] = s
}

// typeName is the DW_AT_name of the type DIE at off.
func (d *dumper) typeName(off dwarf.Offset) string {
	if name, ok := d.typeNames[off]; ok {
		return name
	}
	r := d.data.Reader()
	r.Seek(off)
	name := "<unknown>"
	if e, err := r.Next(); err == nil && e != nil {
		if n, ok := e.Val(dwarf.AttrName).(string); ok {
			name = n
		}
	}
	d.typeNames[off] = name
	return name
}

// typeSize is debug/dwarf's size of the type at off, or -1.
func (d *dumper) typeSize(off dwarf.Offset) int64 {
	t, err := d.data.Type(off)
	if err != nil {
		return -1
	}
	return t.Size()
}

// runtimeLayout reads runtime.g and runtime.m through debug/dwarf's type reader.
func (d *dumper) runtimeLayout() *runtimeLayout {
	g, ok1 := d.out.Structs["runtime.g"]
	m, ok2 := d.out.Structs["runtime.m"]
	stack, ok3 := d.out.Structs["runtime.stack"]
	if !ok1 || !ok2 || !ok3 {
		return nil
	}
	offset := func(s structType, name string) int64 {
		for _, f := range s.Fields {
			if f.Name == name {
				return f.Offset
			}
		}
		return -1
	}
	stackAt := offset(g, "stack")
	return &runtimeLayout{
		GGoid:         offset(g, "goid"),
		GStackLo:      stackAt + offset(stack, "lo"),
		GStackHi:      stackAt + offset(stack, "hi"),
		GM:            offset(g, "m"),
		MCurg:         offset(m, "curg"),
		GAtomicstatus: offset(g, "atomicstatus"),
		GWaitreason:   offset(g, "waitreason"),
	}
}

// waitReasons reads the array runtime.waitReasonStrings ([N]string: N pointer-and-length
// pairs) from the file's sections, and every string it points at; nil without the symbol.
func waitReasons(f *elf.File, ptrSize int) ([]string, error) {
	syms, err := f.Symbols()
	if err != nil {
		return nil, nil
	}
	for _, sym := range syms {
		if sym.Name != "runtime.waitReasonStrings" {
			continue
		}
		array, err := readAt(f, sym.Value, sym.Size)
		if err != nil {
			return nil, err
		}
		word := func(b []byte) uint64 {
			if ptrSize == 4 {
				return uint64(f.ByteOrder.Uint32(b))
			}
			return f.ByteOrder.Uint64(b)
		}
		var out []string
		for at := 0; at+2*ptrSize <= len(array); at += 2 * ptrSize {
			ptr, n := word(array[at:]), word(array[at+ptrSize:])
			text, err := readAt(f, ptr, n)
			if err != nil {
				return nil, err
			}
			out = append(out, string(text))
		}
		return out, nil
	}
	return nil, nil
}

// readAt returns n bytes at virtual address addr from the section holding them.
func readAt(f *elf.File, addr, n uint64) ([]byte, error) {
	if n == 0 {
		return []byte{}, nil
	}
	for _, s := range f.Sections {
		if s.Type == elf.SHT_NOBITS || addr < s.Addr || addr+n > s.Addr+s.Size {
			continue
		}
		buf := make([]byte, n)
		if _, err := s.ReadAt(buf, int64(addr-s.Addr)); err != nil {
			return nil, err
		}
		return buf, nil
	}
	return nil, fmt.Errorf("no section holds %d bytes at %#x", n, addr)
}
