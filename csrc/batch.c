/*
 * One Kernel call on a batch (Kernel.embed / Kernel.tokenize; Kernel.embed_one for a text that misses).
 * The batch is cut into chunks of bounded memory; each chunk runs in phases.
 *
 * With a native pipeline (pipeline.h):
 *   N  (GIL released, texts split over threads)  tokenize every text natively (a word missing from the word
 *      table is tokenized by the model in the thread and kept in the thread's overlay), apply the token
 *      rules and pool it into its output row; texts the pipeline sends down the slow path are marked;
 *   -  (GIL held)  the threads' new words go into the word table (one writer, parts in order); marked texts
 *      go to the Hugging Face tokenizer once (fallback);
 *   B  (only for marked texts, or to collect ids)  apply the token rules to fallback ids and pool.
 *
 * With the word-cache plan (no native model or normaliser):
 *   A  (GIL released, texts split over threads)  tokenize every text; collect the keys missing from the
 *      word table and the texts the fast rules do not cover;
 *   -  (GIL held)  missing keys go to Python once (resolve), are inserted into the word table and into a
 *      per-call overlay; uncovered texts go to the Hugging Face tokenizer once (fallback);
 *   B  (GIL released, the same split)  re-tokenize texts that missed, apply the token rules to fallback
 *      ids, and pool every text into its output row.
 *
 * A long call answers Ctrl-C: while the GIL is released the calling thread takes it back every ST_POLL_MS to
 * run pending signal handlers (threads.c); when one raises, every thread stops at its next check.
 * What comes back from Python (resolved ids, fallback arrays) is checked here: dtypes, shapes, id ranges.
 */
#include "kernel.h"
#include "objects.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *data;
    Py_ssize_t len;
    int ascii;
} st_text;

typedef struct {
    st_ibuf ids;       /* phase A / N: ids of the texts that were found */
    st_ibuf work;      /* phase B: ids of one text being re-tokenized or taken from the fallback */
    st_scratch scratch;
    st_pipe_scratch pipe;
    int nomem, bad;    /* bad: a re-tokenized text still missed (never expected) */
    Py_ssize_t bad_text; /* phase N: the text whose ids fell outside the table, or -1 */
    int64_t tokens;    /* ids pooled by this part */
    Py_ssize_t overflow; /* the first text whose vector overflowed, or -1 */
} st_part;

typedef struct {
    KernelObject *k;
    const st_text *texts;
    Py_ssize_t n;
    const Py_ssize_t *bounds;  /* part p handles texts [bounds[p], bounds[p + 1]) */
    st_part *parts;
    uint8_t *status;
    int64_t *off;              /* phase A: start in the part's id buffer */
    int32_t *cnt;
    const st_gen *gen, *overlay;
    /* fallback ids (phase B) */
    const int32_t *hf_ids;
    const int64_t *hf_offsets;
    const Py_ssize_t *hf_slot; /* text -> index among fallback texts, or -1 */
    /* phase B output */
    float *out;
    int collect_ids;           /* instead of pooling, leave each part's final ids in parts[p].ids */
    int32_t *final_cnt;
    st_interrupt *intr;        /* or NULL (the GIL is held) */
} st_batch;

/* Texts between two looks at the clock (phase N): a long run of short texts still answers Ctrl-C. */
#define ST_POLL_BYTES (1 << 16)

static void phase_n(void *ctx, int part, int n_parts) {
    st_batch *b = (st_batch *)ctx;
    st_part *pt = &b->parts[part];
    KernelObject *k = b->k;
    Py_ssize_t dim = k->pool.dim;
    double *scratch = NULL;
    pt->overflow = pt->bad_text = -1;
    pt->pipe.intr = b->intr;
    pt->pipe.id_limit = k->plan.n_valid_ids;
    if (!b->collect_ids) {
        scratch = malloc(sizeof(double) * (size_t)(2 * dim));
        if (!scratch) {
            pt->nomem = 1;
            return;
        }
    }
    size_t since = 0;
    for (Py_ssize_t i = b->bounds[part]; i < b->bounds[part + 1]; i++) {
        const st_text *t = &b->texts[i];
        b->status[i] = ST_HF;
        since += (size_t)t->len + 64;
        if (b->intr && since >= ST_POLL_BYTES) {
            since = 0;
            if (st_interrupt_poll(b->intr)) break;
        }
        size_t before = b->collect_ids ? pt->ids.len : 0;
        pt->ids.len = before;
        int s = st_pipe_text(k->pipe, b->gen, t->data, (size_t)st_cut_bytes(&k->plan, t->data, t->len, t->ascii), t->ascii,
                             &pt->ids, &pt->pipe);
        if (s == ST_STOP) break;
        if (s == ST_NOMEM) pt->nomem = 1;
        if (s == ST_BADID && pt->bad_text < 0) pt->bad_text = i;
        if (s != ST_OK) continue;
        Py_ssize_t n = st_apply_rules(&k->plan, pt->ids.data + before, (Py_ssize_t)(pt->ids.len - before));
        pt->ids.len = before + (size_t)n;
        if (b->collect_ids) {
            b->status[i] = ST_OK;
            b->off[i] = (int64_t)before;
            b->cnt[i] = (int32_t)n;
        } else {
            int r = st_pool_text_poll(&k->pool, pt->ids.data, n, b->out + (size_t)i * (size_t)dim, scratch, b->intr);
            if (r == 2) break;
            if (r && pt->overflow < 0) pt->overflow = i;
            pt->tokens += n;
            b->status[i] = ST_DONE;
        }
    }
    free(scratch);
}

/* The words the threads tokenized (parts in order), into the shared word table: -1 on out of memory. */
static int keep_new_words(KernelObject *k, st_part *parts, int n_parts) {
    for (int p = 0; p < n_parts; p++)
        if (st_wordtable_take(k->words, &parts[p].pipe.fresh) < 0) return -1;
    return 0;
}

static void phase_a(void *ctx, int part, int n_parts) {
    st_batch *b = (st_batch *)ctx;
    st_part *pt = &b->parts[part];
    for (Py_ssize_t i = b->bounds[part]; i < b->bounds[part + 1]; i++) {
        size_t before = pt->ids.len;
        int s = st_tokenize_text(&b->k->plan, b->gen, NULL, b->texts[i].data, b->texts[i].len, b->texts[i].ascii,
                                 &pt->ids, &pt->scratch, 1);
        if (s == ST_NOMEM) {
            pt->nomem = 1;
            s = ST_HF;
        }
        b->status[i] = (uint8_t)s;
        b->off[i] = (int64_t)before;
        b->cnt[i] = (int32_t)(pt->ids.len - before);
    }
}

static void phase_b(void *ctx, int part, int n_parts) {
    st_batch *b = (st_batch *)ctx;
    st_part *pt = &b->parts[part];
    KernelObject *k = b->k;
    Py_ssize_t dim = k->pool.dim;
    double *scratch = NULL;
    if (!b->collect_ids) {
        scratch = malloc(sizeof(double) * (size_t)(2 * dim));
        if (!scratch) {
            pt->nomem = 1;
            return;
        }
    }
    st_ibuf final = {0};
    for (Py_ssize_t i = b->bounds[part]; i < b->bounds[part + 1]; i++) {
        const int32_t *ids;
        Py_ssize_t n;
        if (b->status[i] == ST_DONE) continue; /* pooled in phase N */
        if (b->status[i] == ST_OK) {
            ids = pt->ids.data + b->off[i];
            n = b->cnt[i];
        } else if (b->status[i] == ST_MISS) {
            pt->work.len = 0;
            int s = st_tokenize_text(&k->plan, b->gen, b->overlay, b->texts[i].data, b->texts[i].len, b->texts[i].ascii, &pt->work,
                                     &pt->scratch, 0);
            if (s != ST_OK) {
                if (s == ST_NOMEM) pt->nomem = 1;
                else pt->bad = 1;
                pt->work.len = 0;
            }
            ids = pt->work.data;
            n = (Py_ssize_t)pt->work.len;
        } else {
            Py_ssize_t slot = b->hf_slot[i];
            int64_t a = b->hf_offsets[slot], z = b->hf_offsets[slot + 1];
            pt->work.len = 0;
            if (st_ibuf_reserve(&pt->work, (size_t)(z - a))) {
                pt->nomem = 1;
                continue;
            }
            if (z > a) memcpy(pt->work.data, b->hf_ids + a, (size_t)(z - a) * sizeof(int32_t));
            n = st_apply_rules(&k->plan, pt->work.data, (Py_ssize_t)(z - a));
            ids = pt->work.data;
        }
        if (b->collect_ids) {
            b->final_cnt[i] = (int32_t)n;
            if (st_ibuf_reserve(&final, (size_t)n)) {
                pt->nomem = 1;
                continue;
            }
            if (n) memcpy(final.data + final.len, ids, (size_t)n * sizeof(int32_t));
            final.len += (size_t)n;
        } else {
            int r = st_pool_text_poll(&k->pool, ids, n, b->out + (size_t)i * (size_t)dim, scratch, b->intr);
            if (r == 2) break;
            if (r && pt->overflow < 0) pt->overflow = i;
            pt->tokens += n;
        }
    }
    free(scratch);
    if (b->collect_ids) {
        st_ibuf_free(&pt->ids);
        pt->ids = final;
    }
}

int st_check_ids(const int32_t *ids, int64_t n, int64_t limit) {
    for (int64_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= limit) {
            PyErr_Format(PyExc_ValueError, "token id %d at position %lld is outside the table's ids 0..%lld", (int)ids[i],
                         (long long)i, (long long)(limit - 1));
            return -1;
        }
    return 0;
}

/* A word table's capacity for n entries (at least 16), or 0 with a MemoryError past what one can index. */
static uint32_t gen_capacity(size_t n) {
    if (n > (size_t)(UINT32_MAX / 4)) {
        PyErr_Format(PyExc_MemoryError, "staticst kernel: %zu distinct new words in one call is past the word table's size", n);
        return 0;
    }
    return (uint32_t)(n < 16 ? 16 : n);
}

/* Missing keys: resolve them in Python once, insert into the shared table and the call's overlay (*out; NULL
 * when nothing was missing). 0, or -1 with an exception set. */
static int resolve_misses(KernelObject *k, st_part *parts, int n_parts, st_gen **out) {
    *out = NULL;
    size_t total = 0;
    for (int p = 0; p < n_parts; p++) total += parts[p].scratch.misses.len;
    if (!total) return 0;
    if (!k->resolve) {
        PyErr_SetString(PyExc_RuntimeError, "staticst kernel: this kernel was cleared by the garbage collector");
        return -1;
    }
    uint32_t capacity = gen_capacity(total);
    if (!capacity) return -1;
    st_gen *seen = st_gen_new(capacity);
    PyObject *keys = PyList_New(0);
    if (!seen || !keys) {
        st_gen_decref(seen);
        Py_XDECREF(keys);
        PyErr_NoMemory();
        return -1;
    }
    for (int p = 0; p < n_parts; p++) {
        st_scratch *s = &parts[p].scratch;
        for (size_t m = 0; m < s->misses.len; m++) {
            const char *key = s->misskeys.data + s->misses.data[m].off;
            size_t len = s->misses.data[m].len;
            st_key sk;
            st_key_make(&sk, key, len);
            if (st_gen_find(seen, &sk)) continue;
            if (st_gen_reserve(seen, len, 0) < 0 || st_gen_insert_any(seen, &sk, NULL, 0) != 1) {
                PyErr_NoMemory();
                Py_DECREF(keys);
                st_gen_decref(seen);
                return -1;
            }
            PyObject *str = PyUnicode_DecodeUTF8(key, (Py_ssize_t)len, "strict");
            if (!str || PyList_Append(keys, str) < 0) {
                Py_XDECREF(str);
                Py_DECREF(keys);
                st_gen_decref(seen);
                return -1;
            }
            Py_DECREF(str);
        }
    }
    st_gen_decref(seen);
    Py_ssize_t n_keys = PyList_GET_SIZE(keys);
    PyObject *result = PyObject_CallOneArg(k->resolve, keys);
    if (!result) {
        Py_DECREF(keys);
        return -1;
    }
    PyObject *fast = PySequence_Fast(result, "resolve must return a sequence of id sequences");
    Py_DECREF(result);
    if (!fast) {
        Py_DECREF(keys);
        return -1;
    }
    if (PySequence_Fast_GET_SIZE(fast) != n_keys) {
        PyErr_SetString(PyExc_ValueError, "resolve returned a different number of entries than keys");
        goto fail;
    }
    st_gen *overlay = st_gen_new(capacity); /* n_keys <= total */
    if (!overlay) {
        PyErr_NoMemory();
        goto fail;
    }
    st_ibuf tmp = {0};
    for (Py_ssize_t i = 0; i < n_keys; i++) {
        PyObject *key = PyList_GET_ITEM(keys, i);
        Py_ssize_t len;
        const char *kb = PyUnicode_AsUTF8AndSize(key, &len);
        PyObject *idseq = PySequence_Fast(PySequence_Fast_GET_ITEM(fast, i), "each resolved entry must be a sequence");
        if (!kb || !idseq) {
            Py_XDECREF(idseq);
            goto fail_overlay;
        }
        Py_ssize_t m = PySequence_Fast_GET_SIZE(idseq);
        tmp.len = 0;
        if (st_ibuf_reserve(&tmp, (size_t)m) || st_gen_reserve(overlay, (size_t)len, (size_t)m)) {
            Py_DECREF(idseq);
            PyErr_NoMemory();
            goto fail_overlay;
        }
        for (Py_ssize_t j = 0; j < m; j++) {
            long v = PyLong_AsLong(PySequence_Fast_GET_ITEM(idseq, j));
            if (v == -1 && PyErr_Occurred()) {
                Py_DECREF(idseq);
                goto fail_overlay;
            }
            if (v < 0 || v >= k->plan.n_valid_ids) {
                PyErr_Format(PyExc_ValueError,
                             "the tokenizer produced token id %ld for the word %R, but the table has ids 0..%lld "
                             "only: the tokenizer and the table belong to different models",
                             v, key, (long long)(k->plan.n_valid_ids - 1));
                Py_DECREF(idseq);
                goto fail_overlay;
            }
            tmp.data[j] = (int32_t)v;
        }
        Py_DECREF(idseq);
        st_key sk;
        st_key_make(&sk, kb, (size_t)len);
        if (st_gen_insert_any(overlay, &sk, tmp.data, (size_t)m) != 1) {
            PyErr_SetString(PyExc_RuntimeError, "staticst kernel: the call's word overlay is full (please report)");
            goto fail_overlay;
        }
        if (st_wordtable_insert(k->words, &sk, tmp.data, (size_t)m) < 0) {
            PyErr_NoMemory();
            goto fail_overlay;
        }
    }
    free(tmp.data);
    Py_DECREF(fast);
    Py_DECREF(keys);
    *out = overlay;
    return 0;
fail_overlay:
    free(tmp.data);
    st_gen_decref(overlay);
fail:
    Py_DECREF(fast);
    Py_DECREF(keys);
    return -1;
}

typedef struct {
    PyObject *ids, *offsets; /* held while phase B reads them */
    Py_ssize_t *slot;
} st_fallback;

/* Texts the fast rules do not cover: one call of the Python fallback (the Hugging Face tokenizer). */
static int run_fallback(KernelObject *k, PyObject *const *objs, const uint8_t *status, Py_ssize_t n,
                        Py_ssize_t base, st_fallback *fb) {
    fb->ids = fb->offsets = NULL;
    fb->slot = NULL;
    Py_ssize_t m = 0;
    for (Py_ssize_t i = 0; i < n; i++) m += status[i] == ST_HF;
    if (!m) return 0;
    fb->slot = malloc(sizeof(Py_ssize_t) * (size_t)n);
    PyObject *list = PyList_New(m);
    if (!fb->slot || !list) {
        Py_XDECREF(list);
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t j = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (status[i] == ST_HF) {
            fb->slot[i] = j;
            Py_INCREF(objs[i]);
            PyList_SET_ITEM(list, j, objs[i]);
            j++;
        } else {
            fb->slot[i] = -1;
        }
    }
    if (!k->fallback) {
        Py_DECREF(list);
        PyErr_SetString(PyExc_RuntimeError, "staticst kernel: this kernel was cleared by the garbage collector");
        return -1;
    }
    PyObject *res = PyObject_CallOneArg(k->fallback, list);
    Py_DECREF(list);
    if (!res) return -1;
    if (!PyTuple_Check(res) || PyTuple_GET_SIZE(res) != 2) {
        Py_DECREF(res);
        PyErr_SetString(PyExc_TypeError, "fallback must return (ids int32 array, offsets int64 array)");
        return -1;
    }
    PyObject *ids = PyTuple_GET_ITEM(res, 0), *offsets = PyTuple_GET_ITEM(res, 1);
    if (!PyArray_Check(ids) || PyArray_TYPE((PyArrayObject *)ids) != NPY_INT32 ||
        PyArray_NDIM((PyArrayObject *)ids) != 1 || !PyArray_IS_C_CONTIGUOUS((PyArrayObject *)ids) ||
        !PyArray_Check(offsets) || PyArray_TYPE((PyArrayObject *)offsets) != NPY_INT64 ||
        PyArray_NDIM((PyArrayObject *)offsets) != 1 || !PyArray_IS_C_CONTIGUOUS((PyArrayObject *)offsets) ||
        PyArray_DIM((PyArrayObject *)offsets, 0) != m + 1) {
        Py_DECREF(res);
        PyErr_SetString(PyExc_TypeError, "fallback must return a C-contiguous int32 id array and m + 1 int64 offsets");
        return -1;
    }
    const int64_t *off = PyArray_DATA((PyArrayObject *)offsets);
    int64_t total = PyArray_DIM((PyArrayObject *)ids, 0);
    if (off[0] != 0 || off[m] != total) goto bad_offsets;
    for (Py_ssize_t i = 0; i < m; i++)
        if (off[i + 1] < off[i]) goto bad_offsets;
    const int32_t *idd = PyArray_DATA((PyArrayObject *)ids);
    for (Py_ssize_t t = 0; t < n; t++) {
        Py_ssize_t i = fb->slot[t];
        if (i < 0) continue;
        for (int64_t q = off[i]; q < off[i + 1]; q++)
            if (idd[q] < 0 || idd[q] >= k->plan.n_valid_ids) {
                PyErr_Format(PyExc_ValueError,
                             "the tokenizer produced token id %d for input %zd, but the table has ids 0..%lld only: "
                             "the tokenizer and the table belong to different models",
                             (int)idd[q], t + base, (long long)(k->plan.n_valid_ids - 1));
                Py_DECREF(res);
                return -1;
            }
    }
    Py_INCREF(ids);
    Py_INCREF(offsets);
    fb->ids = ids;
    fb->offsets = offsets;
    Py_DECREF(res);
    return 0;
bad_offsets:
    Py_DECREF(res);
    PyErr_SetString(PyExc_ValueError, "fallback returned offsets that are not 0..len(ids), non-decreasing");
    return -1;
}

/* Split n texts into at most `want` parts of about equal bytes; returns the number of parts. */
static int split_parts(const st_text *texts, Py_ssize_t n, int want, Py_ssize_t min_bytes, Py_ssize_t *bounds) {
    Py_ssize_t total = 0;
    for (Py_ssize_t i = 0; i < n; i++) total += texts[i].len + 8;
    int parts = want;
    if (parts > n) parts = (int)(n > 0 ? n : 1);
    if (total < min_bytes * parts) parts = (int)(total / min_bytes);
    if (parts < 1) parts = 1;
    bounds[0] = 0;
    Py_ssize_t acc = 0, i = 0;
    for (int p = 1; p < parts; p++) {
        Py_ssize_t goal = total * p / parts;
        while (i < n && acc < goal) acc += texts[i++].len + 8;
        bounds[p] = i;
    }
    bounds[parts] = n;
    return parts;
}

/* Read texts [lo, ...) of a list, up to a chunk's worth: a pointer to each one's data (ASCII, or the UTF-8 the
 * str caches), with a reference held on each (other Python threads may change the list meanwhile). Returns
 * the end of the chunk, or -1 with an exception set (and no reference held). */
static Py_ssize_t read_chunk(PyObject *fast, Py_ssize_t lo, Py_ssize_t n, Py_ssize_t max_texts, Py_ssize_t max_bytes,
                             PyObject **objs, st_text *texts) {
    if (PySequence_Fast_GET_SIZE(fast) != n) {
        PyErr_Format(PyExc_RuntimeError, "the list of texts changed size during the call (%zd, now %zd items)", n,
                     PySequence_Fast_GET_SIZE(fast));
        return -1;
    }
    Py_ssize_t hi = lo, bytes = 0;
    while (hi < n && hi - lo < max_texts && (bytes < max_bytes || hi == lo)) {
        PyObject *o = PySequence_Fast_GET_ITEM(fast, hi);
        if (!PyUnicode_Check(o)) {
            PyErr_Format(PyExc_TypeError, "texts must all be str; item %zd is %.100s", hi, Py_TYPE(o)->tp_name);
            for (Py_ssize_t j = 0; j < hi - lo; j++) Py_DECREF(objs[j]);
            return -1;
        }
        Py_INCREF(o);
        st_text *t = &texts[hi - lo];
        objs[hi - lo] = o;
        if (PyUnicode_IS_ASCII(o)) {
            t->data = (const char *)PyUnicode_1BYTE_DATA(o);
            t->len = PyUnicode_GET_LENGTH(o);
            t->ascii = 1;
        } else { /* UTF-8 (cached in the str); NULL for text that is not valid Unicode: the fallback names it */
            Py_ssize_t size = 0;
            t->data = PyUnicode_AsUTF8AndSize(o, &size);
            if (!t->data) PyErr_Clear();
            t->len = size;
            t->ascii = 0;
        }
        bytes += t->len;
        hi++;
    }
    return hi;
}

/* Texts per chunk of a batch, and text bytes per chunk: the memory a call holds at once is bounded by a
 * chunk (ids, statuses, misses), not by the batch. */
#define ST_CHUNK_TEXTS 65536
#define ST_CHUNK_BYTES ((Py_ssize_t)4 << 20)

/* One chunk of a batch: pool into out (n x dim), or append the final ids to ids_acc and their counts. */
static int run_chunk(KernelObject *k, PyObject *const *objs, const st_text *texts, Py_ssize_t n, Py_ssize_t base,
                     float *out, st_ibuf *ids_acc, int32_t *final_cnt, int64_t *tokens) {
    int rc = -1;
    /* more parts than threads: a thread that is descheduled delays one small part, not half the call */
    int want = k->threads > 1 ? 4 * k->threads : 1;
    Py_ssize_t *bounds = malloc(sizeof(Py_ssize_t) * (size_t)(want + 1));
    st_part *parts = calloc((size_t)want, sizeof(st_part));
    uint8_t *status = malloc((size_t)(n ? n : 1));
    int64_t *off = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    int32_t *cnt = malloc(sizeof(int32_t) * (size_t)(n ? n : 1));
    st_gen *gen = k->words->current;
    st_gen_incref(gen);
    st_gen *overlay = NULL;
    st_fallback fb = {0};
    int n_parts = 0;
    if (!bounds || !parts || !status || !off || !cnt) {
        PyErr_NoMemory();
        goto done;
    }
    n_parts = split_parts(texts, n, want, k->parallel_min_bytes, bounds);
    for (int p = 0; p < n_parts; p++) parts[p].overflow = parts[p].bad_text = -1;
    st_interrupt intr;
    st_batch b = {.k = k, .texts = texts, .n = n, .bounds = bounds, .parts = parts, .status = status,
                  .off = off, .cnt = cnt, .gen = gen, .out = out, .collect_ids = ids_acc != NULL,
                  .final_cnt = final_cnt};
    Py_ssize_t bytes = 0;
    for (Py_ssize_t i = 0; i < n; i++) bytes += texts[i].len;
    int release = bytes >= 4096 || n_parts > 1;
    st_task_fn first = k->pipe ? phase_n : phase_a;
    if (release) {
        b.intr = &intr;
        st_interrupt_begin(&intr);
        st_run_parallel(first, &b, n_parts, k->threads, &intr);
        st_interrupt_end(&intr);
        b.intr = NULL;
        if (atomic_load(&intr.stop)) goto done; /* a signal handler raised: its exception is set */
    } else {
        first(&b, 0, 1);
    }
    for (int p = 0; p < n_parts; p++)
        if (parts[p].nomem) {
            PyErr_NoMemory();
            goto done;
        }
    int need_b = 1;
    if (k->pipe) {
        for (int p = 0; p < n_parts; p++)
            if (parts[p].bad_text >= 0) {
                PyErr_Format(PyExc_ValueError,
                             "the tokenizer produced token id %d for input %zd, but the table has ids 0..%lld only: "
                             "the tokenizer and the table belong to different models",
                             (int)parts[p].pipe.bad_id, parts[p].bad_text + base, (long long)(k->plan.n_valid_ids - 1));
                goto done;
            }
        if (keep_new_words(k, parts, n_parts) < 0) {
            PyErr_NoMemory();
            goto done;
        }
        need_b = ids_acc != NULL;
        for (Py_ssize_t i = 0; i < n && !need_b; i++) need_b = status[i] == ST_HF;
    } else {
        if (resolve_misses(k, parts, n_parts, &overlay) < 0) goto done;
        b.overlay = overlay;
    }
    if (run_fallback(k, objs, status, n, base, &fb) < 0) goto done;
    if (fb.ids) {
        b.hf_ids = PyArray_DATA((PyArrayObject *)fb.ids);
        b.hf_offsets = PyArray_DATA((PyArrayObject *)fb.offsets);
        b.hf_slot = fb.slot;
    }
    if (!need_b) {
    } else if (release) {
        b.intr = &intr;
        st_interrupt_begin(&intr);
        st_run_parallel(phase_b, &b, n_parts, k->threads, &intr);
        st_interrupt_end(&intr);
        b.intr = NULL;
        if (atomic_load(&intr.stop)) goto done;
    } else {
        phase_b(&b, 0, 1);
    }
    for (int p = 0; p < n_parts; p++) {
        if (parts[p].nomem) {
            PyErr_NoMemory();
            goto done;
        }
        if (parts[p].bad) {
            PyErr_SetString(PyExc_RuntimeError, "staticst kernel: a resolved word was not found (please report)");
            goto done;
        }
        if (!ids_acc && parts[p].overflow >= 0) {
            PyErr_Format(PyExc_FloatingPointError,
                         "the vector of input %zd overflowed to Inf/NaN: the table's values are too large to sum "
                         "in float32 for a text this long",
                         parts[p].overflow + base);
            goto done;
        }
        *tokens += parts[p].tokens;
    }
    if (ids_acc)
        for (int p = 0; p < n_parts; p++) {
            if (st_ibuf_reserve(ids_acc, parts[p].ids.len)) {
                PyErr_NoMemory();
                goto done;
            }
            if (parts[p].ids.len)
                memcpy(ids_acc->data + ids_acc->len, parts[p].ids.data, parts[p].ids.len * sizeof(int32_t));
            ids_acc->len += parts[p].ids.len;
        }
    rc = 0;
done:
    if (parts)
        for (int p = 0; p < want; p++) {
            st_ibuf_free(&parts[p].ids);
            st_ibuf_free(&parts[p].work);
            st_scratch_free(&parts[p].scratch);
            st_pipe_scratch_free(&parts[p].pipe);
        }
    free(parts);
    free(bounds);
    free(status);
    free(off);
    free(cnt);
    free(fb.slot);
    Py_XDECREF(fb.ids);
    Py_XDECREF(fb.offsets);
    st_gen_decref(overlay);
    st_gen_decref(gen);
    return rc;
}

/* The whole batch, chunk by chunk: out (n x dim float32) when pooling, else the ids via ids_out / offsets_out. */
int st_run_batch(KernelObject *k, PyObject *seq, float *out, PyObject **ids_out, PyObject **offsets_out,
                 int64_t *tokens) {
    /* texts are read (and referenced) chunk by chunk: a stopped call releases one chunk, not the batch */
    PyObject *fast = PySequence_Fast(seq, "texts must be a list of str");
    if (!fast) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    Py_ssize_t cap = n < ST_CHUNK_TEXTS ? (n ? n : 1) : ST_CHUNK_TEXTS;
    int rc = -1;
    st_ibuf ids_acc = {0};
    PyObject **objs = malloc(sizeof(PyObject *) * (size_t)cap);
    st_text *texts = malloc(sizeof(st_text) * (size_t)cap);
    int32_t *final_cnt = ids_out ? malloc(sizeof(int32_t) * (size_t)(n ? n : 1)) : NULL;
    if (!objs || !texts || (ids_out && !final_cnt)) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t lo = 0; lo < n;) {
        if (lo && PyErr_CheckSignals() < 0) goto done; /* Ctrl-C between chunks */
        Py_ssize_t hi = read_chunk(fast, lo, n, cap, ST_CHUNK_BYTES, objs, texts);
        if (hi < 0) goto done;
        int r = run_chunk(k, objs, texts, hi - lo, lo, out ? out + (size_t)lo * (size_t)k->pool.dim : NULL,
                          ids_out ? &ids_acc : NULL, ids_out ? final_cnt + lo : NULL, tokens);
        for (Py_ssize_t j = 0; j < hi - lo; j++) Py_DECREF(objs[j]);
        if (r < 0) goto done;
        lo = hi;
    }
    if (ids_out) {
        npy_intp total = (npy_intp)ids_acc.len;
        npy_intp nn = n + 1;
        PyObject *ids = PyArray_SimpleNew(1, &total, NPY_INT32);
        PyObject *offsets = PyArray_SimpleNew(1, &nn, NPY_INT64);
        if (!ids || !offsets) {
            Py_XDECREF(ids);
            Py_XDECREF(offsets);
            goto done;
        }
        if (total) memcpy(PyArray_DATA((PyArrayObject *)ids), ids_acc.data, ids_acc.len * sizeof(int32_t));
        int64_t *o = PyArray_DATA((PyArrayObject *)offsets);
        o[0] = 0;
        for (Py_ssize_t i = 0; i < n; i++) o[i + 1] = o[i] + final_cnt[i];
        *ids_out = ids;
        *offsets_out = offsets;
    }
    rc = 0;
done:
    Py_DECREF(fast);
    free(objs);
    free(texts);
    st_ibuf_free(&ids_acc);
    free(final_cnt);
    return rc;
}
