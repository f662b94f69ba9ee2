// Package rec is how examples/go-targets/calltree records its own call trees: each function of
// package main calls Enter first, which reads the goroutine's stack with runtime.Callers and
// hangs a node for its caller under the call that is running it. The functions of this package
// are not in package main, so a tracer told to trace 'main.*' does not see them.
package rec

import (
	"bytes"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Root is the function whose calls start trees.
const Root = "main.root"

// node is one call in a recorded tree.
type node struct {
	name     string
	children []*node
}

var (
	mu    sync.Mutex
	open  = map[int64]*node{}     // the root call running on each goroutine
	began = map[int64]time.Time{} // when it called Enter
	lines []string
	exits []string
	sink  byte
)

// goid is the current goroutine's id, from the "goroutine N [" header of runtime.Stack.
func goid() int64 {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	buf = bytes.TrimPrefix(buf, []byte("goroutine "))
	id, err := strconv.ParseInt(string(buf[:bytes.IndexByte(buf, ' ')]), 10, 64)
	if err != nil {
		panic(err)
	}
	return id
}

// chain is the main.* functions on the stack of Enter's caller, outermost first, from the
// outermost call of Root; nil when Root is not on the stack.
func chain() []string {
	pcs := make([]uintptr, 1024)
	n := runtime.Callers(3, pcs)
	frames := runtime.CallersFrames(pcs[:n])
	var names []string
	for {
		f, more := frames.Next()
		if strings.HasPrefix(f.Function, "main.") {
			names = append(names, f.Function)
		}
		if !more {
			break
		}
	}
	for i, j := 0, len(names)-1; i < j; i, j = i+1, j-1 {
		names[i], names[j] = names[j], names[i]
	}
	for i, name := range names {
		if name == Root {
			return names[i:]
		}
	}
	return nil
}

// Enter records a call of its caller under the root call running on this goroutine.
//
//go:noinline
func Enter() {
	path := chain()
	if path == nil {
		return
	}
	id := goid()
	mu.Lock()
	defer mu.Unlock()
	if len(path) == 1 {
		open[id] = &node{name: path[0]}
		began[id] = time.Now()
		return
	}
	n := open[id]
	for _, name := range path[1 : len(path)-1] {
		last := n.children[len(n.children)-1]
		if last.name != name {
			panic(fmt.Sprintf("recorded tree out of step: %s is not %s", last.name, name))
		}
		n = last
	}
	n.children = append(n.children, &node{name: path[len(path)-1]})
}

// Done ends the root call running on this goroutine, begun at start, and records its tree.
//
//go:noinline
func Done(start time.Time) {
	elapsed := time.Since(start)
	id := goid()
	mu.Lock()
	defer mu.Unlock()
	done(id, elapsed)
}

// done records the tree of goroutine id's root call, which lasted elapsed (mu held).
func done(id int64, elapsed time.Duration) {
	lines = append(lines, fmt.Sprintf("tree goid=%d ns=%d %s", id, elapsed.Nanoseconds(), open[id].shape()))
	delete(open, id)
	delete(began, id)
}

// Goexit is called just before its caller runs runtime.Goexit, which ends the root call
// without a return: it records the root call's tree (timed from its Enter) and, as
// `goexit goid=N open=NAMES`, the calls of package main on the stack from the root call's
// outermost (comma-separated, outermost first): the calls Goexit unwinds.
//
//go:noinline
func Goexit() {
	path := strings.Join(chain(), ",")
	id := goid()
	mu.Lock()
	defer mu.Unlock()
	done(id, time.Since(began[id]))
	exits = append(exits, fmt.Sprintf("goexit goid=%d open=%s", id, path))
}

// Exits is every line Goexit recorded.
func Exits() []string {
	mu.Lock()
	defer mu.Unlock()
	return append([]string(nil), exits...)
}

// Run calls f, then marks the call done in wg and frees its token in slots, also when f ends
// the goroutine (runtime.Goexit). Its deferred calls are not in package main, so a tracer of
// 'main.*' does not see them run beneath a call that Goexit unwinds.
func Run(f func(), wg *sync.WaitGroup, slots chan struct{}) {
	defer wg.Done()
	defer func() { <-slots }()
	f()
}

// shape is `name{child child ...}` (names may hold parentheses, never braces).
func (n *node) shape() string {
	kids := make([]string, len(n.children))
	for i, c := range n.children {
		kids[i] = c.shape()
	}
	return n.name + "{" + strings.Join(kids, " ") + "}"
}

// Keep makes a buffer live, so that a frame really holds it.
//
//go:noinline
func Keep(buf []byte) { sink += buf[len(buf)/2] }

// Lines is every recorded tree, in the order the root calls ended.
func Lines() []string {
	mu.Lock()
	defer mu.Unlock()
	return append([]string(nil), lines...)
}
