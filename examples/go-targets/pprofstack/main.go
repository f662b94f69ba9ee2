// Command pprofstack calls one out-of-line function, main.leaf, from known call sites: directly
// from main.root, through main.via (which the compiler inlines into its callers), through
// main.via2 (inlined, itself calling the inlined main.via: mid-stack inlining), and from
// main.mid (out of line) through main.via. It is the oracle of `gotrace graph --pprof`'s call
// sites: at each entry of main.leaf it records its callers as Go's runtime names them
// (runtime.Callers and runtime.CallersFrames, which expand inlined calls) up to main.root, and
// at exit prints one line per distinct caller stack, innermost caller first:
//
//	callers main.via example/main.go:40;main.root example/main.go:59 count=20
//
// then `roots N`.
//
// Flags:
//
//	-rounds N  calls of main.root (default 20)
//	-spin N    loop iterations of each main.leaf call (default 20000)
package main

import (
	"flag"
	"fmt"
	"runtime"
	"sort"
	"strings"
)

var (
	callers = map[string]int{}
	sink    uint64
	spin    = flag.Int("spin", 20000, "loop iterations of each main.leaf call")
)

// via is small enough to be inlined into its callers.
func via(n int) uint64 {
	return leaf(n) + 1
}

// via2 is inlined too, with main.via inlined into it.
func via2(n int) uint64 {
	return via(n) * 3
}

//go:noinline
func mid(n int) uint64 {
	return via(n) + 2
}

//go:noinline
func root() uint64 {
	x := leaf(*spin)
	x += via(*spin)
	x += via2(*spin)
	x += mid(*spin)
	return x
}

//go:noinline
func leaf(n int) uint64 {
	record()
	var x uint64
	for i := 0; i < n; i++ {
		x += uint64(i) * 2654435761
	}
	return x
}

// record notes the callers of main.leaf up to main.root.
//
//go:noinline
func record() {
	pcs := make([]uintptr, 16)
	// Skip runtime.Callers, record and leaf.
	n := runtime.Callers(3, pcs)
	frames := runtime.CallersFrames(pcs[:n])
	var parts []string
	for {
		f, more := frames.Next()
		parts = append(parts, fmt.Sprintf("%s %s:%d", f.Function, f.File, f.Line))
		if f.Function == "main.root" || !more {
			break
		}
	}
	callers[strings.Join(parts, ";")]++
}

func main() {
	rounds := flag.Int("rounds", 20, "calls of main.root")
	flag.Parse()
	for i := 0; i < *rounds; i++ {
		sink += root()
	}
	keys := make([]string, 0, len(callers))
	for k := range callers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Printf("callers %s count=%d\n", k, callers[k])
	}
	fmt.Printf("roots %d\n", *rounds)
}
