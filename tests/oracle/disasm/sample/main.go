// Sample program for gotrace's instruction-decoder tests: one function per stack-check
// prologue shape (no check, small, medium and huge frames), several RETs, no RET at all,
// closures, methods, generics, defer and recursion. Its output is ignored; only its machine
// code matters, so every function is kept out of line.
package main

import (
	"fmt"
	"os"
)

// leafAdd is frameless: no stack check at all.
//
//go:noinline
func leafAdd(a, b int) int { return a + b }

// smallFrame has a small frame: the check compares SP directly.
//
//go:noinline
func smallFrame(n int) int {
	var buf [4]int
	for i := range buf {
		buf[i] = leafAdd(n, i)
	}
	return buf[0] + buf[3]
}

// mediumFrame needs more than StackSmall bytes: the check subtracts the frame size first.
//
//go:noinline
func mediumFrame(n int) int {
	var buf [256]int
	for i := range buf {
		buf[i] = leafAdd(n, i)
	}
	return buf[n%len(buf)]
}

// hugeFrame exceeds StackBig: the check guards against SP wrap-around.
//
//go:noinline
func hugeFrame(n int) int {
	var buf [16384]int
	for i := range buf {
		buf[i] = leafAdd(n, i)
	}
	return buf[n%len(buf)]
}

// manyReturns has one RET per switch arm.
//
//go:noinline
func manyReturns(n int) string {
	switch n {
	case 0:
		return "zero"
	case 1:
		return fmt.Sprint("one", n)
	case 2:
		return fmt.Sprint("two", n, n)
	}
	if n < 0 {
		return fmt.Sprint("negative", -n)
	}
	return "many"
}

// neverReturns ends in a panic: no RET instruction.
//
//go:noinline
func neverReturns(msg string) {
	panic(msg + "!")
}

// spin loops forever without returning.
//
//go:noinline
func spin(ch chan int) {
	for {
		ch <- leafAdd(1, 2)
	}
}

// nosplitCaller calls without a stack check.
//
//go:nosplit
//go:noinline
func nosplitCaller(n int) int {
	return leafAdd(n, n) * 2
}

// fib recurses, so its stack grows through morestack.
//
//go:noinline
func fib(n int) int {
	if n < 2 {
		return n
	}
	return fib(n-1) + fib(n-2)
}

type counter struct{ hits [8]int }

// bump is a pointer method.
//
//go:noinline
func (c *counter) bump(i int) int {
	c.hits[i%8]++
	return c.hits[i%8]
}

// total is a value method with a large receiver.
//
//go:noinline
func (c counter) total() (sum int) {
	for _, h := range c.hits {
		sum += h
	}
	return sum
}

// mapSlice is generic.
//
//go:noinline
func mapSlice[T, U any](in []T, f func(T) U) []U {
	out := make([]U, 0, len(in))
	for _, v := range in {
		out = append(out, f(v))
	}
	return out
}

// withDefer runs a deferred closure, which adds a second return path.
//
//go:noinline
func withDefer(n int) (res int) {
	defer func() {
		if r := recover(); r != nil {
			res = -1
		}
	}()
	if n == 13 {
		neverReturns("unlucky")
	}
	return smallFrame(n)
}

// manyArgs passes more arguments than there are argument registers.
//
//go:noinline
func manyArgs(a, b, c, d, e, f, g, h, i, j, k, l int, s string, x float64) (int, float64) {
	return a + b + c + d + e + f + g + h + i + j + k + l + len(s), x * 2
}

func main() {
	c := &counter{}
	done := make(chan int)
	ch := make(chan int)
	go spin(ch)
	go func() {
		sum := 0
		for i := 0; i < 10; i++ {
			sum += fib(15) + c.bump(i)
		}
		done <- sum + <-ch
	}()
	words := mapSlice([]int{1, 2, 3}, manyReturns)
	lens := mapSlice(words, func(s string) int { return len(s) })
	r, x := manyArgs(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, "s", 1.5)
	fmt.Println(<-done, smallFrame(1), mediumFrame(2), hugeFrame(3), c.total(),
		nosplitCaller(4), withDefer(13), withDefer(2), lens, r, x, len(os.Args))
}
