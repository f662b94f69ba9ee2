/* Capturing a function's arguments or results by a fetch plan (crate::plan::abi): the
 * registers, a stack window from SP, --global variables and the extra reads (strings,
 * slices, pointed-to bytes) into one struct args_event. Shared by gotrace args and by
 * gotrace graph --args; user space decodes the same record the same way. */
#ifndef CAPTURE_BPF_H
#define CAPTURE_BPF_H

#include "go_runtime.bpf.h"

/* ARGS_FRAME_BYTES: the captured frame, registers then stack then globals. */
#define ARGS_FRAME_BYTES (ARGS_REGS * 8 + ARGS_STACK_WINDOW + ARGS_GLOBALS_BYTES)

_Static_assert((ARGS_GLOBALS_BYTES & (ARGS_GLOBALS_BYTES - 1)) == 0,
	       "a --global's offset is clamped by masking with ARGS_GLOBALS_BYTES - 1");
_Static_assert((ARGS_DATA_CAP & (ARGS_DATA_CAP - 1)) == 0,
	       "an extra read's offset is clamped by masking with ARGS_DATA_CAP - 1");
_Static_assert(sizeof(struct args_event) - __builtin_offsetof(struct args_event, globals) >=
		       3 * ARGS_GLOBALS_BYTES,
	       "a clamped --global read (offset below ARGS_GLOBALS_BYTES, size below twice that) stays "
	       "inside the event");

/* The pointer-sized word at byte `off` of the captured frame. */
static __always_inline __u64 frame_word(struct args_event *e, __u32 off,
					const volatile struct go_layout *l)
{
	__u64 word = 0;

	if (off > ARGS_FRAME_BYTES - 8)
		return 0;
	bpf_probe_read_kernel(&word, 8, (__u8 *)e->regs + off);
	if (l->ptr_size == 4)
		word &= 0xffffffff;
	return word;
}

/* Performs one extra read into e->data; returns the bytes read or ARGS_READ_FAILED. */
static __always_inline __u32 do_deref(struct args_event *e, struct args_deref *d,
				      const volatile struct go_layout *l)
{
	__u64 ptr = frame_word(e, d->ptr_off, l);
	__u64 len, n;
	__u64 off = e->data_len; /* 64-bit: see the globals in capture_frame */

	if (d->kind == DEREF_STRING_HEADER) {
		__u64 header[2] = {};

		if (!ptr || bpf_probe_read_user(&header[0], l->ptr_size, (void *)ptr) ||
		    bpf_probe_read_user(&header[1], l->ptr_size, (void *)(ptr + l->ptr_size)))
			return ARGS_READ_FAILED;
		ptr = header[0];
		len = header[1];
	} else if (d->kind == DEREF_FIXED) {
		if (!ptr)
			return ARGS_READ_FAILED;
		ptr += d->scale;
		len = d->max;
	} else {
		len = frame_word(e, d->len_off, l) * d->scale;
	}
	n = len < d->max ? len : d->max;
	if (n > ARGS_MAX_READ)
		n = ARGS_MAX_READ;
	if (n == 0)
		return 0;
	if (off >= ARGS_DATA_CAP)
		return ARGS_READ_FAILED;
	/* Constant clamps the 6.1 verifier can follow, on the registers the helper gets (no-ops:
	 * off < ARGS_DATA_CAP and 0 < n <= ARGS_MAX_READ, and data[] has ARGS_MAX_READ bytes
	 * past ARGS_DATA_CAP). */
	barrier_var(off);
	barrier_var(n);
	off &= ARGS_DATA_CAP - 1;
	if (n > ARGS_MAX_READ)
		n = ARGS_MAX_READ;
	if (bpf_probe_read_user(&e->data[off], n, (void *)ptr))
		return ARGS_READ_FAILED;
	e->data_len = off + n;
	return n;
}

/* Copies `size` bytes at `addr` to byte `area_off` of the globals area (a --global's or a
 * field path's value); nonzero when they do not fit or cannot be read. */
static __always_inline int read_into_area(struct args_event *e, __u32 area_off, __u32 size,
					  __u64 addr)
{
	/* 64-bit: a 32-bit value is zero-extended into a copy, whose bounds the 6.1 verifier
	 * does not carry back to the register passed to the helper. */
	__u64 off = area_off, n = size;

	if (off >= ARGS_GLOBALS_BYTES || n > ARGS_GLOBALS_BYTES - off || n == 0)
		return -1;
	/* The check above bounds off + n, but the 6.1 verifier tracks no relation between two
	 * registers ("R2 unbounded memory access"): clamp each with a constant mask the compiler
	 * cannot drop (both are no-ops here; globals[] is followed by more of the event, so
	 * off + n < 3 * ARGS_GLOBALS_BYTES stays inside it). */
	barrier_var(off);
	barrier_var(n);
	off &= ARGS_GLOBALS_BYTES - 1;
	n &= 2 * ARGS_GLOBALS_BYTES - 1;
	return bpf_probe_read_user(&e->globals[off], n, (void *)addr);
}

/* Follows one field path's pointer chain (struct args_field) and copies its value into the
 * globals area; returns its enum args_field_status. */
static __always_inline __u32 read_field(struct args_event *e, struct args_field *f,
					const volatile struct go_layout *l)
{
	__u64 ptr = frame_word(e, f->base_off, l);

	if (f->base_min_len && frame_word(e, f->base_len_off, l) < f->base_min_len)
		return FIELD_OUT_OF_RANGE;
	if (!ptr)
		return FIELD_NIL;
	for (__u32 i = 0; i < ARGS_MAX_FIELD_STEPS; i++) {
		struct args_field_step *step = &f->steps[i];
		__u64 next[2] = {};

		if (i >= f->n_steps)
			break;
		if (bpf_probe_read_user(&next[0], l->ptr_size, (void *)(ptr + step->offset)))
			return FIELD_FAULT | i;
		if (step->min_len) {
			if (bpf_probe_read_user(&next[1], l->ptr_size,
						(void *)(ptr + step->offset + l->ptr_size)))
				return FIELD_FAULT | i;
			if (next[1] < step->min_len)
				return FIELD_OUT_OF_RANGE | (i + 1);
		}
		if (!next[0])
			return FIELD_NIL | (i + 1);
		ptr = next[0];
	}
	if (read_into_area(e, f->area_off, f->size, ptr + f->offset))
		return FIELD_FAULT | (f->n_steps & FIELD_STEP_MASK);
	return FIELD_READ;
}

/* Each planned function's fetch plans, indexed by fetch_plan_key (func_id *
 * ARGS_PLANS_PER_FUNC + ARGS_PLAN_<site kind>), then one per probe of an inlined call (its
 * inline_site.fetch_plan). Sized and filled before the probes attach. */
ARRAY_MAP(fetch_plans, struct args_fetch);

/* The fetch_plans index of the plan for `hit`'s site: a tail-call target's RET reads by the
 * function's TAIL_RET plan (the tail callee's result layout), any other RET by its RET plan. */
static __always_inline __u32 fetch_plan_key(struct probe_hit *hit)
{
	return hit->func_id * ARGS_PLANS_PER_FUNC +
	       (hit->kind == SITE_TAIL_RET ? ARGS_PLAN_TAIL_RET :
		hit->kind != SITE_ENTRY	   ? ARGS_PLAN_RET :
					     ARGS_PLAN_ENTRY);
}

/* Fills e's load bias, registers (every integer register, at its enum args_reg_slot), stack
 * window, globals and extra reads by `plan`, at a site
 * `site_offset` bytes into the function, with SP `regs->sp`. Returns the bytes of e to send. */
static __always_inline __u64 capture_frame(struct args_event *e, struct args_fetch *plan,
					   struct pt_regs *regs, __u64 site_offset,
					   const volatile struct go_layout *l)
{
	__u64 size;

	e->data_len = 0;
	e->globals_failed = 0;
	e->load_bias = regs->ip - plan->func_vaddr - site_offset;
	e->regs[ARGS_REG_AX] = regs->ax;
	e->regs[ARGS_REG_BX] = regs->bx;
	e->regs[ARGS_REG_CX] = regs->cx;
	e->regs[ARGS_REG_DI] = regs->di;
	e->regs[ARGS_REG_SI] = regs->si;
	e->regs[ARGS_REG_R8] = regs->r8;
	e->regs[ARGS_REG_R9] = regs->r9;
	e->regs[ARGS_REG_R10] = regs->r10;
	e->regs[ARGS_REG_R11] = regs->r11;
	e->regs[ARGS_REG_DX] = regs->dx;
	e->regs[ARGS_REG_R12] = regs->r12;
	e->regs[ARGS_REG_R13] = regs->r13;
	e->regs[ARGS_REG_R14] = regs->r14;
	e->regs[ARGS_REG_R15] = regs->r15;
	e->regs[ARGS_REG_BP] = regs->bp;
	size = plan->stack_bytes;
	if (size > ARGS_STACK_WINDOW)
		size = ARGS_STACK_WINDOW;
	if (size && bpf_probe_read_user(e->stack, size, (void *)regs->sp))
		__builtin_memset(e->stack, 0, sizeof(e->stack));

	for (int i = 0; i < ARGS_MAX_GLOBALS; i++) {
		struct args_global *gl = &plan->globals[i];

		if (i >= plan->n_globals)
			break;
		if (read_into_area(e, gl->area_off, gl->size, gl->vaddr + e->load_bias))
			e->globals_failed |= 1u << i;
	}

	for (int i = 0; i < ARGS_MAX_FIELDS; i++) {
		if (i >= plan->n_fields)
			break;
		e->field_status[i] = read_field(e, &plan->fields[i], l);
	}

	for (int i = 0; i < ARGS_MAX_DEREFS; i++) {
		if (i >= plan->n_derefs)
			break;
		e->deref_len[i] = do_deref(e, &plan->derefs[i], l);
	}

	size = offsetof(struct args_event, data) + e->data_len;
	if (size > sizeof(*e))
		size = sizeof(*e);
	return size;
}

#endif /* CAPTURE_BPF_H */
