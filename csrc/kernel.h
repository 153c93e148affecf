/*
 * staticst._kernel: the compiled text -> vector path (tokenize, look up, pool) behind staticst.engine.
 *
 * Files:
 *   kernel.h       shared declarations
 *   wordtable.c    the bounded word -> token-ids hash table (lock-free reads, one writer under the GIL)
 *   buf.c          the growable id / byte buffers (st_ibuf, st_cbuf) every tokenizer part writes into
 *   tokenize.c     normalise + split ASCII text by the plan's pre-tokenizer family, look words up
 *   pool.c         per-text segment sums and each reference family's finish, bit-identical to numpy
 *   threads.c      splitting a batch over native threads (texts are never split across threads)
 *   objects.h      the Python objects and what the three files below share (private to them)
 *   module.c       the module (its functions and init) and the WordTable type
 *   kernel_type.c  the Kernel type: construction, embed / tokenize / embed_one / pool
 *   batch.c        one batch call: phase A, the resolve and fallback calls into Python, phase B
 *
 * Exactness: every floating-point operation is the one the numpy path performs, in the same order and
 * precision (C11, -ffp-contract=off, no -ffast-math); vector width never changes the per-element order.
 */
#ifndef STATICST_KERNEL_H
#define STATICST_KERNEL_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------------ word table */

#define ST_MAX_KEY 255          /* longer words are never cached (resolved per call) */
#define ST_MAX_WORD_IDS 1024    /* words with more ids are never cached (resolved per call) */
#define ST_INLINE_KEY 24        /* keys up to this many bytes live in the entry itself */
#define ST_INLINE_IDS 6         /* ... and up to this many ids */

/* One word: 64 bytes, one cache line; short keys and short id runs inline (no second memory access). */
typedef struct {
    uint32_t key_len, n_ids;
    uint32_t key_off, ids_off; /* arena offsets of a long key / a long id run */
    uint64_t key[3];           /* the key, zero padded, when key_len <= ST_INLINE_KEY */
    int32_t ids[ST_INLINE_IDS];
} st_entry;

/* A key being looked up: its bytes, the zero-padded words of a short key, and its hash. */
typedef struct {
    const char *p;
    size_t len;
    uint64_t w[3];
    uint64_t hash;
} st_key;

typedef struct st_gen {
    atomic_long refs;
    uint32_t nslots;            /* power of two */
    _Atomic uint64_t *slots;    /* 0: empty; else (hash >> 32) << 32 | (entry index + 1) */
    st_entry *entries;
    uint32_t n_entries, max_entries;
    char *keys;                 /* long keys */
    size_t keys_len, keys_cap;
    int32_t *ids;               /* long id runs */
    size_t ids_len, ids_cap;
} st_gen;

void st_key_make(st_key *k, const char *p, size_t len);
st_gen *st_gen_new(uint32_t max_entries);
void st_gen_incref(st_gen *g);
void st_gen_decref(st_gen *g);
const st_entry *st_gen_find(const st_gen *g, const st_key *k);
static inline const int32_t *st_entry_ids(const st_gen *g, const st_entry *e) {
    return e->n_ids <= ST_INLINE_IDS ? e->ids : g->ids + e->ids_off;
}
static inline const char *st_entry_key(const st_gen *g, const st_entry *e) {
    return e->key_len <= ST_INLINE_KEY ? (const char *)e->key : g->keys + e->key_off;
}
/* 1: inserted (or already there), 0: no room in this generation or not cacheable. Single writer only. */
int st_gen_insert(st_gen *g, const st_key *k, const int32_t *ids, size_t n_ids);
/* Insert without the cacheability limits, into a generation whose arenas were sized for it (the overlay). */
int st_gen_insert_any(st_gen *g, const st_key *k, const int32_t *ids, size_t n_ids);
/* Make room in g's arenas for `key_bytes` more key bytes and `n_ids` more ids (the overlay only). */
int st_gen_reserve(st_gen *g, size_t key_bytes, size_t n_ids);

/* ------------------------------------------------------------------ tokenizer plan */

enum st_mode {
    ST_MODE_WHITESPACE = 0, /* WhitespaceSplit: a key is a whitespace-free chunk */
    ST_MODE_BERT = 1,       /* BertPreTokenizer: words and single punctuation characters */
    ST_MODE_WORDS = 2,      /* Whitespace: runs of \w and runs of other non-space characters */
    ST_MODE_METASPACE = 3,  /* Metaspace(split=True): " word" or " " */
    ST_MODE_LLAMA = 4,      /* no pre-tokenizer, Prepend + Replace: words between single spaces */
    ST_MODE_NONE = 5        /* no fast path: every text goes to the Hugging Face tokenizer */
};

#define ST_MAX_NORM 8 /* longest normaliser output of one ASCII character */
#define ST_MAX_SUBS 64

typedef struct {
    int mode;
    int prepend_space;
    uint8_t norm_len[128];
    char norm_out[128][ST_MAX_NORM];
    uint8_t special[256];        /* a raw substring starts with this byte */
    int unicode_chunks;          /* non-ASCII text: split at boundary bytes, a non-ASCII chunk is one key */
    uint8_t boundary[128];       /* ASCII bytes that separate independent chunks (normalised to whitespace) */
    int n_raw, n_norm;
    char *raw[ST_MAX_SUBS];
    size_t raw_len[ST_MAX_SUBS];
    char *norm[ST_MAX_SUBS];
    size_t norm_len_sub[ST_MAX_SUBS];
    /* token rules */
    Py_ssize_t char_limit;       /* -1: none */
    Py_ssize_t max_length;       /* -1: none */
    int truncate_left;
    int32_t unk_id;              /* -1: none */
    int drop_unknown;
    int64_t n_valid_ids;         /* ids must be in [0, n_valid_ids) */
} st_plan;

/* ------------------------------------------------------------------ pooling */

enum st_dtype { ST_F32 = 0, ST_F16 = 1, ST_F64 = 2, ST_I8 = 3 };
/* Each reference family's pooling arithmetic (pooling.ARITHMETICS; st_pool_text) */
enum st_arithmetic { ST_ARITH_MODEL2VEC = 0, ST_ARITH_ST = 1 };

typedef struct {
    const void *table;
    int dtype;
    Py_ssize_t rows, dim;
    const int64_t *mapping;   /* or NULL */
    const void *weights;      /* or NULL */
    int weights_dtype;        /* ST_F32 or ST_F64 */
    int acc64;                /* accumulate in double */
    int arithmetic;           /* enum st_arithmetic */
    int normalize;
    int weight_sum;           /* denominator: 0 count, 1 sum of weights */
} st_pool;

/* Pool ids[0:n] into out[0:dim]; scratch: at least 2 * dim doubles. Returns 0, or 1 when the text's sum,
 * mean or norm overflowed to Inf / NaN (the caller raises: a wrong vector is never returned). */
int st_pool_text(const st_pool *p, const int32_t *ids, Py_ssize_t n, float *out, double *scratch);

void st_pool_init(void);
float st_f16_to_f32(uint16_t h);
uint16_t st_f32_to_f16(float f);
/* x[d] -> nearest float16 (ties to even) -> float32, in place (F16C where the CPU has it; same results) */
void st_round_f16_row(float *x, Py_ssize_t dim);
float st_pairwise_f32(const float *a, Py_ssize_t n);

/* ------------------------------------------------------------------ tokenization of one text */

/* Growable buffers. `borrowed`: data points at memory the buffer does not own (e.g. on the stack);
 * the first growth copies it to the heap. */
typedef struct {
    int32_t *data;
    size_t len, cap;
    int borrowed;
} st_ibuf;

typedef struct {
    char *data;
    size_t len, cap;
    int borrowed;
} st_cbuf;

void st_ibuf_free(st_ibuf *b);
void st_cbuf_free(st_cbuf *b);

typedef struct {
    uint32_t off, len;
} st_span;

typedef struct {
    st_span *data;
    size_t len, cap;
} st_spans;

int st_ibuf_reserve(st_ibuf *b, size_t extra); /* buf.c */
int st_cbuf_reserve(st_cbuf *b, size_t extra);
int st_spans_push(st_spans *s, uint32_t off, uint32_t len);

/* ST_STOP: a signal handler raised (Ctrl-C): the call stops at the next check. ST_DONE (batch.c): a text's
 * vector is written already. */
enum st_status { ST_OK = 0, ST_MISS = 1, ST_HF = 2, ST_NOMEM = 3, ST_STOP = 4, ST_DONE = 5 };

typedef struct {
    st_cbuf norm;      /* the normalised text */
    st_cbuf misskeys;  /* bytes of missed keys (collected when misses != NULL) */
    st_spans misses;
} st_scratch;

/* Tokenize one ASCII text into ids (appended to out, token rules applied). Lookups try `gen`, then
 * `overlay` (may be NULL). On ST_MISS nothing is appended to out, and the missed keys are added to
 * scratch->misses when collect is set. */
int st_tokenize_text(const st_plan *plan, const st_gen *gen, const st_gen *overlay, const char *text,
                     Py_ssize_t len, int is_ascii, st_ibuf *out, st_scratch *scratch, int collect);
/* The byte length of text[0:len] after the plan's character cut (char_limit characters). */
Py_ssize_t st_cut_bytes(const st_plan *plan, const char *text, Py_ssize_t len, int ascii);
/* Apply truncation and unknown-token removal to ids[0:n] in place; returns the new length. */
Py_ssize_t st_apply_rules(const st_plan *plan, int32_t *ids, Py_ssize_t n);
void st_scratch_free(st_scratch *s);

/* ------------------------------------------------------------------ threads */

/* Ctrl-C during a long native call: the calling thread (it released the GIL into `ts`) takes the GIL back
 * briefly every ST_POLL_MS to run pending signal handlers; when one raises, `stop` is set and every thread
 * stops at its next check (parts and long texts check it), and the caller returns with the exception. */
#define ST_POLL_MS 20
typedef struct st_interrupt_s {
    PyThreadState *ts;
    pthread_t caller;      /* the calling thread */
    atomic_int stop;
    int64_t next_ns;       /* caller only: when it checks next */
} st_interrupt;

/* Release the GIL into it (the calling thread), and take it back. */
void st_interrupt_begin(st_interrupt *it);
void st_interrupt_end(st_interrupt *it);
/* 1 when the call must stop. Cheap: the calling thread looks at the clock, the others at the flag. */
int st_interrupt_poll(st_interrupt *it);

typedef void (*st_task_fn)(void *ctx, int part, int n_parts);
/* Run fn(ctx, part, n_parts) for every part in [0, n_parts), on up to n_threads threads (the caller and
 * the persistent pool's workers), each part exactly once (parts are skipped once `it` says stop; it may be
 * NULL). A caller that waits for the workers keeps polling `it`. Returns 0. */
int st_run_parallel(st_task_fn fn, void *ctx, int n_parts, int n_threads, st_interrupt *it);

/* st_pool_text, looking for Ctrl-C between segments of a long text (it may be NULL): 2 when told to stop. */
int st_pool_text_poll(const st_pool *p, const int32_t *ids, Py_ssize_t n, float *out, double *scratch, st_interrupt *it);

#endif
