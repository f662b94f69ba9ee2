// goshapes starts one goroutine with each shape of go statement and records, from inside
// each, the function it runs as the runtime names it (runtime.FuncForPC of its caller):
// `SHAPE <shape> goid=<goid> func=<name>`, one goroutine after another.
//
// With -reexec it first executes itself again with -short (the same process, its image loaded
// anew: a PIE lands at another address); -short exits as soon as the last goroutine recorded.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// done is closed-over by every goroutine: each signals it here once it has recorded itself.
var done = make(chan struct{})

// record prints the shape, the current goroutine's id and the function that called record.
//
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
func named(n int, s string) { record("named-with-args") }

type server struct{ id int }

//go:noinline
func (s *server) serve(n int) { record("method-call") }

//go:noinline
func (s *server) valueServe(n int) { record("method-value") }

//go:noinline
func (s server) byExpr(n int) { record("method-expression") }

type runner interface{ Run(n int) }

type job struct{ name string }

//go:noinline
func (j *job) Run(n int) { record("interface-method") }

//go:noinline
func generic[T any](v T) { record("generic") }

//go:noinline
func plain() { record("func-variable") }

func main() {
	reexec := flag.Bool("reexec", false, "execute this program again with -short first")
	short := flag.Bool("short", false, "exit as soon as the last goroutine recorded itself")
	flag.Parse()
	if *reexec {
		panic(syscall.Exec("/proc/self/exe", []string{os.Args[0], "-short"}, os.Environ()))
	}
	s := &server{id: 1}
	go named(1, "x")
	<-done
	go s.serve(2)
	<-done
	mv := s.valueServe
	go mv(3)
	<-done
	go server.byExpr(*s, 4)
	<-done
	var r runner = &job{name: "j"}
	go r.Run(5)
	<-done
	go generic[int](6)
	<-done
	fv := plain
	go fv()
	<-done
	go func() { record("literal") }()
	<-done
	go func(n int, s string) { record("literal-with-args") }(7, "y")
	<-done
	// Too costly to inline into its go wrapper: the wrapper calls it through its closure.
	go func(d time.Duration) {
		text := fmt.Sprint(d) + fmt.Sprint(2*d) + fmt.Sprint(3*d)
		if text != "" {
			record("literal-with-args-called-through-closure")
		}
	}(time.Millisecond)
	<-done
	captured := 8
	go func() { captured++; record("literal-capturing") }()
	<-done
	go func() {
		go func(n int) { record("nested-literal") }(captured)
	}()
	<-done
	fmt.Println("DONE", captured)
	if !*short {
		// Stay alive a moment (for a gotrace that reads a PIE's load bias from /proc).
		time.Sleep(300 * time.Millisecond)
	}
}
