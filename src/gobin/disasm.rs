//! Instruction decoding of one function: its RET sites and its entry probe site.
