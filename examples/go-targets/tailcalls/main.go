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
// On exit it prints one "name count" line per counter:
//
//	wrapper_by_value N   calls of Add through the interface on a *ByValue (wrapper calls)
//	wrapper_by_pointer N calls of Add through the interface on a *ByPointer (wrapper calls)
//	inner_add N          calls that reached (*Inner).Add (wrappers' callee; the sum of the two)
//	jump N               calls of main.jump
//	leaf N               calls that reached main.leaf (jump's target)
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
	var byValueCalls, byPointerCalls, jumpCalls, sink int64
	for i := int64(0); i < *rounds; i++ {
		sink += adders[0].Add(i)
		byValueCalls++
		sink += adders[1].Add(i)
		byPointerCalls++
		sink += jump(i)
		jumpCalls++
	}

	fmt.Printf("wrapper_by_value %d\n", byValueCalls)
	fmt.Printf("wrapper_by_pointer %d\n", byPointerCalls)
	fmt.Printf("inner_add %d\n", byValue.Inner.calls+inner.calls)
	fmt.Printf("jump %d\n", jumpCalls)
	fmt.Printf("leaf %d\n", leafCalls)
	fmt.Printf("sink %d\n", sink)
}
