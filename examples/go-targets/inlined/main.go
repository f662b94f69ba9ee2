// inlined calls small functions that the Go compiler inlines: in a loop, in a branch, with
// early returns, inlined into inlined functions (mid-stack inlining), in a closure and in
// generic code, plus an out-of-line copy of add called through a func value. Each function
// keeps its own record (how many times it ran and the sum of each argument it saw); at exit
// the program prints one line per function:
// `INL {"function":"main.add","calls":N,"args":{"a":SUM,"b":SUM}}`.
// Which calls are inlined depends on the toolchain; the records do not.
//
// Usage: inlined [-n N]   (N loop iterations, default 1000; add runs N/10 extra times out
// of line through the func value)
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"sort"
)

// stat is one function's own record.
type stat struct {
	Calls int64            `json:"calls"`
	Args  map[string]int64 `json:"args"`
}

// The records, one counter and one sum per argument (plain globals keep the functions small
// enough to inline).
var (
	addCalls, addA, addB                 int64
	clampCalls, clampX, clampLo, clampHi int64
	leafCalls, leafX                     int64
	midCalls, midX                       int64
	topCalls, topX                       int64
	squareCalls, squareX                 int64
	maxCalls                             int64
	maxA, maxB                           float64
)

// add is inlined in main's loop and called out of line through addValue.
func add(a, b int) int {
	addCalls++
	addA += int64(a)
	addB += int64(b)
	return a + b
}

// clamp has early returns; main calls it from a branch.
func clamp(x, lo, hi int) int {
	clampCalls++
	clampX += int64(x)
	clampLo += int64(lo)
	clampHi += int64(hi)
	if x < lo {
		return lo
	}
	if x > hi {
		return hi
	}
	return x
}

// leaf, mid and top form a mid-stack inlining chain: top inlines mid, which inlines leaf.
func leaf(x int) int {
	leafCalls++
	leafX += int64(x)
	return x ^ 0x5a
}

func mid(x int) int {
	midCalls++
	midX += int64(x)
	return leaf(x) + 1
}

func top(x int) int {
	topCalls++
	topX += int64(x)
	return mid(x) * 2
}

// square is inlined into the closure in main.
func square(x int) int {
	squareCalls++
	squareX += int64(x)
	return x * x
}

// number is the constraint of maxOf.
type number interface{ ~int | ~float64 }

// maxOf is generic; main instantiates it for int and float64 (one record for both).
func maxOf[T number](a, b T) T {
	maxCalls++
	maxA += float64(a)
	maxB += float64(b)
	if a > b {
		return a
	}
	return b
}

// addValue calls add out of line: a package-level func variable cannot be devirtualized.
var addValue = add

func main() {
	n := flag.Int("n", 1000, "loop iterations")
	flag.Parse()

	total := 0
	apply := func(x int) int { return square(x) + 1 }
	for i := 0; i < *n; i++ {
		total = add(total, i)
		if i%3 == 0 {
			total += clamp(i, 10, 20)
		}
		total += top(i)
		total += apply(i % 7)
		total += maxOf(i, 500)
		if maxOf(float64(i), 2.5) > 100 {
			total++
		}
	}
	for i := 0; i < *n/10; i++ {
		total = addValue(total, i)
	}

	records := map[string]stat{
		"main.add":    {addCalls, map[string]int64{"a": addA, "b": addB}},
		"main.clamp":  {clampCalls, map[string]int64{"x": clampX, "lo": clampLo, "hi": clampHi}},
		"main.leaf":   {leafCalls, map[string]int64{"x": leafX}},
		"main.mid":    {midCalls, map[string]int64{"x": midX}},
		"main.top":    {topCalls, map[string]int64{"x": topX}},
		"main.square": {squareCalls, map[string]int64{"x": squareX}},
		"main.maxOf":  {maxCalls, map[string]int64{"a": int64(maxA), "b": int64(maxB)}},
	}
	names := make([]string, 0, len(records))
	for name := range records {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		line, err := json.Marshal(struct {
			Function string `json:"function"`
			stat
		}{name, records[name]})
		if err != nil {
			panic(err)
		}
		fmt.Printf("INL %s\n", line)
	}
	fmt.Printf("total %d\n", total)
}
