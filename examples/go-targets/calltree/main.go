// Command calltree makes known call trees and prints its own record of them: the oracle of the
// `gotrace graph` tests. Each call of main.root(kind) runs on a goroutine of its own and builds
// one shape of tree; every function of package main calls rec.Enter first, which records the
// call from runtime.Callers (package rec). At exit it prints one line per root call:
//
//	tree goid=N ns=D main.root{main.a{main.b{} ...} ...}
//
// with the root call's goroutine and duration (from root's own clock), then `roots N`. A slow
// root (kind 6) prints `sleeping` as it starts to sleep.
//
// The shapes (kind): 0 fixed fan-out and depth, 1 recursion, 2 a callee that panics and is
// recovered by its caller's deferred closure (which runs beneath the panicking call), 3 a
// goroutine started inside root (its calls are not in root's tree), 4 methods through an
// interface and closures, 5 stack growth (deep recursion with 2 KiB frames), 6 a slow root
// (sleeps -slow), 7 a callee that ends the goroutine with runtime.Goexit (rec.Goexit records
// root's tree, timed from root's rec.Enter, and a line `goexit goid=N open=main.root,main.quit`
// saying which calls were still running; no function of package main runs after it). main.leaf runs at several depths in most shapes.
//
// Flags:
//
//	-linger D  wait D (a Go duration) before the first root call, so that a tracer can attach
//	-rounds N  root calls of each kind (default 2)
//	-par N     root calls running at once (default 2)
//	-slow D    how long kind 6 sleeps (default 20ms)
package main

import (
	"flag"
	"fmt"
	"runtime"
	"sync"
	"time"

	"example/rec"
)

const kinds = 8

var slow = flag.Duration("slow", 20*time.Millisecond, "how long kind 6 sleeps")

//go:noinline
func root(kind int) {
	start := time.Now()
	rec.Enter()
	if kind == 7 {
		leaf()
		quit()
	}
	switch kind {
	case 0:
		for i := 0; i < 3; i++ {
			a()
		}
		leaf()
	case 1:
		recurse(4)
	case 2:
		safe()
		leaf()
	case 3:
		done := make(chan struct{})
		go worker(done)
		<-done
		leaf()
	case 4:
		var w Worker = &T{n: 2}
		w.Work()
		T{n: 1}.Val()
	case 5:
		grow(24)
	case 6:
		fmt.Println("sleeping")
		time.Sleep(*slow)
		leaf()
	}
	rec.Done(start)
}

//go:noinline
func a() {
	rec.Enter()
	b()
	b()
}

//go:noinline
func b() {
	rec.Enter()
	leaf()
}

//go:noinline
func leaf() {
	rec.Enter()
}

//go:noinline
func recurse(n int) {
	rec.Enter()
	if n == 0 {
		leaf()
		return
	}
	recurse(n - 1)
}

//go:noinline
func safe() {
	rec.Enter()
	defer func() {
		rec.Enter()
		if recover() == nil {
			panic("boom did not panic")
		}
	}()
	boom(1)
}

// boom panics when n > 0 (and has a RET, so a tracer can probe its return).
//
//go:noinline
func boom(n int) int {
	rec.Enter()
	leaf()
	if n > 0 {
		panic("boom")
	}
	return n
}

// quit ends its goroutine: runtime.Goexit unwinds it and root without a RET.
//
//go:noinline
func quit() {
	rec.Enter()
	leaf()
	rec.Goexit()
	runtime.Goexit()
}

//go:noinline
func worker(done chan struct{}) {
	rec.Enter()
	leaf()
	close(done)
}

// Worker is called through an interface, so its method is never inlined into root.
type Worker interface{ Work() }

// T has a pointer method (through Worker) and a value method (called directly).
type T struct{ n int }

//go:noinline
func (t *T) Work() {
	rec.Enter()
	for i := 0; i < t.n; i++ {
		apply(func() {
			rec.Enter()
			leaf()
		})
	}
}

//go:noinline
func (t T) Val() int {
	rec.Enter()
	leaf()
	return t.n
}

//go:noinline
func apply(f func()) {
	rec.Enter()
	f()
}

//go:noinline
func grow(n int) {
	rec.Enter()
	var buf [2048]byte
	buf[1024] = byte(n)
	rec.Keep(buf[:])
	if n > 0 {
		grow(n - 1)
	}
}

func main() {
	linger := flag.Duration("linger", 0, "wait this long before the first root call")
	rounds := flag.Int("rounds", 2, "root calls of each kind")
	par := flag.Int("par", 2, "root calls running at once")
	flag.Parse()
	time.Sleep(*linger)
	slots := make(chan struct{}, *par)
	var wg sync.WaitGroup
	for r := 0; r < *rounds; r++ {
		for kind := 0; kind < kinds; kind++ {
			slots <- struct{}{}
			wg.Add(1)
			kind := kind // a variable per call before Go 1.22
			go rec.Run(func() { root(kind) }, &wg, slots)
		}
	}
	wg.Wait()
	for _, line := range rec.Exits() {
		fmt.Println(line)
	}
	lines := rec.Lines()
	for _, line := range lines {
		fmt.Println(line)
	}
	fmt.Println("roots", len(lines))
}
