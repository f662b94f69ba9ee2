// breakdown: the target of tests/breakdown.rs. Each call of main.work spends a known time on
// the CPU, in time.Sleep, in a channel receive, waiting for a sync.Mutex a helper holds, and in
// a blocking read(2) of a pipe a helper writes to, and prints its own record of every phase:
// wall time (CLOCK_MONOTONIC), the thread's CPU time (CLOCK_THREAD_CPUTIME_ID) and the
// thread's run delay (/proc/thread-self/schedstat: time runnable but not running), plus the
// instant the helper readied it (just before its send, unlock or write). The calling goroutine
// is locked to its thread, so the thread's clocks are the goroutine's. -compete N adds N
// CPU-bound goroutines (runnable time).
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

const clockThreadCPUTime = 3 // CLOCK_THREAD_CPUTIME_ID

var (
	phase    = flag.Duration("phase", 4*time.Millisecond, "time of each phase")
	calls    = flag.Int("calls", 3, "calls of main.work")
	compete  = flag.Int("compete", 0, "CPU-bound goroutines running alongside")
	pingpong = flag.Int("pingpong", 0, "instead: this many channel round trips between two goroutines (benches/breakdown.rs), then per_second")
	start    = time.Now()
	schedFd  int
	mu       sync.Mutex
	toHelper = make(chan int, 1)
	fromHelp = make(chan int)
	readyAt  = make(chan time.Duration, 3)
	doneAt   = make(chan time.Duration, 3)
	pipeR    int
	pipeW    int
	sink     uint64
)

// now is CLOCK_MONOTONIC since start (time.Since is monotonic).
func now() time.Duration { return time.Since(start) }

// threadCPU is this thread's CPU time, by a raw system call (no scheduler transition).
func threadCPU() time.Duration {
	var ts syscall.Timespec
	syscall.RawSyscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTime, uintptr(unsafe.Pointer(&ts)), 0)
	return time.Duration(ts.Nano())
}

// runDelay is this thread's time spent runnable but waiting for a CPU, by a raw pread.
func runDelay() time.Duration {
	var buf [128]byte
	n, _, errno := syscall.RawSyscall6(syscall.SYS_PREAD64, uintptr(schedFd), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), 0, 0, 0)
	if errno != 0 {
		panic(errno)
	}
	var run, delay int64
	fmt.Sscan(string(buf[:n]), &run, &delay)
	return time.Duration(delay)
}

type mark struct{ wall, cpu, delay time.Duration }

func measure() mark { return mark{now(), threadCPU(), runDelay()} }

// phases is what one call of work measured: the marks between its phases and the instants
// the helper began and ended readying it.
type phases struct {
	marks   [6]mark
	readied [5]time.Duration
	done    [5]time.Duration
}

var phaseNames = [5]string{"cpu", "sleep", "chan", "mutex", "read"}

// String is the call's record: each phase's wall, CPU and run-delay times and when (from the
// phase's start) its readying began and ended, then the whole call's.
func (p *phases) String() string {
	line := ""
	for i, name := range phaseNames {
		from, to := p.marks[i], p.marks[i+1]
		line += fmt.Sprintf(" %s_wall_ns=%d %s_cpu_ns=%d %s_delay_ns=%d %s_readied_ns=%d %s_done_ns=%d",
			name, to.wall-from.wall, name, to.cpu-from.cpu, name, to.delay-from.delay,
			name, p.readied[i]-from.wall, name, p.done[i]-from.wall)
	}
	first, last := p.marks[0], p.marks[5]
	return line + fmt.Sprintf(" wall_ns=%d cpu_ns=%d delay_ns=%d", last.wall-first.wall, last.cpu-first.cpu, last.delay-first.delay)
}

// helper readies work's waits: a channel send, a mutex it holds, a pipe write, each one
// phase after it is asked, each recorded just before (readyAt) and just after (doneAt): the
// wait ends between the two instants (the helper's thread may lose its CPU between them).
func helper() {
	for range toHelper {
		time.Sleep(*phase)
		mu.Lock()
		readyAt <- now()
		fromHelp <- 1
		doneAt <- now()
		time.Sleep(*phase)
		readyAt <- now()
		mu.Unlock()
		doneAt <- now()
		time.Sleep(*phase)
		readyAt <- now()
		syscall.Write(pipeW, []byte{1})
		doneAt <- now()
	}
}

//go:noinline
func spin(d time.Duration) {
	for t := threadCPU(); threadCPU()-t < d; {
		for i := 0; i < 1000; i++ {
			sink += uint64(i) * sink
		}
	}
}

// work is the traced call: every phase between two marks, the first and last mark its first
// and last statements.
//
//go:noinline
func work(p *phases) {
	p.marks[0] = measure()
	spin(*phase)
	p.marks[1] = measure()
	time.Sleep(*phase)
	p.marks[2] = measure()
	toHelper <- 1
	<-fromHelp
	p.marks[3] = measure()
	mu.Lock()
	mu.Unlock()
	p.marks[4] = measure()
	var b [1]byte
	syscall.Read(pipeR, b[:])
	p.marks[5] = measure()
}

// roundtrip sends to the echoing goroutine and waits for its answer: four scheduler
// transitions at least.
//
//go:noinline
func roundtrip(ping, pong chan int, i int) int {
	ping <- i
	return <-pong
}

// pingPong runs n round trips after a pause for the tracer to attach and prints their rate.
func pingPong(n int) {
	ping, pong := make(chan int), make(chan int)
	go func() {
		for v := range ping {
			pong <- v
		}
	}()
	time.Sleep(200 * time.Millisecond)
	begin := time.Now()
	for i := 0; i < n; i++ {
		roundtrip(ping, pong, i)
	}
	fmt.Printf("per_second %.0f\n", float64(n)/time.Since(begin).Seconds())
}

func main() {
	flag.Parse()
	if *pingpong > 0 {
		pingPong(*pingpong)
		return
	}
	var fds [2]int
	if err := syscall.Pipe(fds[:]); err != nil {
		panic(err)
	}
	pipeR, pipeW = fds[0], fds[1]
	for i := 0; i < *compete; i++ {
		go func() {
			for {
				sink++
			}
		}()
	}
	go helper()
	done := make(chan bool)
	go func() {
		runtime.LockOSThread()
		fd, err := syscall.Open("/proc/thread-self/schedstat", syscall.O_RDONLY, 0)
		if err != nil {
			panic(err)
		}
		schedFd = fd
		// Wait for the tracer to attach.
		time.Sleep(200 * time.Millisecond)
		records := make([]phases, *calls)
		for i := range records {
			work(&records[i])
			p := &records[i]
			p.readied = [5]time.Duration{p.marks[0].wall, p.marks[1].wall + *phase, <-readyAt, <-readyAt, <-readyAt}
			p.done = [5]time.Duration{p.readied[0], p.readied[1], <-doneAt, <-doneAt, <-doneAt}
		}
		for i := range records {
			fmt.Printf("call i=%d%s\n", i, &records[i])
		}
		done <- true
	}()
	<-done
	os.Exit(0)
}
