//! The Go pclntab reader: functions, pc -> file:line, pc -> SP delta.
