// Command tailcalls calls functions that end in a tail call (a JMP to another function's
// entry, no RET of their own) and counts its own calls, so a tracer's counts can be compared
// with the program's.
//
// The tail-calling functions:
//   - main.(*ByValue).Add, main.(*ByPointer).Add: the compiler's wrappers for the method Add
//     that ByValue (embedding Inner) and ByPointer (embedding *Inner) promote from *Inner. A
//     direct call o.Add resolves to (*Inner).Add; these wrappers run only when Add is called
//     through the Adder interface (or a method value), and they adjust the receiver and JMP
//     to main.(*Inner).Add.
//   - main.jump: assembly (jump_<goarch>.s) whose only instruction is a JMP to main.leaf.
//
// And the wrappers of the value method Inner.Scale: through the Scaler interface,
// main.(*ByValue).Scale (on a ByValue value, which the interface holds by pointer) and
// main.(*Inner).Scale (the pointer-receiver wrapper of a value method); through the method
// expression ByValue.Scale, main.ByValue.Scale (its receiver, a whole ByValue, is passed by
// value).
//
// On exit it prints one "name value" line per counter:
//
//	wrapper_by_value N   calls of Add through the interface on a *ByValue (wrapper calls)
//	wrapper_by_pointer N calls of Add through the interface on a *ByPointer (wrapper calls)
//	inner_add N          calls that reached (*Inner).Add (wrappers' callee; the sum of the two)
//	jump N               calls of main.jump
//	leaf N               calls that reached main.leaf (jump's target)
//	sink N               the sum of every result of Add and jump
//	by_value_d N         the sum of the arguments d of the Add calls on the *ByValue
//	by_pointer_d N       the sum of the arguments d of the Add calls on the *ByPointer
//	by_value_addr P      the *ByValue receiver (hex)
//	by_pointer_addr P    the *ByPointer receiver (hex)
//	scale_by_value N     calls of Scale through the interface on a ByValue value
//	scale_by_value_k N   the sum of their arguments k
//	scale_value_recv N   calls of the method expression ByValue.Scale
//	scale_value_recv_k N the sum of their arguments k
//	scaled_tag S         the tag of the ByValue receiver of both
//	scaled_total N       the total of its Inner
//	scale_by_pointer N   calls of Scale through the interface on an *Inner
//	scale_by_pointer_k N the sum of their arguments k
//	scaled_addr P        that *Inner receiver (hex)
//	scale_sink N         the sum of every result of Scale
//
// Flags:
//
//	-n N    rounds (default 1000); each round makes one call of each kind
//	-wait   wait for a line on stdin before the first round
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
)

// Adder is the interface the promoted methods are called through.
type Adder interface {
	Add(d int64) int64
}

// Inner has the method the outer types promote.
type Inner struct {
	total int64
	calls int64
}

// Add counts its own calls (through any wrapper) and returns the running total.
//
//go:noinline
func (in *Inner) Add(d int64) int64 {
	in.calls++
	in.total += d
	return in.total
}

// Scaler is the interface the value method Scale is called through.
type Scaler interface {
	Scale(k int64) int64
}

// Scale has a value receiver; it returns the receiver's total plus k.
//
//go:noinline
func (in Inner) Scale(k int64) int64 {
	return in.total + k
}

// ByValue embeds Inner after another field, so its wrapper adds an offset to the receiver.
type ByValue struct {
	tag string
	Inner
}

// ByPointer embeds *Inner, so its wrapper loads the pointer.
type ByPointer struct {
	tag string
	*Inner
}

// leafCalls counts calls that reached leaf.
var leafCalls int64

// leaf is the target of jump's JMP.
//
//go:noinline
func leaf(n int64) int64 {
	leafCalls++
	return n*2 + 1
}

// jump is implemented in assembly as a JMP to leaf.
func jump(n int64) int64

func main() {
	rounds := flag.Int64("n", 1000, "rounds (each makes one call of each kind)")
	wait := flag.Bool("wait", false, "wait for a line on stdin before starting")
	flag.Parse()
	if *rounds < 0 {
		fmt.Fprintln(os.Stderr, "tailcalls: -n must be >= 0")
		os.Exit(2)
	}
	if *wait {
		if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
			fmt.Fprintln(os.Stderr, "tailcalls: reading stdin:", err)
			os.Exit(2)
		}
	}

	inner := &Inner{}
	byValue := &ByValue{tag: "value"}
	adders := []Adder{byValue, &ByPointer{tag: "pointer", Inner: inner}}
	scaled := &Inner{total: 7}
	scaledValue := ByValue{tag: "scaled", Inner: Inner{total: 11}}
	scalers := []Scaler{scaledValue, scaled}
	byValueScale := []func(ByValue, int64) int64{ByValue.Scale}
	var byValueCalls, byPointerCalls, jumpCalls, sink int64
	var byValueD, byPointerD int64
	var scaleByValue, scaleByValueK, scaleByPointer, scaleByPointerK, scaleSink int64
	var scaleValueRecv, scaleValueRecvK int64
	for i := int64(0); i < *rounds; i++ {
		sink += adders[0].Add(i)
		byValueCalls++
		byValueD += i
		sink += adders[1].Add(2 * i)
		byPointerCalls++
		byPointerD += 2 * i
		sink += jump(i)
		jumpCalls++
		scaleSink += scalers[0].Scale(3 * i)
		scaleByValue++
		scaleByValueK += 3 * i
		scaleSink += scalers[1].Scale(5 * i)
		scaleByPointer++
		scaleByPointerK += 5 * i
		scaleSink += byValueScale[0](scaledValue, 7*i)
		scaleValueRecv++
		scaleValueRecvK += 7 * i
	}

	fmt.Printf("wrapper_by_value %d\n", byValueCalls)
	fmt.Printf("wrapper_by_pointer %d\n", byPointerCalls)
	fmt.Printf("inner_add %d\n", byValue.Inner.calls+inner.calls)
	fmt.Printf("jump %d\n", jumpCalls)
	fmt.Printf("leaf %d\n", leafCalls)
	fmt.Printf("sink %d\n", sink)
	fmt.Printf("by_value_d %d\n", byValueD)
	fmt.Printf("by_pointer_d %d\n", byPointerD)
	fmt.Printf("by_value_addr %p\n", byValue)
	fmt.Printf("by_pointer_addr %p\n", adders[1])
	fmt.Printf("scale_by_value %d\n", scaleByValue)
	fmt.Printf("scale_by_value_k %d\n", scaleByValueK)
	fmt.Printf("scale_value_recv %d\n", scaleValueRecv)
	fmt.Printf("scale_value_recv_k %d\n", scaleValueRecvK)
	fmt.Printf("scaled_tag %s\n", scaledValue.tag)
	fmt.Printf("scaled_total %d\n", scaledValue.total)
	fmt.Printf("scale_by_pointer %d\n", scaleByPointer)
	fmt.Printf("scale_by_pointer_k %d\n", scaleByPointerK)
	fmt.Printf("scaled_addr %p\n", scaled)
	fmt.Printf("scale_sink %d\n", scaleSink)
}
