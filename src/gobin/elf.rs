//! ELF layout: sections, PT_LOAD segments, vaddr -> file offset.
