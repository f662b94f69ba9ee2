// Command sample has functions with varied signatures and some globals, for the DWARF oracle
// test (tests/dwarf_oracle.rs). It needs only the standard library.
package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"unsafe"
)

// Point is a small struct passed by value.
type Point struct {
	X, Y int
}

// Rect nests structs and a string.
type Rect struct {
	Min, Max Point
	Name     string
}

// Node is recursive: it points to itself.
type Node struct {
	Val  int
	Next *Node
}

// Celsius is a named non-struct type.
type Celsius float64

// Shape is a non-empty interface.
type Shape interface {
	Area() float64
}

// Counter is a global integer.
var Counter int64 = 7

// Greeting is a global string.
var Greeting = "hello"

// Table is a global array.
var Table = [8]uint16{1, 2, 3, 4, 5, 6, 7, 8}

// Head is a global pointer to a recursive type.
var Head = &Node{Val: 1, Next: &Node{Val: 2}}

// Origin is a global struct.
var Origin = Point{X: 1, Y: 2}

// Handlers is a global map.
var Handlers = map[string]int{"a": 1}

//go:noinline
func ints(a int8, b int16, c int32, d int64, e uint8, f uint16, g uint32, h uint64, i int, j uint, k uintptr) int64 {
	return int64(a) + int64(b) + int64(c) + d + int64(e) + int64(f) + int64(g) + int64(h) + int64(i) + int64(j) + int64(k)
}

//go:noinline
func strs(s string, b []byte, ss []string) (string, int) {
	return s + string(b), len(ss)
}

//go:noinline
func area(r Rect) float64 {
	return float64((r.Max.X - r.Min.X) * (r.Max.Y - r.Min.Y))
}

//go:noinline
func scale(p *Point, k int) *Point {
	return &Point{p.X * k, p.Y * k}
}

// Add has a value receiver.
//
//go:noinline
func (p Point) Add(q Point) Point {
	return Point{p.X + q.X, p.Y + q.Y}
}

// Grow has a pointer receiver.
//
//go:noinline
func (r *Rect) Grow(d int) {
	r.Max.X += d
	r.Max.Y += d
}

// Area makes *Rect a Shape.
//
//go:noinline
func (r *Rect) Area() float64 {
	return area(*r)
}

//go:noinline
func divmod(a, b int) (q, r int) {
	q = a / b
	r = a % b
	return
}

//go:noinline
func parse(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, errors.New("bad number: " + s)
	}
	return n, nil
}

//go:noinline
func total(shapes []Shape, extra interface{}) float64 {
	sum := 0.0
	for _, s := range shapes {
		sum += s.Area()
	}
	if f, ok := extra.(float64); ok {
		sum += f
	}
	return sum
}

//go:noinline
func many(a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12 int) int {
	return a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11 + a12
}

//go:noinline
func walk(n *Node) int {
	sum := 0
	for ; n != nil; n = n.Next {
		sum += n.Val
	}
	return sum
}

//go:noinline
func misc(m map[string]int, c chan int, f func(int) int, flag bool) bool {
	return len(m) > 0 && cap(c) >= 0 && f(1) > 0 && flag
}

//go:noinline
func sumArr(a [4]int32) int32 {
	return a[0] + a[1] + a[2] + a[3]
}

//go:noinline
func floats(f float32, d float64, z complex128, t Celsius, u unsafe.Pointer) float64 {
	return float64(f) + d + real(z) + float64(t) + float64(uintptr(u)&1)
}

// twice is small enough to be inlined into its callers.
func twice(x int) int {
	return 2 * x
}

func main() {
	r := Rect{Min: Point{0, 0}, Max: Point{3, 4}, Name: "r"}
	r.Grow(1)
	n, err := parse("42")
	q, rem := divmod(17, 5)
	x := 5
	c := make(chan int, 1)
	fmt.Println(ints(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11))
	fmt.Println(strs("a", []byte("b"), []string{"c"}))
	fmt.Println(area(r), scale(&Point{1, 2}, 3), Point{1, 2}.Add(Point{3, 4}))
	fmt.Println(n, err, q, rem, total([]Shape{&r}, 1.5), many(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12))
	fmt.Println(walk(Head), misc(Handlers, c, twice, true), sumArr([4]int32{1, 2, 3, 4}))
	fmt.Println(floats(1, 2, 3, Celsius(4), unsafe.Pointer(&x)), twice(len(os.Args)))
	fmt.Println(Counter, Greeting, Table, Origin)
}
