/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Rung 0 of the attribution ladder on Node with AsyncContextFrame (24+):
 * the running call, read from V8's async context at syscall time.
 *
 *   fsbase + layout.isolate_tls   the thread's Isolate* (read once, at the
 *                                 thread's slot registration)
 *   isolate + layout.cped         the running AsyncContextFrame: a JSMap
 *                                 from each AsyncLocalStorage to its store
 *   frame + layout.table          its OrderedHashMap: 3 Smis (elements,
 *                                 deleted, buckets), the buckets, then
 *                                 entries of (key, value, chain)
 *   key + reader.key_tag          AR_FRAME_KEY_TAG: the SDK's storage
 *   value + typed_array_data      its store, a Buffer: the call's record
 *
 * Nothing here is taken on trust: user space found every offset in the
 * agent's node binary, and the thread's registration proved the walk
 * (ar_frame_check) before the rung is used for it. A read that fails later
 * (a page swapped out) is counted and lower rungs are asked.
 */
#ifndef AR_FRAME_BPF_H
#define AR_FRAME_BPF_H

#include "common.bpf.h"

/* Stores a frame is searched for the SDK's (AsyncLocalStorage instances
 * with a value in the running context: the app's OpenTelemetry context, the
 * SDK's, a few libraries'), read 4 entries at a time: an OrderedHashMap's
 * room is a power of two, at least 4, and at least what it holds. A frame
 * of more stores than this is not searched past them: counted, never read
 * as "no call". */
#define AR_FRAME_BLOCK 4
#define AR_FRAME_ENTRIES 16
/* Words of the SDK's AsyncLocalStorage object searched for its tag at registration. */
#define AR_FRAME_KEY_WORDS 16

struct ar_v8_entry {
	__u64 key;
	__u64 value;
	__u64 chain;
};

/* V8 tags a heap object's address with 1 in its low bits (01); a Smi has 0. */
static __always_inline int ar_v8_is_heap(__u64 tagged)
{
	return (tagged & 3) == 1;
}

/* A Smi's value (64-bit V8 without pointer compression: the upper half). */
static __always_inline __s64 ar_v8_smi(__u64 tagged)
{
	return (__s64)tagged >> 32;
}

/* What a walk reads, off the stack (the syscall programs the ladder runs
 * in have little of it to spare): the table's header, its buckets when it
 * has two (a table of up to 4 stores, as a frame's almost always is) and
 * its first entries, in one read; then the record. */
struct ar_frame_scratch {
	__u64 hdr[3]; /* elements, deleted, buckets (Smis) */
	__u64 buckets[2];
	struct ar_v8_entry e[AR_FRAME_BLOCK];
	struct ar_call_record rec;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ar_frame_scratch);
} ar_frame_scratch SEC(".maps");

struct ar_frame_walk {
	__u64 entries; /* address of entry 0 */
	__u32 count;   /* entries to look at (used ones, at most AR_FRAME_ENTRIES) */
	__u32 more;    /* the frame holds more than that */
};

/* Reads the frame's table into sc (its first block of entries included)
 * and says where its entries are. 0, or -1 when it cannot be read. */
static __always_inline int ar_frame_table(const struct ar_v8_layout *l, __u64 frame, struct ar_frame_scratch *sc, struct ar_frame_walk *w)
{
	__u64 table;
	if (bpf_probe_read_user(&table, sizeof(table), (void *)(frame - 1 + l->table)) || !ar_v8_is_heap(table))
		return -1;
	__u64 data = table - 1 + l->fixed_array_data;
	/* the smallest table (2 buckets, room for 4) is exactly this long */
	if (bpf_probe_read_user(sc, offsetof(struct ar_frame_scratch, rec), (void *)data))
		return -1;
	__s64 used = ar_v8_smi(sc->hdr[0]) + ar_v8_smi(sc->hdr[1]);
	__s64 buckets = ar_v8_smi(sc->hdr[2]);
	if (used < 0 || buckets < 2 || buckets > 65536)
		return -1;
	w->entries = data + 8 * (3 + buckets);
	w->count = used > AR_FRAME_ENTRIES ? AR_FRAME_ENTRIES : used;
	w->more = used > AR_FRAME_ENTRIES;
	if (buckets != 2 && w->count > 0 && bpf_probe_read_user(sc->e, sizeof(sc->e), (void *)w->entries))
		return -1;
	return 0;
}

/* Whether `key` is the SDK's AsyncLocalStorage (it holds the tag where the
 * registration found it). */
static __always_inline int ar_frame_is_ours(const struct ar_frame_reader *r, __u64 key)
{
	__u64 tag;
	return ar_v8_is_heap(key) && bpf_probe_read_user(&tag, sizeof(tag), (void *)(key - 1 + r->key_tag)) == 0 &&
	       tag == (__u64)AR_FRAME_KEY_TAG << 32;
}

/* The address of a Buffer store's data (external_pointer: V8 without the
 * sandbox keeps the raw address), or 0. */
static __always_inline __u64 ar_frame_data(const struct ar_v8_layout *l, __u64 value)
{
	__u64 data;
	if (!ar_v8_is_heap(value) || bpf_probe_read_user(&data, sizeof(data), (void *)(value - 1 + l->typed_array_data)))
		return 0;
	return data;
}

enum ar_frame_result {
	AR_FRAME_CALL = 1,        /* out and tool are the running call's */
	AR_FRAME_NO_CALL = 0,     /* no call runs here: lower rungs must not be asked */
	AR_FRAME_UNKNOWN = -1,    /* could not be read: ask lower rungs */
};

/* The call the thread runs now, read from its frame. A function of its
 * own: inlined, it would not fit the stack of the syscall programs. */
static __noinline int ar_frame_call(struct ar_frame_reader *r, struct ar_span_ctx *out, __u32 *tool)
{
	__u32 zero = 0;
	struct ar_frame_scratch *sc = bpf_map_lookup_elem(&ar_frame_scratch, &zero);
	if (!sc)
		return AR_FRAME_UNKNOWN;
	__u64 frame;
	if (bpf_probe_read_user(&frame, sizeof(frame), (void *)(r->isolate + r->layout.cped)))
		return AR_FRAME_UNKNOWN;
	/* no frame (undefined), or not one (a Smi): no store of anybody's */
	if (frame == r->undefined || !ar_v8_is_heap(frame))
		return AR_FRAME_NO_CALL;
	struct ar_frame_walk w;
	if (ar_frame_table(&r->layout, frame, sc, &w))
		return AR_FRAME_UNKNOWN;
	__u64 value = 0;
	/* where it was last time first: frames copy their parent's entries in order */
	__u32 hint = r->hint;
	int hinted = hint < AR_FRAME_BLOCK && hint < w.count; /* in the block read: looked at first */
	if (hinted && ar_frame_is_ours(r, sc->e[hint & (AR_FRAME_BLOCK - 1)].key)) {
		value = sc->e[hint & (AR_FRAME_BLOCK - 1)].value;
		goto found;
	}
	for (int b = 0; b < AR_FRAME_ENTRIES / AR_FRAME_BLOCK; b++) {
		if (b * AR_FRAME_BLOCK >= w.count)
			break;
		if (b > 0 && bpf_probe_read_user(sc->e, sizeof(sc->e), (void *)(w.entries + b * sizeof(sc->e))))
			return AR_FRAME_UNKNOWN;
		for (int i = 0; i < AR_FRAME_BLOCK; i++) {
			__u32 n = b * AR_FRAME_BLOCK + i;
			if (n >= w.count)
				break;
			if ((hinted && n == hint) || !ar_frame_is_ours(r, sc->e[i].key))
				continue;
			value = sc->e[i].value;
			r->hint = n;
			goto found;
		}
	}
	/* the SDK's storage has no store in this context (it never ran a call
	 * here), or it is past what was searched: then that is not known */
	return w.more ? AR_FRAME_UNKNOWN : AR_FRAME_NO_CALL;
found:
	if (value == r->undefined || !ar_v8_is_heap(value))
		return AR_FRAME_NO_CALL; /* outside calls (the SDK ran it with no record) */
	__u64 data = ar_frame_data(&r->layout, value);
	struct ar_call_record *rec = &sc->rec;
	if (!data || bpf_probe_read_user(rec, sizeof(*rec), (void *)data))
		return AR_FRAME_UNKNOWN;
	/* the SDK's store, and not a record: its own (the registration's) */
	if (rec->tag != AR_CALL_RECORD_TAG_U64 || !rec->ctx.valid)
		return AR_FRAME_NO_CALL;
	__builtin_memcpy(out->trace_id, rec->ctx.trace_id, sizeof(out->trace_id));
	__builtin_memcpy(out->span_id, rec->ctx.span_id, sizeof(out->span_id));
	if (tool)
		*tool = rec->ctx.tool;
	return AR_FRAME_CALL;
}

/* At a slot registration of a process whose V8 layout user space gave:
 * proves the walk for this thread, from inside the store the SDK registers
 * from (its data is the slot, `buf`), and keeps the thread's reader (with
 * the outcome: user space tells the SDK, which leaves its async hook on
 * unless it is AR_FRAME_OK). */
static __noinline int ar_frame_verify(__u64 id, __u64 buf)
{
	__u32 tgid = id >> 32;
	struct ar_v8_layout *l = bpf_map_lookup_elem(&ar_v8_layouts, &tgid);
	if (!l)
		return 0;
	struct ar_frame_reader r = { .layout = *l };
	r.check = AR_FRAME_NO_ISOLATE;
#if defined(__TARGET_ARCH_x86)
	struct task_struct *task = bpf_get_current_task_btf();
	__u64 fsbase = BPF_CORE_READ(task, thread.fsbase);
	if (!fsbase || bpf_probe_read_user(&r.isolate, sizeof(r.isolate), (void *)(fsbase + l->isolate_tls)) || !r.isolate)
		goto out;
#else
	goto out; /* the thread pointer of other architectures: not yet */
#endif
	r.check = AR_FRAME_UNREADABLE;
	__u64 frame;
	if (bpf_probe_read_user(&r.undefined, sizeof(r.undefined), (void *)(r.isolate + l->undefined_root)) ||
	    bpf_probe_read_user(&frame, sizeof(frame), (void *)(r.isolate + l->cped)))
		goto out;
	r.check = AR_FRAME_NO_FRAME;
	if (frame == r.undefined || !ar_v8_is_heap(frame))
		goto out;
	r.check = AR_FRAME_UNREADABLE;
	__u32 zero = 0;
	struct ar_frame_scratch *sc = bpf_map_lookup_elem(&ar_frame_scratch, &zero);
	struct ar_frame_walk w;
	if (!sc || ar_frame_table(l, frame, sc, &w))
		goto out;
	r.check = AR_FRAME_NOT_FOUND;
	__u64 key = 0;
	for (int i = 0; i < AR_FRAME_ENTRIES; i++) {
		if (i >= w.count)
			break;
		struct ar_v8_entry e;
		if (bpf_probe_read_user(&e, sizeof(e), (void *)(w.entries + i * sizeof(e))))
			break;
		if (ar_frame_data(l, e.value) == buf) {
			key = e.key;
			r.hint = i;
			break;
		}
	}
	if (!key)
		goto out;
	r.check = AR_FRAME_NO_KEY_TAG;
	__u64 words[AR_FRAME_KEY_WORDS];
	if (!ar_v8_is_heap(key) || bpf_probe_read_user(words, sizeof(words), (void *)(key - 1)))
		goto out;
	for (int i = 1; i < AR_FRAME_KEY_WORDS; i++) {
		if (words[i] == (__u64)AR_FRAME_KEY_TAG << 32) {
			r.key_tag = i * 8;
			r.check = AR_FRAME_OK;
			break;
		}
	}
out:
	bpf_map_update_elem(&ar_frame_readers, &id, &r, BPF_ANY);
	return 0;
}

#endif /* AR_FRAME_BPF_H */
