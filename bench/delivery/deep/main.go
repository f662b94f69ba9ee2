// Command deep is the target for the exact-delivery experiments
// (docs/exact-delivery.md): many goroutines call handle(n), which recurses
// through deep n times with a 256-byte frame, so stacks grow, shrink and are
// copied while Go's async-preemption signals (SIGURG) flow. The program counts
// its own deep calls: that count is the oracle a uprobe count is compared to.
package main

import (
	"flag"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

var deepCalls atomic.Uint64

// topCalls counts the outermost deep calls (one per handle call and pregrow):
// each ends in the base-case return of deep, the others in the recursive one.
var topCalls atomic.Uint64

// deep recurses n times; buf keeps a 256-byte local array in every frame.
//
//go:noinline
func deep(n int) int {
	deepCalls.Add(1)
	var buf [256]byte
	buf[n&255] = byte(n)
	if n <= 0 {
		return int(buf[0])
	}
	return deep(n-1) + int(buf[n&255])
}

// handle is one unit of work: one deep(n) recursion.
//
//go:noinline
func handle(n int) int {
	return deep(n)
}

func main() {
	goroutines := flag.Int("g", 100, "goroutines")
	calls := flag.Int("n", 20, "handle calls per goroutine")
	sleep := flag.Duration("sleep", time.Millisecond, "sleep between handle calls")
	pregrow := flag.Int("pregrow", 3000, "depth of one deep call per goroutine before the loop (0: none)")
	flag.Parse()

	var wg sync.WaitGroup
	var sink atomic.Int64
	for gi := 0; gi < *goroutines; gi++ {
		wg.Add(1)
		go func(gi int) {
			defer wg.Done()
			if *pregrow > 0 {
				topCalls.Add(1)
				sink.Add(int64(deep(*pregrow)))
			}
			for i := 0; i < *calls; i++ {
				// Depths 50..2040, varied per goroutine and call.
				n := 50 + (gi*7919+i*104729)%1991
				topCalls.Add(1)
				sink.Add(int64(handle(n)))
				time.Sleep(*sleep)
			}
		}(gi)
	}
	wg.Wait()
	fmt.Printf("deep_calls %d\n", deepCalls.Load())
	fmt.Printf("deep_top_calls %d\n", topCalls.Load())
	_ = sink.Load()
}
