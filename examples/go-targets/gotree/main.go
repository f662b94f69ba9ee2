// Command gotree starts a known tree of goroutines and prints its own record of them: the
// oracle of the `gotrace goroutines` tests.
//
// Every goroutine it starts learns its own goid and creation site from runtime.Stack (the
// "goroutine N [" header and the "created by" frame, both written by Go's runtime), its start
// function from runtime.Caller, and its parent from the goroutine that started it. At exit
// main prints one line per goroutine:
//
//	goroutine goid=N parent=P func=NAME creator=NAME site=FILE:LINE lifetime_ns=L window_ns=W
//
// creator and site come from the "created by" frame of runtime.Stack.
// with lifetime_ns=-1 for the goroutines still blocked when the program exits. The lifetime
// runs from just before the go statement to the goroutine's last statement; the goroutine
// was created at most window_ns after that start (the parent also reads the clock right after
// its go statement), so the creation-to-exit lifetime lies in [L-W, L] plus the time from
// that last statement to the exit itself.
//
// Flags:
//
//	-linger D wait D (a Go duration) before starting the tree, so that a tracer can attach
//	-storm N  instead of the tree, start N goroutines as fast as possible (each returns at
//	          once), wait for them and print "storm N" and the elapsed time
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// record is what one goroutine knows about itself.
type record struct {
	goid, parent int64
	function     string
	creator      string
	site         string
	lifetimeNs   int64
	windowNs     int64
}

// stamp brackets a go statement: the clock just before it and (set by the parent) just after.
type stamp struct {
	before time.Time
	after  atomic.Int64 // UnixNano, 0 until the parent has set it
}

// begin reads the clock just before a go statement.
func begin() *stamp { return &stamp{before: time.Now()} }

// started reads the clock just after the go statement.
func (s *stamp) started() { s.after.Store(time.Now().UnixNano()) }

var (
	mu      sync.Mutex
	records []record
	done    sync.WaitGroup // goroutines that end
	started sync.WaitGroup // goroutines that stay blocked, once they have recorded themselves
	never   = make(chan struct{})
	// tickParent is the parent of tick (only main starts it).
	tickParent int64
	tickStamp  *stamp
)

// self returns the calling goroutine's goid and creation site from runtime.Stack, and the
// name of the function that called self.
func self() (goid int64, site string, function string) {
	goid, site, function, _ = selfCreator()
	return goid, site, function
}

// creators records the function that created each goroutine ("created by" in runtime.Stack).
var creators sync.Map

// selfCreator is self, plus the creating function (also recorded in creators).
func selfCreator() (goid int64, site string, function string, creator string) {
	buf := make([]byte, 64<<10)
	buf = buf[:runtime.Stack(buf, false)]
	header := strings.TrimPrefix(string(buf[:bytes.IndexByte(buf, ' ')+20]), "goroutine ")
	goid, _ = strconv.ParseInt(header[:strings.IndexByte(header, ' ')], 10, 64)
	lines := strings.Split(string(buf), "\n")
	for i, line := range lines {
		if strings.HasPrefix(line, "created by ") && i+1 < len(lines) {
			loc := strings.TrimSpace(lines[i+1])
			site = loc[:strings.LastIndexByte(loc, ' ')]
			creator = strings.Fields(strings.TrimPrefix(line, "created by "))[0]
		}
	}
	creators.Store(goid, creator)
	pc, _, _, _ := runtime.Caller(2)
	return goid, site, runtime.FuncForPC(pc).Name(), creator
}

// finish records the calling goroutine (started at st by parent); lifetime -1: alive.
func finish(goid int64, site, function string, parent int64, st *stamp, alive bool) {
	now := time.Now()
	lifetime := now.Sub(st.before).Nanoseconds()
	window := lifetime
	if after := st.after.Load(); after != 0 {
		window = after - st.before.UnixNano()
	}
	if alive {
		lifetime = -1
	}
	mu.Lock()
	creator, _ := creators.Load(goid)
	records = append(records, record{goid, parent, function, creator.(string), site, lifetime, window})
	mu.Unlock()
}

// leaf sleeps for d and ends.
//
//go:noinline
func leaf(parent int64, st *stamp, d time.Duration) {
	goid, site, function := self()
	defer done.Done()
	time.Sleep(d)
	finish(goid, site, function, parent, st, false)
}

// server has a method started as a goroutine.
type server struct{ delay time.Duration }

//go:noinline
func (s *server) handle(parent int64, st *stamp) {
	goid, site, function := self()
	defer done.Done()
	time.Sleep(s.delay)
	finish(goid, site, function, parent, st, false)
}

// tick takes no arguments, so its go statement needs no wrapper closure.
//
//go:noinline
func tick() {
	goid, site, function := self()
	defer done.Done()
	time.Sleep(15 * time.Millisecond)
	finish(goid, site, function, tickParent, tickStamp, false)
}

// blocker records itself and blocks until the program exits.
//
//go:noinline
func blocker(parent int64, st *stamp) {
	goid, site, function := self()
	finish(goid, site, function, parent, st, true)
	started.Done()
	<-never
}

func main() {
	storm := flag.Int("storm", 0, "start this many goroutines as fast as possible")
	linger := flag.Duration("linger", 0, "wait this long before starting the tree")
	flag.Parse()
	time.Sleep(*linger)
	if *storm > 0 {
		runStorm(*storm)
		return
	}
	mainGoid, _, _ := self()
	fmt.Printf("main goid=%d\n", mainGoid)

	for i := 0; i < 3; i++ {
		done.Add(1)
		st := begin()
		go leaf(mainGoid, st, time.Duration(5+10*i)*time.Millisecond)
		st.started()
	}
	srv := &server{delay: 20 * time.Millisecond}
	for i := 0; i < 2; i++ {
		done.Add(1)
		st := begin()
		go srv.handle(mainGoid, st)
		st.started()
	}
	done.Add(1)
	tickParent, tickStamp = mainGoid, begin()
	go tick()
	tickStamp.started()

	done.Add(1)
	closureStamp := begin()
	go func() {
		goid, site, function := self()
		defer done.Done()
		for i := 0; i < 2; i++ {
			done.Add(1)
			st := begin()
			go leaf(goid, st, 30*time.Millisecond)
			st.started()
		}
		time.Sleep(40 * time.Millisecond)
		finish(goid, site, function, mainGoid, closureStamp, false)
	}()
	closureStamp.started()

	for i := 0; i < 2; i++ {
		started.Add(1)
		st := begin()
		go blocker(mainGoid, st)
		st.started()
	}

	started.Wait()
	done.Wait()
	// Let the last goroutines leave (goexit) before printing and exiting.
	time.Sleep(100 * time.Millisecond)
	sort.Slice(records, func(i, j int) bool { return records[i].goid < records[j].goid })
	for _, r := range records {
		fmt.Printf("goroutine goid=%d parent=%d func=%s creator=%s site=%s lifetime_ns=%d window_ns=%d\n",
			r.goid, r.parent, r.function, r.creator, r.site, r.lifetimeNs, r.windowNs)
	}
	os.Stdout.Sync()
}

// stormWorker does nothing.
//
//go:noinline
func stormWorker(wg *sync.WaitGroup) {
	wg.Done()
}

// runStorm starts n goroutines as fast as one goroutine can.
func runStorm(n int) {
	var wg sync.WaitGroup
	wg.Add(n)
	begin := time.Now()
	for i := 0; i < n; i++ {
		go stormWorker(&wg)
	}
	wg.Wait()
	elapsed := time.Since(begin)
	time.Sleep(100 * time.Millisecond)
	fmt.Printf("storm %d\nelapsed_ns %d\nper_second %.0f\n", n, elapsed.Nanoseconds(),
		float64(n)/elapsed.Seconds())
}
