// Command counter calls main.doWork in a loop at a fixed rate and counts its own calls.
//
// It is gotrace's demo target and the exact-count target of the funclat tests: on exit (after
// -n calls, or on SIGINT/SIGTERM) it prints "calls N", the number of doWork calls that
// completed, so a tracer's count can be compared with the program's own. A signal stops the
// loop between two calls, so every call that entered doWork also returned and was counted.
//
// Flags:
//
//	-rate N   calls per second (default 1000; 0 = as fast as possible)
//	-n N      stop after N calls and exit 0 (default 0 = run until signalled)
//	-wait     wait for a line on stdin before the first call
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"
)

// calls counts completed doWork calls.
var calls int64

// sink keeps doWork's results alive so the compiler cannot drop the calls.
var sink int

// doWork does a little arithmetic (about 1-5 µs) and returns a value derived from n.
//
//go:noinline
func doWork(n int) int {
	acc := n
	for i := 0; i < 1000; i++ {
		acc = acc*31 + (i ^ (acc >> 7))
	}
	return acc
}

func main() {
	rate := flag.Int("rate", 1000, "calls per second (0 = as fast as possible)")
	limit := flag.Int64("n", 0, "stop after this many calls (0 = run until SIGINT/SIGTERM)")
	wait := flag.Bool("wait", false, "wait for a line on stdin before starting")
	flag.Parse()
	if *rate < 0 || *limit < 0 {
		fmt.Fprintln(os.Stderr, "counter: -rate and -n must be >= 0")
		os.Exit(2)
	}

	var stop int32
	stopped := make(chan struct{})
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-signals
		atomic.StoreInt32(&stop, 1)
		close(stopped)
	}()

	if *wait {
		if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
			fmt.Fprintln(os.Stderr, "counter: reading stdin:", err)
			os.Exit(2)
		}
	}

	run(*rate, *limit, &stop, stopped)
	fmt.Printf("calls %d\n", atomic.LoadInt64(&calls))
}

// run calls doWork until limit calls are done (limit 0: no limit) or stop is set, pacing the
// calls to rate per second (rate 0: no pacing).
func run(rate int, limit int64, stop *int32, stopped <-chan struct{}) {
	start := time.Now()
	var interval time.Duration
	if rate > 0 {
		interval = time.Second / time.Duration(rate)
	}
	for i := int64(0); limit == 0 || i < limit; i++ {
		if atomic.LoadInt32(stop) != 0 {
			return
		}
		if interval > 0 {
			// Sleep until this call's slot; at high rates several calls share one sleep.
			if ahead := time.Until(start.Add(time.Duration(i) * interval)); ahead > 0 {
				select {
				case <-time.After(ahead):
				case <-stopped:
					return
				}
			}
		}
		sink += doWork(int(i))
		atomic.AddInt64(&calls, 1)
	}
}
