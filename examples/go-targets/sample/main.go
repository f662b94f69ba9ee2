// Command sample holds many kinds of Go functions for the `gotrace list` tests: value and
// pointer receivers, closures, generic functions, a function that always panics (no RET), many
// arguments, recursion, a large and a huge stack frame, and globals of several types. It runs
// briefly and prints a deterministic record of what it computed.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// Config is the type of the struct global.
type Config struct {
	Name    string
	Retries int
	Ratio   float64
	Enabled bool
}

// counter is an int64 global.
var counter int64

// greeting is a string global.
var greeting = "hello, gotrace"

// config is a struct global.
var config = Config{Name: "sample", Retries: 3, Ratio: 0.5, Enabled: true}

// Point has methods with a value receiver and with a pointer receiver.
type Point struct {
	X, Y int
}

// Sum has a value receiver.
//
//go:noinline
func (p Point) Sum() int {
	return p.X + p.Y
}

// Scale has a pointer receiver.
//
//go:noinline
func (p *Point) Scale(k int) {
	p.X *= k
	p.Y *= k
}

// Shape is implemented by Point, so Sum is also reachable through an interface.
type Shape interface {
	Sum() int
}

// Number is the constraint of the generic functions.
type Number interface {
	~int | ~int64 | ~float64
}

// SumOf is a generic function (one shape instantiation per underlying kind).
//
//go:noinline
func SumOf[T Number](values []T) T {
	var total T
	for _, v := range values {
		total += v
	}
	return total
}

// Pair is a generic type with a method.
type Pair[K comparable, V any] struct {
	Key   K
	Value V
}

// String formats the pair.
//
//go:noinline
func (p Pair[K, V]) String() string {
	return fmt.Sprintf("%v=%v", p.Key, p.Value)
}

// alwaysPanics never returns normally: its code ends in a call to runtime.gopanic, no RET.
//
//go:noinline
func alwaysPanics(reason string) {
	panic(errors.New(reason))
}

// recovered calls alwaysPanics and turns the panic into a string.
//
//go:noinline
func recovered() (msg string) {
	defer func() {
		if r := recover(); r != nil {
			msg = fmt.Sprint(r)
		}
	}()
	alwaysPanics("deliberate panic")
	return "unreachable"
}

// manyArgs takes more arguments than there are integer argument registers.
//
//go:noinline
func manyArgs(a, b, c, d, e, f, g, h, i, j, k int, s string, x float64, flag bool, p Point) (int, string, error) {
	total := a + b + c + d + e + f + g + h + i + j + k + p.Sum() + int(x)
	if !flag {
		return 0, "", errors.New("flag not set")
	}
	return total, strings.ToUpper(s), nil
}

// fib is recursive.
//
//go:noinline
func fib(n int) int {
	if n < 2 {
		return n
	}
	return fib(n-1) + fib(n-2)
}

// largeFrame has a 4 KiB local array.
//
//go:noinline
func largeFrame(seed int) int {
	var buf [4096]byte
	for i := range buf {
		buf[i] = byte(seed + i)
	}
	return int(buf[seed%len(buf)]) + int(buf[len(buf)-1])
}

// hugeFrame has a local array larger than 64 KiB (still on the stack: explicit variables up to
// 10 MiB stay there).
//
//go:noinline
func hugeFrame(seed int) int {
	var buf [70000]byte
	for i := range buf {
		buf[i] = byte(seed ^ i)
	}
	return int(buf[seed%len(buf)]) + int(buf[len(buf)-1])
}

// makeAdder returns a closure that captures base.
//
//go:noinline
func makeAdder(base int) func(int) int {
	return func(n int) int {
		counter++
		return base + n
	}
}

func main() {
	p := Point{X: 2, Y: 3}
	p.Scale(4)
	var shape Shape = p
	add := makeAdder(10)

	total, upper, err := manyArgs(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, "eleven", 2.5, true, p)
	lines := []string{
		fmt.Sprintf("point %d %d sum %d", p.X, p.Y, shape.Sum()),
		fmt.Sprintf("sum ints %d", SumOf([]int{1, 2, 3, 4})),
		fmt.Sprintf("sum floats %.2f", SumOf([]float64{0.5, 0.25})),
		fmt.Sprintf("pair %s", Pair[string, int]{Key: "answer", Value: 42}),
		fmt.Sprintf("recovered %q", recovered()),
		fmt.Sprintf("many %d %s %v", total, upper, err),
		fmt.Sprintf("fib %d", fib(20)),
		fmt.Sprintf("large %d", largeFrame(7)),
		fmt.Sprintf("huge %d", hugeFrame(7)),
		fmt.Sprintf("adder %d %d", add(1), add(2)),
		fmt.Sprintf("globals %d %q %+v", counter, greeting, config),
	}
	for _, line := range lines {
		if _, err := fmt.Println(line); err != nil {
			os.Exit(1)
		}
	}
}
