/*
 * The Python face of the kernel: the WordTable and Kernel types and the module staticst._kernel.
 *
 * A Kernel call on a batch runs in phases:
 *   A  (GIL released, texts split over threads)  tokenize every text; collect the keys missing from the
 *      word table and the texts the fast rules do not cover;
 *   -  (GIL held)  missing keys go to Python once (resolve), are inserted into the word table and into a
 *      per-call overlay; uncovered texts go to the Hugging Face tokenizer once (fallback);
 *   B  (GIL released, the same split)  re-tokenize texts that missed, apply the token rules to fallback
 *      ids, and pool every text into its output row.
 * Every array and id is checked here, at the boundary: dtypes, shapes, contiguity, id ranges.
 */
#include "kernel.h"

#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* ================================================================== WordTable */

typedef struct {
    PyObject_HEAD
    st_gen *current;
    uint32_t start_words, max_words;
    Py_ssize_t generations;
} WordTableObject;

static PyTypeObject WordTableType;

static int wordtable_init(WordTableObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"max_words", "start_words", NULL};
    Py_ssize_t max_words = 262144, start_words = 16384;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|nn", kwlist, &max_words, &start_words)) return -1;
    if (max_words < 16 || max_words > (1 << 24)) {
        PyErr_Format(PyExc_ValueError, "max_words must be in 16..16777216, got %zd", max_words);
        return -1;
    }
    if (start_words < 16) start_words = 16;
    if (start_words > max_words) start_words = max_words;
    st_gen *g = st_gen_new((uint32_t)start_words);
    if (!g) {
        PyErr_NoMemory();
        return -1;
    }
    st_gen_decref(self->current);
    self->current = g;
    self->start_words = (uint32_t)start_words;
    self->max_words = (uint32_t)max_words;
    self->generations = 1;
    return 0;
}

static void wordtable_dealloc(WordTableObject *self) {
    st_gen_decref(self->current);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Insert into the current generation; a full one is replaced by a larger copy, or at the bound by an
 * empty one (the GIL serialises writers; readers keep their generation alive). -1 on out of memory. */
static int wordtable_insert(WordTableObject *wt, const st_key *key, const int32_t *ids, size_t n) {
    if (key->len > ST_MAX_KEY || n > ST_MAX_WORD_IDS) return 0;
    int r = st_gen_insert(wt->current, key, ids, n);
    if (r != 0) return r < 0 ? -1 : 0;
    st_gen *old = wt->current;
    st_gen *fresh;
    if (old->max_entries < wt->max_words) {
        uint64_t grown = (uint64_t)old->max_entries * 2;
        fresh = st_gen_new((uint32_t)(grown < wt->max_words ? grown : wt->max_words));
        if (!fresh) return -1;
        for (uint32_t i = 0; i < old->n_entries; i++) {
            const st_entry *e = &old->entries[i];
            st_key k;
            st_key_make(&k, st_entry_key(old, e), e->key_len);
            if (st_gen_insert(fresh, &k, st_entry_ids(old, e), e->n_ids) != 1)
                break; /* the arenas filled first: keep what fits */
        }
    } else {
        fresh = st_gen_new(wt->max_words);
        if (!fresh) return -1;
    }
    wt->current = fresh;
    wt->generations++;
    st_gen_decref(old);
    r = st_gen_insert(wt->current, key, ids, n);
    return r < 0 ? -1 : 0;
}

static Py_ssize_t wordtable_len(WordTableObject *self) { return self->current ? self->current->n_entries : 0; }

static PyObject *wordtable_get_max_words(WordTableObject *self, void *closure) {
    return PyLong_FromUnsignedLong(self->max_words);
}

static PyObject *wordtable_get_generations(WordTableObject *self, void *closure) {
    return PyLong_FromSsize_t(self->generations);
}

static PyObject *wordtable_clear(WordTableObject *self, PyObject *unused) {
    st_gen *g = st_gen_new(self->start_words);
    if (!g) return PyErr_NoMemory();
    st_gen_decref(self->current);
    self->current = g;
    self->generations++;
    Py_RETURN_NONE;
}

static PySequenceMethods wordtable_as_sequence = {.sq_length = (lenfunc)wordtable_len};

static PyMethodDef wordtable_methods[] = {
    {"clear", (PyCFunction)wordtable_clear, METH_NOARGS, "Forget every word (start a new, empty generation)."},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef wordtable_getset[] = {
    {"max_words", (getter)wordtable_get_max_words, NULL, "The most words held at once.", NULL},
    {"generations", (getter)wordtable_get_generations, NULL, "How many generations the table has had.", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject WordTableType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "staticst._kernel.WordTable",
    .tp_doc = PyDoc_STR("WordTable(max_words=262144, start_words=16384): a bounded word -> token ids table "
                        "shared by the kernels of one tokenizer. len() is the number of words held."),
    .tp_basicsize = sizeof(WordTableObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)wordtable_init,
    .tp_dealloc = (destructor)wordtable_dealloc,
    .tp_as_sequence = &wordtable_as_sequence,
    .tp_methods = wordtable_methods,
    .tp_getset = wordtable_getset,
};

/* ================================================================== Kernel */

typedef struct {
    PyObject_HEAD
    st_plan plan;
    st_pool pool;
    PyObject *table, *mapping, *weights; /* the arrays the pointers in `pool` point into */
    WordTableObject *words;
    PyObject *resolve, *fallback;
    int threads;
    Py_ssize_t parallel_min_bytes;
} KernelObject;

static PyTypeObject KernelType;

static void free_plan(st_plan *plan) {
    for (int i = 0; i < plan->n_raw; i++) free(plan->raw[i]);
    for (int i = 0; i < plan->n_norm; i++) free(plan->norm[i]);
    plan->n_raw = plan->n_norm = 0;
}

static void kernel_dealloc(KernelObject *self) {
    free_plan(&self->plan);
    Py_XDECREF(self->table);
    Py_XDECREF(self->mapping);
    Py_XDECREF(self->weights);
    Py_XDECREF((PyObject *)self->words);
    Py_XDECREF(self->resolve);
    Py_XDECREF(self->fallback);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int read_substrings(PyObject *seq, char **out, size_t *lens, int *count, const char *what) {
    PyObject *fast = PySequence_Fast(seq, "substrings must be a sequence of bytes");
    if (!fast) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    if (n > ST_MAX_SUBS) {
        PyErr_Format(PyExc_ValueError, "at most %d %s substrings are supported, got %zd", ST_MAX_SUBS, what, n);
        Py_DECREF(fast);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(fast, i);
        char *data;
        Py_ssize_t len;
        if (PyBytes_AsStringAndSize(item, &data, &len) < 0) {
            Py_DECREF(fast);
            return -1;
        }
        if (len == 0) {
            PyErr_Format(PyExc_ValueError, "empty %s substring", what);
            Py_DECREF(fast);
            return -1;
        }
        out[*count] = malloc((size_t)len + 1);
        if (!out[*count]) {
            Py_DECREF(fast);
            PyErr_NoMemory();
            return -1;
        }
        memcpy(out[*count], data, (size_t)len);
        lens[*count] = (size_t)len;
        (*count)++;
    }
    Py_DECREF(fast);
    return 0;
}

static int dtype_code(PyArrayObject *arr) {
    if (!PyArray_ISNOTSWAPPED(arr)) return -1;
    switch (PyArray_TYPE(arr)) {
    case NPY_FLOAT32: return ST_F32;
    case NPY_FLOAT16: return ST_F16;
    case NPY_FLOAT64: return ST_F64;
    case NPY_INT8: return ST_I8;
    default: return -1;
    }
}

static int kernel_init(KernelObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"words",        "table",       "mapping",    "weights",   "mode",         "prepend_space",
                             "norm_table",   "raw",         "normalized", "char_limit", "max_length",  "truncate_left",
                             "unk_id",       "drop_unknown", "arithmetic", "normalize", "weight_sum",  "resolve",
                             "fallback",     "threads",     "boundary",   NULL};
    PyObject *words, *table, *mapping, *weights, *norm_table, *raw, *normalized, *resolve, *fallback;
    int mode, prepend_space, truncate_left, drop_unknown, arithmetic, normalize, weight_sum, threads;
    Py_ssize_t char_limit, max_length, unk_id;
    const char *boundary = NULL;
    Py_ssize_t n_boundary = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!OOOipOOOnnpnpiipOOi|z#", kwlist, &WordTableType, &words, &table,
                                     &mapping, &weights, &mode, &prepend_space, &norm_table, &raw, &normalized,
                                     &char_limit, &max_length, &truncate_left, &unk_id, &drop_unknown, &arithmetic,
                                     &normalize, &weight_sum, &resolve, &fallback, &threads, &boundary, &n_boundary))
        return -1;
    if (self->table) {
        PyErr_SetString(PyExc_RuntimeError, "a Kernel is initialised once");
        return -1;
    }
    if (mode < ST_MODE_WHITESPACE || mode > ST_MODE_NONE) {
        PyErr_Format(PyExc_ValueError, "unknown mode %d", mode);
        return -1;
    }
    if (arithmetic != 0 && arithmetic != 1) {
        PyErr_Format(PyExc_ValueError, "arithmetic must be 0 (model2vec) or 1 (sentence-transformers), got %d",
                     arithmetic);
        return -1;
    }
    if (threads < 1) {
        PyErr_Format(PyExc_ValueError, "threads must be at least 1, got %d", threads);
        return -1;
    }
    if (!PyCallable_Check(resolve) || !PyCallable_Check(fallback)) {
        PyErr_SetString(PyExc_TypeError, "resolve and fallback must be callables");
        return -1;
    }
    /* the table */
    if (!PyArray_Check(table)) {
        PyErr_SetString(PyExc_TypeError, "table must be a numpy array");
        return -1;
    }
    PyArrayObject *t = (PyArrayObject *)table;
    int dtype = dtype_code(t);
    if (PyArray_NDIM(t) != 2 || !PyArray_IS_C_CONTIGUOUS(t) || dtype < 0 || PyArray_DIM(t, 1) < 2) {
        PyErr_SetString(PyExc_ValueError,
                        "table must be a C-contiguous 2-D float32, float16, float64 or int8 array with dim >= 2");
        return -1;
    }
    st_pool *p = &self->pool;
    p->table = PyArray_DATA(t);
    p->dtype = dtype;
    p->rows = PyArray_DIM(t, 0);
    p->dim = PyArray_DIM(t, 1);
    int64_t n_valid = p->rows;
    if (mapping != Py_None) {
        if (!PyArray_Check(mapping) || PyArray_TYPE((PyArrayObject *)mapping) != NPY_INT64 ||
            PyArray_NDIM((PyArrayObject *)mapping) != 1 || !PyArray_IS_C_CONTIGUOUS((PyArrayObject *)mapping) ||
            !PyArray_ISNOTSWAPPED((PyArrayObject *)mapping)) {
            PyErr_SetString(PyExc_ValueError, "mapping must be a C-contiguous 1-D int64 array");
            return -1;
        }
        const int64_t *m = PyArray_DATA((PyArrayObject *)mapping);
        n_valid = PyArray_DIM((PyArrayObject *)mapping, 0);
        for (int64_t i = 0; i < n_valid; i++)
            if (m[i] < 0 || m[i] >= p->rows) {
                PyErr_Format(PyExc_ValueError, "mapping[%lld] = %lld is outside the table's rows 0..%zd", (long long)i,
                             (long long)m[i], p->rows - 1);
                return -1;
            }
        p->mapping = m;
    }
    int wdtype = -1;
    if (weights != Py_None) {
        PyArrayObject *w = (PyArrayObject *)weights;
        if (!PyArray_Check(weights) || PyArray_NDIM(w) != 1 || !PyArray_IS_C_CONTIGUOUS(w) ||
            ((wdtype = dtype_code(w)) != ST_F32 && wdtype != ST_F64) || PyArray_DIM(w, 0) != n_valid) {
            PyErr_Format(PyExc_ValueError, "weights must be a C-contiguous 1-D float32 or float64 array of %lld values",
                         (long long)n_valid);
            return -1;
        }
        p->weights = PyArray_DATA(w);
        p->weights_dtype = wdtype;
    }
    if (n_valid > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "at most 2**31 - 1 token ids are supported");
        return -1;
    }
    /* the accumulator, as staticst.pooling._accumulator chooses it */
    if (p->weights)
        p->acc64 = dtype == ST_F64 || wdtype == ST_F64;
    else
        p->acc64 = dtype == ST_F64 || dtype == ST_I8;
    if (arithmetic == 0 && dtype == ST_F16 && p->acc64) {
        PyErr_SetString(PyExc_ValueError, "a float16 table with float64 weights is pooled by the numpy path");
        return -1;
    }
    p->arithmetic = arithmetic;
    p->normalize = normalize;
    p->weight_sum = weight_sum;
    /* the plan */
    st_plan *plan = &self->plan;
    plan->mode = mode;
    plan->prepend_space = prepend_space;
    PyObject *fast = PySequence_Fast(norm_table, "norm_table must be a sequence of 128 bytes objects");
    if (!fast) return -1;
    if (PySequence_Fast_GET_SIZE(fast) != 128) {
        Py_DECREF(fast);
        PyErr_SetString(PyExc_ValueError, "norm_table must hold 128 entries");
        return -1;
    }
    for (int c = 0; c < 128; c++) {
        char *data;
        Py_ssize_t len;
        if (PyBytes_AsStringAndSize(PySequence_Fast_GET_ITEM(fast, c), &data, &len) < 0) {
            Py_DECREF(fast);
            return -1;
        }
        if (len > ST_MAX_NORM) {
            Py_DECREF(fast);
            PyErr_Format(PyExc_ValueError, "the normaliser maps character %d to %zd bytes (at most %d)", c, len,
                         ST_MAX_NORM);
            return -1;
        }
        for (Py_ssize_t k = 0; k < len; k++)
            if ((unsigned char)data[k] >= 128) {
                Py_DECREF(fast);
                PyErr_SetString(PyExc_ValueError, "norm_table entries must be ASCII");
                return -1;
            }
        plan->norm_len[c] = (uint8_t)len;
        memcpy(plan->norm_out[c], data, (size_t)len);
    }
    Py_DECREF(fast);
    if (read_substrings(raw, plan->raw, plan->raw_len, &plan->n_raw, "raw") < 0) return -1;
    if (read_substrings(normalized, plan->norm, plan->norm_len_sub, &plan->n_norm, "normalized") < 0) return -1;
    /* boundary=None: non-ASCII text goes to the Hugging Face tokenizer whole; bytes: the chunk separators */
    plan->unicode_chunks = boundary != NULL;
    for (Py_ssize_t b = 0; b < n_boundary; b++) {
        if ((unsigned char)boundary[b] >= 128) {
            PyErr_SetString(PyExc_ValueError, "boundary characters must be ASCII");
            return -1;
        }
        plan->boundary[(unsigned char)boundary[b]] = 1;
    }
    for (int k = 0; k < plan->n_raw; k++) plan->special[(unsigned char)plan->raw[k][0]] = 1;
    plan->char_limit = char_limit;
    plan->max_length = max_length;
    plan->truncate_left = truncate_left;
    plan->unk_id = (int32_t)unk_id;
    plan->drop_unknown = drop_unknown;
    plan->n_valid_ids = n_valid;
    Py_INCREF(table);
    self->table = table;
    Py_INCREF(mapping);
    self->mapping = mapping;
    Py_INCREF(weights);
    self->weights = weights;
    Py_INCREF(words);
    self->words = (WordTableObject *)words;
    Py_INCREF(resolve);
    self->resolve = resolve;
    Py_INCREF(fallback);
    self->fallback = fallback;
    self->threads = threads;
    self->parallel_min_bytes = 1 << 14; /* about 230 sentences: below that a part is not worth a hand-off */
    return 0;
}

/* ------------------------------------------------------------------ one batch call */

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

static int check_ids(const int32_t *ids, int64_t n, int64_t limit) {
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
        if (wordtable_insert(k->words, &sk, tmp.data, (size_t)m) < 0) {
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
static int run_batch(KernelObject *k, PyObject *seq, float *out, PyObject **ids_out, PyObject **offsets_out,
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

static PyObject *kernel_embed(KernelObject *self, PyObject *args) {
    PyObject *texts;
    PyArrayObject *out;
    if (!PyArg_ParseTuple(args, "OO!", &texts, &PyArray_Type, &out)) return NULL;
    Py_ssize_t n = PySequence_Size(texts);
    if (n < 0) return NULL;
    if (PyArray_TYPE(out) != NPY_FLOAT32 || PyArray_NDIM(out) != 2 || !PyArray_IS_C_CONTIGUOUS(out) ||
        !PyArray_ISWRITEABLE(out) || !PyArray_ISNOTSWAPPED(out) || PyArray_DIM(out, 0) != n ||
        PyArray_DIM(out, 1) != self->pool.dim) {
        PyErr_Format(PyExc_ValueError, "out must be a writable C-contiguous float32 array of shape (%zd, %zd)", n,
                     self->pool.dim);
        return NULL;
    }
    int64_t tokens = 0;
    if (run_batch(self, texts, (float *)PyArray_DATA(out), NULL, NULL, &tokens) < 0) return NULL;
    return PyLong_FromLongLong((long long)tokens);
}

static PyObject *kernel_tokenize(KernelObject *self, PyObject *texts) {
    PyObject *ids = NULL, *offsets = NULL;
    int64_t tokens = 0;
    if (run_batch(self, texts, NULL, &ids, &offsets, &tokens) < 0) return NULL;
    PyObject *res = PyTuple_Pack(2, ids, offsets);
    Py_DECREF(ids);
    Py_DECREF(offsets);
    return res;
}

static PyObject *kernel_embed_one(KernelObject *self, PyObject *text) {
    if (!PyUnicode_Check(text)) {
        PyErr_Format(PyExc_TypeError, "text must be a str, got %.100s", Py_TYPE(text)->tp_name);
        return NULL;
    }
    npy_intp dim = self->pool.dim;
    PyObject *out = PyArray_SimpleNew(1, &dim, NPY_FLOAT32);
    if (!out) return NULL;
    int32_t stack_ids[256];
    st_ibuf buf = {stack_ids, 0, 256, 1};
    st_scratch scratch = {0};
    char normbuf[2048];
    scratch.norm = (st_cbuf){normbuf, 0, sizeof(normbuf), 1};
    double stack_scratch[2 * 512];
    double *work = dim <= 512 ? stack_scratch : malloc(sizeof(double) * (size_t)(2 * dim));
    int ascii = PyUnicode_IS_ASCII(text);
    const char *data;
    Py_ssize_t len = PyUnicode_GET_LENGTH(text);
    if (ascii) {
        data = (const char *)PyUnicode_1BYTE_DATA(text);
    } else {
        data = PyUnicode_AsUTF8AndSize(text, &len);
        if (!data) PyErr_Clear(); /* not valid Unicode: the fallback path raises and names it */
    }
    st_gen *gen = self->words->current;
    int s;
    if (!work) {
        PyErr_NoMemory();
        goto fail;
    }
    s = st_tokenize_text(&self->plan, gen, NULL, data, len, ascii, &buf, &scratch, 0);
    if (s == ST_NOMEM) {
        PyErr_NoMemory();
        goto fail;
    }
    if (s == ST_OK) {
        if (st_pool_text(&self->pool, buf.data, (Py_ssize_t)buf.len, PyArray_DATA((PyArrayObject *)out), work)) {
            PyErr_SetString(PyExc_FloatingPointError,
                            "the vector of input 0 overflowed to Inf/NaN: the table's values are too large to sum in "
                            "float32 for a text this long");
            goto fail;
        }
    } else {
        /* a missing word or an uncovered text: the batch path (resolve / fallback) for one text */
        Py_DECREF(out);
        out = NULL;
        PyObject *list = PyList_New(1);
        if (!list) goto fail;
        Py_INCREF(text);
        PyList_SET_ITEM(list, 0, text);
        npy_intp shape[2] = {1, dim};
        PyObject *rows = PyArray_SimpleNew(2, shape, NPY_FLOAT32);
        int64_t tokens = 0;
        if (!rows || run_batch(self, list, (float *)PyArray_DATA((PyArrayObject *)rows), NULL, NULL, &tokens) < 0) {
            Py_XDECREF(rows);
            Py_DECREF(list);
            goto fail;
        }
        Py_DECREF(list);
        npy_intp one = dim;
        PyArray_Dims newshape = {&one, 1};
        out = PyArray_Newshape((PyArrayObject *)rows, &newshape, NPY_CORDER);
        Py_DECREF(rows);
    }
    st_ibuf_free(&buf);
    st_scratch_free(&scratch);
    if (work != stack_scratch) free(work);
    return out;
fail:
    Py_XDECREF(out);
    st_ibuf_free(&buf);
    st_scratch_free(&scratch);
    if (work && work != stack_scratch) free(work);
    return NULL;
}

static PyObject *kernel_pool(KernelObject *self, PyObject *args) {
    PyArrayObject *ids, *offsets, *out;
    if (!PyArg_ParseTuple(args, "O!O!O!", &PyArray_Type, &ids, &PyArray_Type, &offsets, &PyArray_Type, &out))
        return NULL;
    if (PyArray_TYPE(ids) != NPY_INT32 || PyArray_NDIM(ids) != 1 || !PyArray_IS_C_CONTIGUOUS(ids) ||
        PyArray_TYPE(offsets) != NPY_INT64 || PyArray_NDIM(offsets) != 1 || !PyArray_IS_C_CONTIGUOUS(offsets) ||
        PyArray_DIM(offsets, 0) < 1) {
        PyErr_SetString(PyExc_ValueError, "ids must be C-contiguous int32 and offsets C-contiguous int64 (n + 1)");
        return NULL;
    }
    Py_ssize_t n = PyArray_DIM(offsets, 0) - 1;
    if (PyArray_TYPE(out) != NPY_FLOAT32 || PyArray_NDIM(out) != 2 || !PyArray_IS_C_CONTIGUOUS(out) ||
        !PyArray_ISWRITEABLE(out) || PyArray_DIM(out, 0) != n || PyArray_DIM(out, 1) != self->pool.dim) {
        PyErr_Format(PyExc_ValueError, "out must be a writable C-contiguous float32 array of shape (%zd, %zd)", n,
                     self->pool.dim);
        return NULL;
    }
    const int64_t *off = PyArray_DATA(offsets);
    const int32_t *idd = PyArray_DATA(ids);
    int64_t total = PyArray_DIM(ids, 0);
    if (off[0] != 0 || off[n] != total) {
        PyErr_SetString(PyExc_ValueError, "offsets must start at 0 and end at len(ids)");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++)
        if (off[i + 1] < off[i]) {
            PyErr_SetString(PyExc_ValueError, "offsets must be non-decreasing");
            return NULL;
        }
    if (check_ids(idd, total, self->plan.n_valid_ids) < 0) return NULL;
    double *work = malloc(sizeof(double) * (size_t)(2 * self->pool.dim));
    if (!work) return PyErr_NoMemory();
    float *o = PyArray_DATA(out);
    Py_ssize_t overflow = -1;
    Py_BEGIN_ALLOW_THREADS for (Py_ssize_t i = 0; i < n; i++) if (
        st_pool_text(&self->pool, idd + off[i], (Py_ssize_t)(off[i + 1] - off[i]), o + (size_t)i * (size_t)self->pool.dim,
                     work) &&
        overflow < 0) overflow = i;
    Py_END_ALLOW_THREADS free(work);
    if (overflow >= 0) {
        PyErr_Format(PyExc_FloatingPointError, "the vector of input %zd overflowed to Inf/NaN", overflow);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *kernel_get_threads(KernelObject *self, void *closure) { return PyLong_FromLong(self->threads); }

static int kernel_set_threads(KernelObject *self, PyObject *value, void *closure) {
    long v = value ? PyLong_AsLong(value) : -1;
    if (v == -1 && PyErr_Occurred()) return -1;
    if (v < 1 || v > 1024) {
        PyErr_Format(PyExc_ValueError, "threads must be in 1..1024, got %ld", v);
        return -1;
    }
    self->threads = (int)v;
    return 0;
}

static PyObject *kernel_get_words(KernelObject *self, void *closure) {
    Py_INCREF((PyObject *)self->words);
    return (PyObject *)self->words;
}

static PyMethodDef kernel_methods[] = {
    {"embed", (PyCFunction)kernel_embed, METH_VARARGS, "embed(texts, out): pool every text into its row of out."},
    {"embed_one", (PyCFunction)kernel_embed_one, METH_O, "embed_one(text) -> (dim,) float32 array."},
    {"tokenize", (PyCFunction)kernel_tokenize, METH_O, "tokenize(texts) -> (ids int32, offsets int64)."},
    {"pool", (PyCFunction)kernel_pool, METH_VARARGS, "pool(ids, offsets, out): pool given ids into out."},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef kernel_getset[] = {
    {"threads", (getter)kernel_get_threads, (setter)kernel_set_threads, "Native threads a large batch uses.", NULL},
    {"words", (getter)kernel_get_words, NULL, "The shared WordTable.", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject KernelType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "staticst._kernel.Kernel",
    .tp_doc = PyDoc_STR("The compiled text -> vector path of one engine (see staticst.kernel)."),
    .tp_basicsize = sizeof(KernelObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)kernel_init,
    .tp_dealloc = (destructor)kernel_dealloc,
    .tp_methods = kernel_methods,
    .tp_getset = kernel_getset,
};

/* ================================================================== module functions */

static void free_mapped(PyObject *capsule) {
    void *ptr = PyCapsule_GetPointer(capsule, "staticst.rows");
    size_t *size = PyCapsule_GetContext(capsule);
    if (ptr && size) munmap(ptr, *size);
    free(size);
}

/* empty_rows(n, dim): an uninitialised (n, dim) float32 array; large ones in memory advised for huge
 * pages, so the threads that first write the rows take ~500x fewer page faults. */
static PyObject *empty_rows(PyObject *module, PyObject *args) {
    Py_ssize_t n, dim;
    if (!PyArg_ParseTuple(args, "nn", &n, &dim)) return NULL;
    if (n < 0 || dim < 1) {
        PyErr_Format(PyExc_ValueError, "empty_rows(n, dim) needs n >= 0 and dim >= 1, got (%zd, %zd)", n, dim);
        return NULL;
    }
    npy_intp shape[2] = {n, dim};
    size_t bytes = (size_t)n * (size_t)dim * sizeof(float);
    if (bytes < ((size_t)4 << 20)) return PyArray_SimpleNew(2, shape, NPY_FLOAT32);
    void *ptr = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (ptr == MAP_FAILED) return PyArray_SimpleNew(2, shape, NPY_FLOAT32);
#ifdef MADV_HUGEPAGE
    madvise(ptr, bytes, MADV_HUGEPAGE);
#endif
    size_t *size = malloc(sizeof(size_t));
    if (!size) {
        munmap(ptr, bytes);
        return PyErr_NoMemory();
    }
    *size = bytes;
    PyObject *capsule = PyCapsule_New(ptr, "staticst.rows", free_mapped);
    if (!capsule) {
        munmap(ptr, bytes);
        free(size);
        return NULL;
    }
    PyCapsule_SetContext(capsule, size);
    PyObject *arr = PyArray_New(&PyArray_Type, 2, shape, NPY_FLOAT32, NULL, ptr, 0, NPY_ARRAY_CARRAY, NULL);
    if (!arr) {
        Py_DECREF(capsule);
        return NULL;
    }
    if (PyArray_SetBaseObject((PyArrayObject *)arr, capsule) < 0) {
        Py_DECREF(arr);
        return NULL;
    }
    return arr;
}

static PyObject *f32_to_f16(PyObject *module, PyObject *arg) {
    PyArrayObject *a = (PyArrayObject *)PyArray_FROMANY(arg, NPY_FLOAT32, 1, 1, NPY_ARRAY_CARRAY_RO);
    if (!a) return NULL;
    npy_intp n = PyArray_DIM(a, 0);
    PyObject *out = PyArray_SimpleNew(1, &n, NPY_UINT16);
    if (out) {
        const float *src = PyArray_DATA(a);
        uint16_t *dst = PyArray_DATA((PyArrayObject *)out);
        for (npy_intp i = 0; i < n; i++) dst[i] = st_f32_to_f16(src[i]);
    }
    Py_DECREF(a);
    return out;
}

static PyObject *round_f16(PyObject *module, PyObject *arg) {
    PyArrayObject *a = (PyArrayObject *)PyArray_FROMANY(arg, NPY_FLOAT32, 1, 1, NPY_ARRAY_CARRAY_RO);
    if (!a) return NULL;
    PyObject *out = PyArray_NewCopy(a, NPY_CORDER);
    Py_DECREF(a);
    if (out) st_round_f16_row(PyArray_DATA((PyArrayObject *)out), PyArray_DIM((PyArrayObject *)out, 0));
    return out;
}

static PyObject *pairwise_sum(PyObject *module, PyObject *arg) {
    PyArrayObject *a = (PyArrayObject *)PyArray_FROMANY(arg, NPY_FLOAT32, 1, 1, NPY_ARRAY_CARRAY_RO);
    if (!a) return NULL;
    float r = st_pairwise_f32(PyArray_DATA(a), PyArray_DIM(a, 0));
    Py_DECREF(a);
    return PyFloat_FromDouble((double)r);
}

static PyMethodDef module_methods[] = {
    {"empty_rows", empty_rows, METH_VARARGS, "empty_rows(n, dim) -> uninitialised (n, dim) float32 array."},
    {"_f32_to_f16", f32_to_f16, METH_O, "float32 values -> float16 bit patterns (round to nearest even)."},
    {"_pairwise_sum", pairwise_sum, METH_O, "numpy's pairwise float32 sum of a 1-D array."},
    {"_round_f16", round_f16, METH_O, "float32 values rounded to float16 and back, as pooling does it."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef kernel_module = {PyModuleDef_HEAD_INIT, "staticst._kernel",
                                           "The compiled text -> vector kernel of staticst (see staticst.kernel).", -1,
                                           module_methods};

PyMODINIT_FUNC PyInit__kernel(void) {
    import_array();
    st_pool_init();
    if (PyType_Ready(&WordTableType) < 0 || PyType_Ready(&KernelType) < 0) return NULL;
    PyObject *m = PyModule_Create(&kernel_module);
    if (!m) return NULL;
    Py_INCREF(&WordTableType);
    Py_INCREF(&KernelType);
    if (PyModule_AddObject(m, "WordTable", (PyObject *)&WordTableType) < 0 ||
        PyModule_AddObject(m, "Kernel", (PyObject *)&KernelType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    PyModule_AddIntConstant(m, "MAX_KEY", ST_MAX_KEY);
    return m;
}
