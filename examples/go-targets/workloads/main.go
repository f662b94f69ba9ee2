// Command workloads runs the call patterns gotrace funclat is tested on, and prints its own
// exact record of them (the oracle the tests compare gotrace's counts with).
//
//	workloads stackgrow -g 100 -calls 200   deep recursion that grows and shrinks goroutine stacks
//	workloads fib -n 25                      recursion
//	workloads panics -n 1000 -every 20       panics recovered in the caller
//	workloads sleep -ms 20 -n 50 -g 4        calls of known duration on migrating goroutines
//	workloads deep -g 100 -calls 200         the exact-delivery experiment (see docs/exact-delivery.md)
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

var deepCalls int64

// deep recurses n times with a 256-byte frame, so goroutine stacks grow and shrink.
//
//go:noinline
func deep(n int) int {
	atomic.AddInt64(&deepCalls, 1)
	var pad [256]byte
	pad[n%256] = byte(n)
	if n == 0 {
		return int(pad[0])
	}
	return deep(n-1) + int(pad[n%256]&1)
}

// handle is what each worker does per request: one deep call of varying depth.
//
//go:noinline
func handle(n int) int {
	return deep(n)
}

func stackgrow(goroutines, calls int, pause time.Duration, warm bool) {
	var wg sync.WaitGroup
	sums := make([]int, goroutines)
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			if warm {
				sums[g] += deep(3000)
			}
			for i := 0; i < calls; i++ {
				sums[g] += handle(50 + (g*7919+i*104729)%1991)
				if pause > 0 {
					time.Sleep(pause)
				}
			}
		}(g)
	}
	wg.Wait()
	total := 0
	for _, s := range sums {
		total += s
	}
	fmt.Printf("checksum %d\n", total)
	fmt.Printf("calls main.deep %d\n", atomic.LoadInt64(&deepCalls))
}

var fibCalls int64

// square is small enough that the compiler inlines it everywhere (no code of its own).
func square(x int) int { return x*x + 3 }

//go:noinline
func fib(n int) int {
	fibCalls++
	if n < 2 {
		return n
	}
	return fib(n-1) + fib(n-2)
}

var mayPanicCalls int64

// mayPanic panics when i is a multiple of every.
//
//go:noinline
func mayPanic(i, every int) int {
	mayPanicCalls++
	if i%every == 0 {
		panic(fmt.Sprintf("boom %d", i))
	}
	return i * 2
}

func callRecovering(i, every int) (r int, panicked bool) {
	defer func() {
		if recover() != nil {
			panicked = true
		}
	}()
	return mayPanic(i, every), false
}

//go:noinline
func sleepy(d time.Duration) {
	time.Sleep(d)
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: workloads stackgrow|deep|fib|panics|sleep [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	goroutines := fs.Int("g", 100, "goroutines")
	calls := fs.Int("calls", 200, "calls per goroutine")
	n := fs.Int("n", 25, "fib argument / number of calls")
	every := fs.Int("every", 20, "panic every N calls")
	ms := fs.Int("ms", 20, "sleep milliseconds")
	fs.Parse(os.Args[2:])
	switch os.Args[1] {
	case "stackgrow":
		stackgrow(*goroutines, *calls, 0, false)
	case "deep":
		stackgrow(*goroutines, *calls, time.Millisecond, true)
	case "fib":
		fmt.Printf("fib(%d) = %d, square %d\n", *n, fib(*n), square(*n))
		fmt.Printf("calls main.fib %d\n", fibCalls)
	case "panics":
		panics := 0
		for i := 1; i <= *n; i++ {
			if _, p := callRecovering(i, *every); p {
				panics++
			}
		}
		fmt.Printf("calls main.mayPanic %d\n", mayPanicCalls)
		fmt.Printf("panics %d\n", panics)
	case "sleep":
		var wg sync.WaitGroup
		var mu sync.Mutex
		durations := []time.Duration{}
		for g := 0; g < *goroutines; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < *n; i++ {
					start := time.Now()
					sleepy(time.Duration(*ms) * time.Millisecond)
					d := time.Since(start)
					mu.Lock()
					durations = append(durations, d)
					mu.Unlock()
					runtime.Gosched()
				}
			}()
		}
		wg.Wait()
		for _, d := range durations {
			fmt.Printf("duration_ns %d\n", d.Nanoseconds())
		}
		fmt.Printf("calls main.sleepy %d\n", len(durations))
	default:
		fmt.Fprintf(os.Stderr, "unknown workload %q\n", os.Args[1])
		os.Exit(2)
	}
}
