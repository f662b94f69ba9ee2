/* args --where EXPR OP CONST (struct args_where): whether a call's captured entry satisfies
 * the condition, decided in the kernel so that a call not shown costs no ring-buffer record. */
#ifndef WHERE_BPF_H
#define WHERE_BPF_H

#include "capture.bpf.h"

/* -1, 0 or 1 as a is below, equal to or above b. */
#define WHERE_CMP(a, b) ((a) < (b) ? -1 : (a) > (b) ? 1 : 0)

/* Whether the comparison's result `cmp` (value against constant) satisfies `op`; `prefix`:
 * the value starts with the constant. */
static __always_inline int where_op_holds(enum where_op op, int cmp, bool prefix)
{
	switch (op) {
	case WHERE_EQ:
		return cmp == 0;
	case WHERE_NE:
		return cmp != 0;
	case WHERE_LT:
		return cmp < 0;
	case WHERE_LE:
		return cmp <= 0;
	case WHERE_GT:
		return cmp > 0;
	case WHERE_GE:
		return cmp >= 0;
	case WHERE_PREFIX:
		return prefix;
	default:
		return 1;
	}
}

/* The string value of `w` (bytes of extra read w->deref, full length in the frame) against
 * its constant: -1, 0 or 1, and whether the constant is its prefix; -2 when unreadable. */
static __always_inline int where_string_cmp(struct args_event *e, struct args_where *w,
					    const volatile struct go_layout *l, bool *prefix)
{
	__u8 buf[WHERE_BYTES] = {};
	__u64 off = 0, n, full = frame_word(e, w->off, l);
	__u32 clen = w->len;

	for (int i = 0; i < ARGS_MAX_DEREFS; i++) {
		if (i >= w->deref)
			break;
		if (e->deref_len[i] != ARGS_READ_FAILED)
			off += e->deref_len[i];
	}
	if (w->deref >= ARGS_MAX_DEREFS)
		return -2;
	n = e->deref_len[w->deref & (ARGS_MAX_DEREFS - 1)];
	if (n == ARGS_READ_FAILED)
		return -2;
	if (n > WHERE_BYTES)
		n = WHERE_BYTES;
	if (off >= ARGS_DATA_CAP)
		return -2;
	barrier_var(off);
	barrier_var(n);
	off &= ARGS_DATA_CAP - 1;
	n &= 2 * WHERE_BYTES - 1;
	if (n > WHERE_BYTES)
		return -2;
	if (n && bpf_probe_read_kernel(buf, n, &e->data[off]))
		return -2;
	if (clen > WHERE_BYTES - 1)
		clen = WHERE_BYTES - 1;
	/* The constant is shorter than WHERE_BYTES, so the first WHERE_BYTES bytes of the value
	 * decide: a difference there, or else the lengths. */
	for (__u32 i = 0; i < WHERE_BYTES; i++) {
		if (i >= clen || i >= n)
			break;
		if (buf[i] != w->bytes[i])
			return buf[i] < w->bytes[i] ? -1 : 1;
	}
	*prefix = full >= clen && n >= clen;
	return WHERE_CMP(full, (__u64)clen);
}

/* 1 when the captured entry `e` satisfies `w`, 0 when it does not, -1 when its value could not
 * be read (a nil pointer on the way, unreadable memory). */
static __always_inline int where_holds(struct args_event *e, struct args_where *w,
				       const volatile struct go_layout *l)
{
	bool prefix = false;
	int cmp;

	if (w->chased && e->field_status[w->field & (ARGS_MAX_FIELDS - 1)] != FIELD_READ)
		return -1;
	if (w->kind == WHERE_STRING) {
		cmp = where_string_cmp(e, w, l, &prefix);
		if (cmp == -2)
			return -1;
	} else {
		__u64 raw = 0, off = w->off;
		__u32 shift = 64 - 8 * (w->size > 0 && w->size < 8 ? w->size : 8);

		if (off > ARGS_FRAME_BYTES - 8)
			return -1;
		bpf_probe_read_kernel(&raw, 8, (__u8 *)e->regs + off);
		raw = (raw << shift) >> shift;
		if (w->kind == WHERE_SIGNED) {
			__s64 v = ((__s64)(raw << shift)) >> shift;

			cmp = WHERE_CMP(v, w->value);
		} else {
			cmp = WHERE_CMP(raw, (__u64)w->value);
		}
	}
	return where_op_holds(w->op, cmp, prefix);
}

#endif /* WHERE_BPF_H */
