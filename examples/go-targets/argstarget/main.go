// argstarget calls functions with arguments of every kind gotrace args decodes, and prints its
// own record of each call as one line:
// `REC {"function":...,"args":[...],"results":[...],"counter":N}`, where N is the global
// main.counter at the call's entry (every traced function increments it once).
// The values in a record are written the way gotrace prints them (pointers as hex strings,
// strings as text or {"hex":...} when not UTF-8, nil as null, a pointer to a struct of numbers
// as {"ptr":...,"pointee":{...}}), so a test can compare the two directly. Some calls are also
// recorded as Go's fmt prints them (`HUMAN main.f(a=%v, b=%q)`), for gotrace's human output.
package main

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"
)

// Point is a small struct passed in registers under the register ABI.
type Point struct {
	X, Y int
	Name string
}

// Rect nests two Points (eight words: still fits in registers).
type Rect struct {
	Min, Max Point
}

// Big has ten words: more than the nine integer registers, so it goes on the stack.
type Big struct {
	A, B, C, D, E, F, G, H, I, J int
}

// codeError is an error type that holds no string.
type codeError struct{ code int }

func (e *codeError) Error() string { return fmt.Sprintf("code %d", e.code) }

// counter counts the calls of the traced functions.
var counter int

func record(function string, args []interface{}, results []interface{}) {
	line, err := json.Marshal(map[string]interface{}{"function": function, "args": args, "results": results, "counter": counter - 1})
	if err != nil {
		panic(err)
	}
	fmt.Printf("REC %s\n", line)
}

// human records one call as Go's fmt prints its arguments.
func human(function string, format string, args ...interface{}) {
	fmt.Printf("HUMAN %s(%s)\n", function, fmt.Sprintf(format, args...))
}

func hexPtr(p uintptr) string { return fmt.Sprintf("%#x", p) }

// strValue is a string as gotrace's JSON has it: the text, or its exact bytes when not UTF-8.
func strValue(s string) interface{} {
	if utf8.ValidString(s) {
		return s
	}
	return map[string]interface{}{"hex": hex.EncodeToString([]byte(s))}
}

func errValue(err error) interface{} {
	if err == nil {
		return nil
	}
	v := map[string]interface{}{"type": fmt.Sprintf("%T", err)}
	if _, ok := err.(interface{ Unwrap() error }); !ok && fmt.Sprintf("%T", err) == "*errors.errorString" {
		v["message"] = err.Error()
	}
	return v
}

//go:noinline
func ints(a int8, b int16, c int32, d int64, e uint8, f uint16, g uint32, h uint64, i int, j uint, k uintptr) int64 {
	r := int64(a) + int64(b) + int64(c) + d + int64(e) + int64(f) + int64(g) + int64(h) + int64(i) + int64(j) + int64(k)
	counter++
	return r
}

//go:noinline
func bools(a, b bool) bool { counter++; return a && !b }

//go:noinline
func strs(s, t string) (n int, joined string) {
	counter++
	return len(s) + len(t), s + t
}

//go:noinline
func pointer(p *int) *int { counter++; return p }

//go:noinline
func divmod(a, b int) (q, r int) { counter++; return a / b, a % b }

//go:noinline
func mayFail(n int) (int, error) {
	counter++
	if n < 0 {
		return 0, errors.New("negative input")
	}
	if n == 0 {
		return 0, &codeError{code: 7}
	}
	return n * 2, nil
}

//go:noinline
func withFloat(x float64, n int) int { counter++; return n + int(x) }

//go:noinline
func point(p Point, dx int) Point {
	counter++
	return Point{X: p.X + dx, Y: p.Y, Name: p.Name}
}

//go:noinline
func rect(r Rect) int { counter++; return (r.Max.X - r.Min.X) * (r.Max.Y - r.Min.Y) }

//go:noinline
func big(n int, b Big) int { counter++; return n + b.A + b.J }

// makeBig returns a struct too large for the result registers (it goes to the stack), after
// an argument that also does not fit (an array).
//
//go:noinline
func makeBig(a [2]int, n int) (Big, bool) {
	counter++
	return Big{n, -n, a[0], a[1], 5, 6, 7, 8, 9, 10}, n > 0
}

//go:noinline
func array(a [3]int) int { counter++; return a[0] + a[1] + a[2] }

// stackLeaf records its callers as runtime.Callers reports them (for --stack).
//
//go:noinline
func stackLeaf(n int) int {
	pcs := make([]uintptr, 32)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(2, pcs)])
	var stack []interface{}
	for {
		frame, more := frames.Next()
		stack = append(stack, map[string]interface{}{"function": frame.Function, "file": frame.File, "line": frame.Line})
		if !more {
			break
		}
	}
	line, err := json.Marshal(map[string]interface{}{"function": "main.stackLeaf", "n": n, "stack": stack})
	if err != nil {
		panic(err)
	}
	fmt.Printf("STACK %s\n", line)
	return n
}

//go:noinline
func stackMid(n int) int {
	if n > 0 {
		return stackMid(n-1) + 1
	}
	return stackLeaf(n)
}

// inGoroutine is called from fresh goroutines; its record carries the caller's goid.
//
//go:noinline
func inGoroutine(id int) int { counter++; return id * 2 }

// goid is the current goroutine's id, from the header of its runtime.Stack dump.
func goid() int {
	buf := make([]byte, 64)
	header := strings.TrimPrefix(string(buf[:runtime.Stack(buf, false)]), "goroutine ")
	id, err := strconv.Atoi(header[:strings.IndexByte(header, ' ')])
	if err != nil {
		panic(err)
	}
	return id
}

// mayPanic panics for negative n: the call never reaches a RET.
//
//go:noinline
func mayPanic(n int) int {
	counter++
	if n < 0 {
		panic("negative")
	}
	return n
}

// callMayPanic calls mayPanic and recovers; its record has no results when it panicked.
func callMayPanic(n int) {
	defer func() {
		if recover() != nil {
			record("main.mayPanic", []interface{}{n}, nil)
		}
	}()
	result := mayPanic(n)
	record("main.mayPanic", []interface{}{n}, []interface{}{result})
}

// hot is the cheap function of the -hot load test.
//
//go:noinline
func hot(i int, s string) int { return i + len(s) }

//go:noinline
func bytesArg(b []byte) int { counter++; return len(b) }

// Size is a struct of numbers: gotrace shows what a pointer to it points at.
type Size struct{ W, H int }

//go:noinline
func area(r *Size) int {
	counter++
	if r == nil {
		return 0
	}
	return r.W * r.H
}

//go:noinline
func nils(err error, p *Size, m map[string]int, c chan int, f func(), v interface{}) bool {
	counter++
	return err == nil && p == nil && m == nil && c == nil && f == nil && v == nil
}

//go:noinline
func ints64(v []int64, flags []bool) int { counter++; return len(v) + len(flags) }

//go:noinline
func describe(v interface{}) bool { counter++; return v == nil }

//go:noinline
func (p Point) Sum() int { counter++; return p.X + p.Y }

//go:noinline
func (p *Point) Move(dx int) { counter++; p.X += dx }

// sliceValue is a slice as gotrace prints it: the first 16 elements, with len and cap.
func sliceValue(v []int64) map[string]interface{} {
	shown := v
	if len(shown) > 16 {
		shown = shown[:16]
	}
	return map[string]interface{}{"slice": shown, "len": len(v), "cap": cap(v)}
}

func anyValue(v interface{}) interface{} {
	if v == nil {
		return nil
	}
	return map[string]interface{}{"type": fmt.Sprintf("%T", v)}
}

func pointValue(p Point) map[string]interface{} {
	return map[string]interface{}{"X": p.X, "Y": p.Y, "Name": p.Name}
}

func main() {
	rounds := flag.Int("rounds", 1, "how many times to run the whole set of calls")
	hotCalls := flag.Int("hot", 0, "then call main.hot this many times as fast as possible")
	delay := flag.Duration("delay", 0, "sleep this long first (time to attach a tracer with -p)")
	flag.Parse()
	time.Sleep(*delay)
	defer func() {
		if *hotCalls == 0 {
			return
		}
		start := time.Now()
		sum := 0
		for i := 0; i < *hotCalls; i++ {
			sum += hot(i, "hot")
		}
		elapsed := time.Since(start)
		fmt.Printf("HOT_CALLS %d\nHOT_RATE %.0f\nHOT_SUM %d\n", *hotCalls, float64(*hotCalls)/elapsed.Seconds(), sum)
	}()
	long := strings.Repeat("abcdefghij", 12)
	for round := 0; round < *rounds; round++ {
		r := int64(round)
		a, b, c, d := int8(-5-round%100), int16(-300-round), int32(-70000-round), -5000000000-r
		e, f, g, h := uint8(250), uint16(65000), uint32(4000000000), uint64(18000000000000000000)+uint64(round)
		i, j, k := -42-round, uint(7), uintptr(0xdeadbeef)
		res := ints(a, b, c, d, e, f, g, h, i, j, k)
		record("main.ints", []interface{}{a, b, c, d, e, f, g, h, i, j, k}, []interface{}{res})

		t, fl := round%2 == 0, round%3 == 0
		record("main.bools", []interface{}{t, fl}, []interface{}{bools(t, fl)})

		for _, pair := range [][2]string{{"hello", "world"}, {"", ""}, {long, "x"}, {"caf\xe9\xff", "ü"}} {
			n, joined := strs(pair[0], pair[1])
			record("main.strs", []interface{}{strValue(pair[0]), strValue(pair[1])}, []interface{}{n, strValue(joined)})
		}

		x := round
		px := pointer(&x)
		record("main.pointer", []interface{}{hexPtr(uintptr(unsafe.Pointer(&x)))}, []interface{}{hexPtr(uintptr(unsafe.Pointer(px)))})
		human("main.pointer", "p=%v", &x)
		var nilp *int
		pointer(nilp)
		record("main.pointer", []interface{}{nil}, []interface{}{nil})
		human("main.pointer", "p=%v", nilp)

		size := &Size{W: 3 + round, H: -4}
		record("main.area", []interface{}{map[string]interface{}{"ptr": hexPtr(uintptr(unsafe.Pointer(size))), "pointee": map[string]interface{}{"W": size.W, "H": size.H}}}, []interface{}{area(size)})
		human("main.area", "r=%+v", size)
		var nilSize *Size
		record("main.area", []interface{}{nil}, []interface{}{area(nilSize)})
		human("main.area", "r=%+v", nilSize)
		var nilErr error
		var nilMap map[string]int
		var nilChan chan int
		var nilFunc func()
		var nilAny interface{}
		record("main.nils", []interface{}{nil, nil, nil, nil, nil, nil}, []interface{}{nils(nilErr, nilSize, nilMap, nilChan, nilFunc, nilAny)})
		human("main.nils", "err=%v, p=%v, m=<nil>, c=%v, f=%v, v=%v", nilErr, nilSize, nilChan, interface{}(nilFunc), nilAny)

		q, rem := divmod(-17-round, 5)
		record("main.divmod", []interface{}{-17 - round, 5}, []interface{}{q, rem})

		for _, n := range []int{3 + round, -1, 0} {
			v, err := mayFail(n)
			record("main.mayFail", []interface{}{n}, []interface{}{v, errValue(err)})
		}

		fx := 2.5 + float64(round)
		record("main.withFloat", []interface{}{fx, round}, []interface{}{withFloat(fx, round)})

		pt := Point{X: -1 - round, Y: 2, Name: "pt"}
		record("main.point", []interface{}{pointValue(pt), 3}, []interface{}{pointValue(point(pt, 3))})
		rc := Rect{Min: Point{1, 2, "min"}, Max: Point{4 + round, 6, "max"}}
		record("main.rect", []interface{}{map[string]interface{}{"Min": pointValue(rc.Min), "Max": pointValue(rc.Max)}}, []interface{}{rect(rc)})
		bg := Big{-1, 2, 3, 4, 5, 6, 7, 8, 9, 10 + round}
		bgv := map[string]interface{}{"A": bg.A, "B": bg.B, "C": bg.C, "D": bg.D, "E": bg.E, "F": bg.F, "G": bg.G, "H": bg.H, "I": bg.I, "J": bg.J}
		record("main.big", []interface{}{round, bgv}, []interface{}{big(round, bg)})
		mb, ok := makeBig([2]int{round, -round}, 3+round)
		mbv := map[string]interface{}{"A": mb.A, "B": mb.B, "C": mb.C, "D": mb.D, "E": mb.E, "F": mb.F, "G": mb.G, "H": mb.H, "I": mb.I, "J": mb.J}
		record("main.makeBig", []interface{}{[2]int{round, -round}, 3 + round}, []interface{}{mbv, ok})
		arr := [3]int{-7, 8, round}
		record("main.array", []interface{}{arr}, []interface{}{array(arr)})
		record("main.Point.Sum", []interface{}{pointValue(pt)}, []interface{}{pt.Sum()})
		pt.Move(4)
		record("main.(*Point).Move", []interface{}{hexPtr(uintptr(unsafe.Pointer(&pt))), 4}, []interface{}{})

		raw := []byte("raw\x00bytes\xff" + strings.Repeat("z", round))
		record("main.bytesArg", []interface{}{strValue(string(raw))}, []interface{}{bytesArg(raw)})
		human("main.bytesArg", "b=%q", raw)
		many := make([]int64, 20+round, 32+round)
		for n := range many {
			many[n] = int64(n*n) - 50
		}
		flags := []bool{true, false, round%2 == 1}
		for _, v := range [][]int64{many, nil, many[:3]} {
			record("main.ints64", []interface{}{sliceValue(v), map[string]interface{}{"slice": flags, "len": len(flags), "cap": cap(flags)}}, []interface{}{ints64(v, flags)})
		}
		for _, v := range []interface{}{nil, round, &pt, "s"} {
			record("main.describe", []interface{}{anyValue(v)}, []interface{}{describe(v)})
		}
		stackMid(round % 3)
		callMayPanic(round)
		callMayPanic(-1 - round)

		for id := 0; id < 3; id++ {
			done := make(chan struct{})
			go func() {
				result := inGoroutine(id + round)
				line, err := json.Marshal(map[string]interface{}{"function": "main.inGoroutine", "args": []interface{}{id + round}, "results": []interface{}{result}, "counter": counter - 1, "goid": goid()})
				if err != nil {
					panic(err)
				}
				fmt.Printf("REC %s\n", line)
				close(done)
			}()
			<-done
		}
	}
}
