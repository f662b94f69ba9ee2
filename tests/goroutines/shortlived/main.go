// shortlived first executes itself again (same process, the image loaded anew: a PIE lands at
// another address), then starts goroutines of a few go-statement shapes, each recording the
// function it runs as the runtime names it (runtime.FuncForPC of its caller) as
// `SHAPE <shape> goid=<goid> func=<name>`, and exits as soon as the last one has. A target
// that may be gone before gotrace reads its events, and whose load bias changed on the way
// (tests/goroutines.rs builds it as a PIE).
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

var done = make(chan struct{})

//go:noinline
func record(shape string) {
	pc, _, _, _ := runtime.Caller(1)
	buf := make([]byte, 64)
	header := strings.TrimPrefix(string(buf[:runtime.Stack(buf, false)]), "goroutine ")
	goid, err := strconv.Atoi(header[:strings.IndexByte(header, ' ')])
	if err != nil {
		panic(err)
	}
	fmt.Printf("SHAPE %s goid=%d func=%s\n", shape, goid, runtime.FuncForPC(pc).Name())
	done <- struct{}{}
}

//go:noinline
func named(n int) { record("named-with-args") }

type runner interface{ Run(n int) }

type job struct{ name string }

//go:noinline
func (j *job) Run(n int) { record("interface-method") }

func main() {
	if len(os.Args) == 1 {
		err := syscall.Exec("/proc/self/exe", []string{os.Args[0], "again"}, os.Environ())
		panic(err)
	}
	go named(1)
	<-done
	var r runner = &job{name: "j"}
	go r.Run(2)
	<-done
	go func() { record("literal") }()
	<-done
	go func(d time.Duration) {
		if fmt.Sprint(d)+fmt.Sprint(2*d)+fmt.Sprint(3*d) != "" {
			record("literal-called-through-closure")
		}
	}(time.Millisecond)
	<-done
}
