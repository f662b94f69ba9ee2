#include "textflag.h"

// func jump(n int64) int64: a tail call, JMP to leaf with the caller's frame.
TEXT ·jump(SB), NOSPLIT, $0-16
	JMP ·leaf(SB)
