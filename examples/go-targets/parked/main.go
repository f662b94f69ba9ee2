// Command parked leaves goroutines parked for known reasons (channel receive and send,
// select, sleep, a held sync.Mutex, a WaitGroup, a sync.Cond, a pipe read, a nil channel, an
// empty select, and three leaks at one site), waits until the runtime's own record shows each
// one parked, runs a garbage collection (which stamps every parked goroutine's waitsince),
// and prints that record: runtime.Stack(buf, true) between the lines "DUMP BEGIN" and
// "DUMP END". It then stays as it is until killed. The dumping goroutine exits after the
// dump; main stays parked in a channel receive.
//
// Automatic collections are off; one runtime.GC() runs before any goroutine starts and one
// after all are parked. The second stamps each parked goroutine's waitsince with the start of
// the first one's mark termination (mgcmark.go: work.tstart, set by gcMark), so each
// waitsince lies between the runtime.nanotime readings printed as "GC1 BEFORE" and
// "GC1 AFTER".
//
// The oracle of tests/goroutines_blocked.rs: the dump is what Go itself says is parked, why,
// and in which frames.
package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"
	_ "unsafe" // go:linkname
)

//go:linkname nanotime runtime.nanotime
func nanotime() int64

// started counts the goroutines below; with main, all of them must be parked before the dump.
const started = 13

//go:noinline
func leak(ch chan int) {
	ch <- 1
}

func main() {
	debug.SetGCPercent(-1)
	before := nanotime()
	runtime.GC()
	fmt.Printf("GC1 BEFORE %d\nGC1 AFTER %d\n", before, nanotime())
	var mu sync.Mutex
	mu.Lock()
	cond := sync.NewCond(&sync.Mutex{})
	recv, send, never := make(chan int), make(chan int), make(chan int)
	either, or := make(chan int), make(chan int)
	reader, writer, err := os.Pipe()
	if err != nil {
		panic(err)
	}
	defer writer.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { <-recv }()
	go func() { send <- 1 }()
	go func() {
		select {
		case <-either:
		case or <- 1:
		}
	}()
	go func() { time.Sleep(time.Hour) }()
	go func() { mu.Lock() }()
	go func() { wg.Wait() }()
	go func() {
		cond.L.Lock()
		cond.Wait()
	}()
	go func() {
		buf := make([]byte, 1)
		reader.Read(buf)
	}()
	go func() {
		var nilChan chan int
		<-nilChan
	}()
	go func() { select {} }()
	leaks := make(chan int)
	for i := 0; i < 3; i++ {
		go func() { leak(leaks) }()
	}
	go dump()
	<-never
}

// dump waits until every other goroutine is parked, collects, and prints the runtime's dump.
func dump() {
	buf := make([]byte, 1<<20)
	for parked(string(buf[:runtime.Stack(buf, true)])) < started+1 {
		time.Sleep(time.Millisecond)
	}
	runtime.GC()
	n := runtime.Stack(buf, true)
	out := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(out, "DUMP BEGIN\n%s\nDUMP END\n", buf[:n])
	out.Flush()
}

// parked counts the goroutines of a dump whose state is a wait reason.
func parked(dump string) int {
	n := 0
	for _, line := range strings.Split(dump, "\n") {
		if !strings.HasPrefix(line, "goroutine ") || !strings.HasSuffix(line, "]:") {
			continue
		}
		state := line[strings.Index(line, "[")+1 : len(line)-2]
		state = strings.Split(state, ",")[0]
		switch state {
		case "running", "runnable", "syscall", "preempted", "copystack", "idle", "dead":
		default:
			n++
		}
	}
	return n
}
