// inlinedloops calls small functions that the Go compiler inlines and whose code loops or
// locks: sum starts with its loop (the call's first instruction can be the loop header, run
// again by each iteration), spin busy-loops for a known time, and main locks a sync.Mutex
// (sync.(*Mutex).Lock is inlined at its call sites, and also called out of line through a
// sync.Locker). The program records how many times each ran and, for spin, the shortest and
// longest call as it timed them itself; at exit it prints, one per line:
//
//	sum_calls N
//	spin_calls N
//	spin_min_ns NS
//	spin_max_ns NS
//	lock_calls N
//
// It uses no package that locks a sync.Mutex of its own (no fmt, no flag).
//
// Usage: inlinedloops [N]   (N iterations, default 1000; N/100 spins of about 1 ms and N/10
// extra locks through the interface)
package main

import (
	"os"
	"strconv"
	"sync"
	"time"
)

var (
	sumCalls, spinCalls, lockCalls int64
	spinMin, spinMax               int64
	sink                           int
)

// sum starts with its loop; its caller counts its calls.
func sum(n int) (s int) {
	for i := 0; i < n; i++ {
		s += i
	}
	return s
}

// spin runs an LCG for iters rounds.
func spin(iters int) int {
	spinCalls++
	x := 1
	for i := 0; i < iters; i++ {
		x = x*1103515245 + 12345
	}
	return x
}

var mu sync.Mutex

// locker makes the out-of-line copy of sync.(*Mutex).Lock run.
var locker sync.Locker = &mu

func main() {
	n := 1000
	if len(os.Args) > 1 {
		v, err := strconv.Atoi(os.Args[1])
		if err != nil {
			os.Stderr.WriteString("usage: inlinedloops [N]\n")
			os.Exit(2)
		}
		n = v
	}
	for i := 0; i < n; i++ {
		sumCalls++
		sink += sum(i % 17)
		mu.Lock()
		lockCalls++
		mu.Unlock()
	}
	for i := 0; i < n/10; i++ {
		locker.Lock()
		lockCalls++
		locker.Unlock()
	}
	for i := 0; i < n/100; i++ {
		start := time.Now()
		sink += spin(1 << 20)
		ns := time.Since(start).Nanoseconds()
		if spinMin == 0 || ns < spinMin {
			spinMin = ns
		}
		if ns > spinMax {
			spinMax = ns
		}
	}
	out := ""
	for _, line := range []struct {
		key   string
		value int64
	}{
		{"sum_calls", sumCalls},
		{"spin_calls", spinCalls},
		{"spin_min_ns", spinMin},
		{"spin_max_ns", spinMax},
		{"lock_calls", lockCalls},
	} {
		out += line.key + " " + strconv.FormatInt(line.value, 10) + "\n"
	}
	os.Stdout.WriteString(out)
}
