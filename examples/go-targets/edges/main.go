// Command edges is the oracle of gotrace's exact edges (attach and detach while the program
// runs at full rate): 4 worker goroutines call main.work(worker, seq) back to back, seq
// counting 1, 2, 3... per worker, and each call records its own start (just before the call)
// and end (just after it) on CLOCK_MONOTONIC, the clock of gotrace's ts_ns (runtime.nanotime
// reads CLOCK_MONOTONIC through the vDSO on linux/amd64 and linux/386).
//
// With -spawn, each iteration starts a goroutine instead (go child(...)) and waits for it:
// the record is then the instant before and after the go statement (runtime.newproc1 runs
// between them).
//
// It stops at SIGINT/SIGTERM (or after -secs), lets every worker finish its call, and writes
// its record to -out: per worker a little-endian uint64 count n, then n pairs of int64
// (start_ns, end_ns), the pair at index i being seq i+1. It prints "ready" once the workers
// run and "calls N" at exit.
package main

import (
	"bufio"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	_ "unsafe" // go:linkname
)

//go:linkname nanotime runtime.nanotime
func nanotime() int64

// Workers calling main.work at once.
const workers = 4

var sink int64

// work spins for about a microsecond; its arguments are the worker and its call's sequence
// number, which gotrace args reports.
//
//go:noinline
func work(worker, seq int) int {
	acc := worker*1_000_003 + seq
	for i := 0; i < 300; i++ {
		acc = acc*31 + (i ^ (acc >> 7))
	}
	return acc
}

// child runs as a new goroutine in -spawn mode.
//
//go:noinline
func child(done chan<- int, worker, seq int) {
	done <- work(worker, seq)
}

func main() {
	out := flag.String("out", "", "write the record here at exit")
	secs := flag.Float64("secs", 0, "stop after this many seconds (0: at SIGINT/SIGTERM)")
	spawn := flag.Bool("spawn", false, "start a goroutine per iteration instead of calling work")
	flag.Parse()

	var stop int32
	records := make([][]int64, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rec := make([]int64, 0, 1<<20)
			done := make(chan int)
			var local int64
			for seq := 1; atomic.LoadInt32(&stop) == 0; seq++ {
				start := nanotime()
				if *spawn {
					go child(done, w, seq)
					end := nanotime()
					local += int64(<-done)
					rec = append(rec, start, end)
				} else {
					local += int64(work(w, seq))
					rec = append(rec, start, nanotime())
				}
			}
			atomic.AddInt64(&sink, local)
			records[w] = rec
		}(w)
	}
	fmt.Println("ready")

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	if *secs > 0 {
		select {
		case <-signals:
		case <-time.After(time.Duration(*secs * float64(time.Second))):
		}
	} else {
		<-signals
	}
	atomic.StoreInt32(&stop, 1)
	wg.Wait()

	total := 0
	for _, rec := range records {
		total += len(rec) / 2
	}
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			fmt.Fprintln(os.Stderr, "edges:", err)
			os.Exit(1)
		}
		buf := bufio.NewWriterSize(f, 1<<20)
		for _, rec := range records {
			binary.Write(buf, binary.LittleEndian, uint64(len(rec)/2))
			binary.Write(buf, binary.LittleEndian, rec)
		}
		if err := buf.Flush(); err != nil {
			fmt.Fprintln(os.Stderr, "edges:", err)
			os.Exit(1)
		}
		f.Close()
	}
	fmt.Printf("calls %d\n", total)
}
