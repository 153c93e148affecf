/*
 * One Kernel call on a batch (Kernel.embed / Kernel.tokenize; Kernel.embed_one for a text that misses).
 * The batch is cut into chunks of bounded memory; each chunk runs in phases:
 *   A  (GIL released, texts split over threads)  tokenize every text; collect the keys missing from the
 *      word table and the texts the fast rules do not cover;
 *   -  (GIL held)  missing keys go to Python once (resolve), are inserted into the word table and into a
 *      per-call overlay; uncovered texts go to the Hugging Face tokenizer once (fallback);
 *   B  (GIL released, the same split)  re-tokenize texts that missed, apply the token rules to fallback
 *      ids, and pool every text into its output row.
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
    st_ibuf ids;       /* phase A: ids of the texts that were found */
    st_ibuf work;      /* phase B: ids of one text being re-tokenized or taken from the fallback */
    st_scratch scratch;
    int nomem, bad;    /* bad: a re-tokenized text still missed (never expected) */
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
} st_batch;

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
    pt->overflow = -1;
    for (Py_ssize_t i = b->bounds[part]; i < b->bounds[part + 1]; i++) {
        const int32_t *ids;
        Py_ssize_t n;
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
            if (st_pool_text(&k->pool, ids, n, b->out + (size_t)i * (size_t)dim, scratch) && pt->overflow < 0)
                pt->overflow = i;
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

/* Missing keys: resolve them in Python once, insert into the shared table and the call's overlay. */
static st_gen *resolve_misses(KernelObject *k, st_part *parts, int n_parts) {
    size_t total = 0;
    for (int p = 0; p < n_parts; p++) total += parts[p].scratch.misses.len;
    if (!total) return NULL;
    st_gen *seen = st_gen_new((uint32_t)(total < 16 ? 16 : total));
    PyObject *keys = PyList_New(0);
    if (!seen || !keys) {
        st_gen_decref(seen);
        Py_XDECREF(keys);
        PyErr_NoMemory();
        return (st_gen *)-1;
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
                return (st_gen *)-1;
            }
            PyObject *str = PyUnicode_DecodeUTF8(key, (Py_ssize_t)len, "strict");
            if (!str || PyList_Append(keys, str) < 0) {
                Py_XDECREF(str);
                Py_DECREF(keys);
                st_gen_decref(seen);
                return (st_gen *)-1;
            }
            Py_DECREF(str);
        }
    }
    st_gen_decref(seen);
    Py_ssize_t n_keys = PyList_GET_SIZE(keys);
    PyObject *result = PyObject_CallOneArg(k->resolve, keys);
    if (!result) {
        Py_DECREF(keys);
        return (st_gen *)-1;
    }
    PyObject *fast = PySequence_Fast(result, "resolve must return a sequence of id sequences");
    Py_DECREF(result);
    if (!fast) {
        Py_DECREF(keys);
        return (st_gen *)-1;
    }
    if (PySequence_Fast_GET_SIZE(fast) != n_keys) {
        PyErr_SetString(PyExc_ValueError, "resolve returned a different number of entries than keys");
        goto fail;
    }
    st_gen *overlay = st_gen_new((uint32_t)(n_keys < 16 ? 16 : n_keys));
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
    return overlay;
fail_overlay:
    free(tmp.data);
    st_gen_decref(overlay);
fail:
    Py_DECREF(fast);
    Py_DECREF(keys);
    return (st_gen *)-1;
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

/* Read the texts of a list: pointers to their (ASCII) data, with a reference held on each. */
static PyObject **read_texts(PyObject *seq, Py_ssize_t *n_out, st_text **texts_out) {
    PyObject *fast = PySequence_Fast(seq, "texts must be a list of str");
    if (!fast) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    PyObject **objs = malloc(sizeof(PyObject *) * (size_t)(n ? n : 1));
    st_text *texts = malloc(sizeof(st_text) * (size_t)(n ? n : 1));
    if (!objs || !texts) {
        free(objs);
        free(texts);
        Py_DECREF(fast);
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *o = PySequence_Fast_GET_ITEM(fast, i);
        if (!PyUnicode_Check(o)) {
            PyErr_Format(PyExc_TypeError, "texts must all be str; item %zd is %.100s", i, Py_TYPE(o)->tp_name);
            for (Py_ssize_t j = 0; j < i; j++) Py_DECREF(objs[j]);
            free(objs);
            free(texts);
            Py_DECREF(fast);
            return NULL;
        }
        Py_INCREF(o);
        objs[i] = o;
        if (PyUnicode_IS_ASCII(o)) {
            texts[i].data = (const char *)PyUnicode_1BYTE_DATA(o);
            texts[i].len = PyUnicode_GET_LENGTH(o);
            texts[i].ascii = 1;
        } else { /* UTF-8 (cached in the str); NULL for text that is not valid Unicode: the fallback names it */
            Py_ssize_t size = 0;
            texts[i].data = PyUnicode_AsUTF8AndSize(o, &size);
            if (!texts[i].data) PyErr_Clear();
            texts[i].len = size;
            texts[i].ascii = 0;
        }
    }
    Py_DECREF(fast);
    *n_out = n;
    *texts_out = texts;
    return objs;
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
    st_batch b = {.k = k, .texts = texts, .n = n, .bounds = bounds, .parts = parts, .status = status,
                  .off = off, .cnt = cnt, .gen = gen, .out = out, .collect_ids = ids_acc != NULL,
                  .final_cnt = final_cnt};
    Py_ssize_t bytes = 0;
    for (Py_ssize_t i = 0; i < n; i++) bytes += texts[i].len;
    int release = bytes >= 4096 || n_parts > 1;
    if (release) {
        Py_BEGIN_ALLOW_THREADS st_run_parallel(phase_a, &b, n_parts, k->threads);
        Py_END_ALLOW_THREADS
    } else {
        phase_a(&b, 0, 1);
    }
    for (int p = 0; p < n_parts; p++)
        if (parts[p].nomem) {
            PyErr_NoMemory();
            goto done;
        }
    overlay = resolve_misses(k, parts, n_parts);
    if (overlay == (st_gen *)-1) {
        overlay = NULL;
        goto done;
    }
    b.overlay = overlay;
    if (run_fallback(k, objs, status, n, base, &fb) < 0) goto done;
    if (fb.ids) {
        b.hf_ids = PyArray_DATA((PyArrayObject *)fb.ids);
        b.hf_offsets = PyArray_DATA((PyArrayObject *)fb.offsets);
        b.hf_slot = fb.slot;
    }
    if (release) {
        Py_BEGIN_ALLOW_THREADS st_run_parallel(phase_b, &b, n_parts, k->threads);
        Py_END_ALLOW_THREADS
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
    Py_ssize_t n;
    st_text *texts;
    PyObject **objs = read_texts(seq, &n, &texts);
    if (!objs) return -1;
    int rc = -1;
    st_ibuf ids_acc = {0};
    int32_t *final_cnt = ids_out ? malloc(sizeof(int32_t) * (size_t)(n ? n : 1)) : NULL;
    if (ids_out && !final_cnt) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t lo = 0; lo < n || (lo == 0 && n == 0);) {
        Py_ssize_t hi = lo, bytes = 0;
        while (hi < n && hi - lo < ST_CHUNK_TEXTS && (bytes < ST_CHUNK_BYTES || hi == lo)) bytes += texts[hi++].len;
        if (n &&
            run_chunk(k, objs + lo, texts + lo, hi - lo, lo, out ? out + (size_t)lo * (size_t)k->pool.dim : NULL,
                      ids_out ? &ids_acc : NULL, ids_out ? final_cnt + lo : NULL, tokens) < 0)
            goto done;
        if (n == 0) break;
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
    for (Py_ssize_t i = 0; i < n; i++) Py_DECREF(objs[i]);
    free(objs);
    free(texts);
    st_ibuf_free(&ids_acc);
    free(final_cnt);
    return rc;
}
