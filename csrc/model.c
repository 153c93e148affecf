/*
 * The tokenizer models' common face: the double-array trie every model keeps its vocabulary in, the
 * per-thread scratch, st_model_encode (dispatch by kind), and the Python type `_kernel.TokenModel`
 * (constructors from a vocabulary, encode methods for tests and benchmarks). The models themselves are in
 * model_wordpiece.c, model_unigram.c and model_bpe.c; staticst/tokenization/native_model.py builds a
 * TokenModel from a `tokenizers.Tokenizer`.
 */
#include "model.h"

#include "objects.h" /* numpy's C API table */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ================================================================== double-array trie */

static int key_cmp(const void *a, const void *b) {
    const st_da_key *x = a, *y = b;
    if (x->head != y->head) return x->head < y->head ? -1 : 1;
    uint32_t n = x->len < y->len ? x->len : y->len;
    int c = n ? memcmp(x->p, y->p, n) : 0;
    if (c) return c;
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    return x->order < y->order ? -1 : (x->order > y->order);
}

typedef struct {
    st_da_unit *u;
    int32_t *nextf, *prevf; /* the free cells, a list in ascending order */
    uint32_t cap;
    int32_t head, tail;
    int32_t scan;           /* where searches for nodes with several children start */
    uint32_t max_base;
} da_builder;

static int da_grow(da_builder *b, uint64_t need) {
    if (need < b->cap) return ST_OK;
    uint64_t cap = (uint64_t)b->cap * 2;
    if (cap < need + 1) cap = need + 1;
    if (cap < 1024) cap = 1024;
    if (cap > INT32_MAX) return ST_NOMEM;
    st_da_unit *u = realloc(b->u, cap * sizeof *u);
    if (!u) return ST_NOMEM;
    b->u = u;
    int32_t *nf = realloc(b->nextf, cap * sizeof *nf);
    if (!nf) return ST_NOMEM;
    b->nextf = nf;
    int32_t *pf = realloc(b->prevf, cap * sizeof *pf);
    if (!pf) return ST_NOMEM;
    b->prevf = pf;
    for (uint32_t i = b->cap; i < cap; i++) {
        u[i].base = 0;
        u[i].check = -1;
        u[i].value = -1;
        if (i < 256) continue; /* never listed: a first label lands at >= 256, so every other label does too */
        pf[i] = b->tail;
        nf[i] = -1;
        if (b->tail >= 0)
            nf[b->tail] = (int32_t)i;
        else
            b->head = (int32_t)i;
        b->tail = (int32_t)i;
    }
    b->cap = (uint32_t)cap;
    return ST_OK;
}

static void da_take(da_builder *b, int32_t t, int32_t parent) {
    int32_t p = b->prevf[t], n = b->nextf[t];
    if (p >= 0)
        b->nextf[p] = n;
    else
        b->head = n;
    if (n >= 0)
        b->prevf[n] = p;
    else
        b->tail = p;
    b->u[t].check = parent;
}

/* A base at which every label in labels[0:k] (ascending) lands on a free cell. */
static int da_find_base(da_builder *b, const unsigned char *labels, int k, int32_t *base_out) {
    int32_t f;
    if (k == 1) {
        f = b->head;
    } else {
        f = b->scan;
        while (f >= 0 && (uint32_t)f < b->cap && b->u[f].check != -1) f++;
        if (f >= 0 && (uint32_t)f >= b->cap) f = -1;
        b->scan = f >= 0 ? f : (int32_t)b->cap; /* the cells skipped are taken for good */
        if (f < 0) f = b->head;
    }
    int tries = 0;
    int32_t mid = -1;
    for (;;) {
        if (f < 0) { /* past the allocated cells: everything from cap on is free */
            int64_t base = (int64_t)b->cap - labels[0];
            if (base < 0) base = 0;
            if (da_grow(b, (uint64_t)base + 256) != ST_OK) return ST_NOMEM;
            *base_out = (int32_t)base;
            return ST_OK;
        }
        if (f >= labels[0]) {
            int32_t base = f - labels[0];
            if (da_grow(b, (uint64_t)base + 256) != ST_OK) return ST_NOMEM;
            int ok = 1;
            for (int j = 1; j < k && ok; j++) ok = b->u[base + labels[j]].check == -1;
            if (ok) {
                if (k > 1 && tries > 32 && mid >= 0) b->scan = mid; /* the region before is dense */
                *base_out = base;
                return ST_OK;
            }
            if (++tries == 16) mid = f;
        }
        f = b->nextf[f];
    }
}

typedef struct {
    int32_t state;
    uint32_t lo, hi, depth;
} da_task;

int st_da_build(st_da *da, st_da_key *keys, size_t n) {
    memset(da, 0, sizeof *da);
    for (size_t i = 0; i < n; i++) {
        uint64_t h = 0;
        for (uint32_t j = 0; j < 8; j++) h = (h << 8) | (j < keys[i].len ? (unsigned char)keys[i].p[j] : 0u);
        keys[i].head = h;
    }
    if (n) qsort(keys, n, sizeof *keys, key_cmp);
    /* of equal keys keep the last (highest order): compact in place */
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m && keys[m - 1].len == keys[i].len && memcmp(keys[m - 1].p, keys[i].p, keys[i].len) == 0)
            keys[m - 1] = keys[i];
        else
            keys[m++] = keys[i];
    }
    n = m;
    da_builder b = {0};
    b.head = b.tail = -1;
    if (da_grow(&b, 256) != ST_OK) goto nomem;
    b.u[0].check = -2; /* the root (cells below 256 are not in the free list) */
    b.scan = b.head;
    size_t stack_cap = 1024, top = 0;
    da_task *stack = malloc(stack_cap * sizeof *stack);
    if (!stack) goto nomem;
    stack[top++] = (da_task){0, 0, (uint32_t)n, 0};
    uint32_t nodes = 1;
    unsigned char labels[256];
    uint32_t starts[257];
    while (top) {
        da_task t = stack[--top];
        uint32_t lo = t.lo;
        if (lo < t.hi && keys[lo].len == t.depth) b.u[t.state].value = keys[lo++].value;
        if (lo >= t.hi) continue;
        int k = 0;
        for (uint32_t i = lo; i < t.hi; i++) {
            unsigned char c = (unsigned char)keys[i].p[t.depth];
            if (k == 0 || labels[k - 1] != c) {
                labels[k] = c;
                starts[k++] = i;
            }
        }
        starts[k] = t.hi;
        int32_t base;
        if (da_find_base(&b, labels, k, &base) != ST_OK) {
            free(stack);
            goto nomem;
        }
        b.u[t.state].base = base;
        if ((uint32_t)base > b.max_base) b.max_base = (uint32_t)base;
        if (top + (size_t)k > stack_cap) {
            stack_cap = (top + (size_t)k) * 2;
            da_task *grown = realloc(stack, stack_cap * sizeof *stack);
            if (!grown) {
                free(stack);
                goto nomem;
            }
            stack = grown;
        }
        for (int j = k - 1; j >= 0; j--) {
            int32_t child = base + labels[j];
            da_take(&b, child, t.state);
            stack[top++] = (da_task){child, starts[j], starts[j + 1], t.depth + 1};
        }
        nodes += (uint32_t)k;
    }
    free(stack);
    free(b.nextf);
    free(b.prevf);
    /* every child is at base + label <= max_base + 255 and da_grow made room for that: trim the rest */
    uint32_t size = b.max_base + 256;
    st_da_unit *u = realloc(b.u, (size_t)size * sizeof *u);
    da->u = u ? u : b.u;
    da->size = size;
    da->nodes = nodes;
    return ST_OK;
nomem:
    free(b.u);
    free(b.nextf);
    free(b.prevf);
    return ST_NOMEM;
}

void st_da_free(st_da *da) {
    free(da->u);
    da->u = NULL;
    da->size = 0;
}

/* ================================================================== the common face */

int st_scratch_room(st_model_scratch *s, size_t bytes) {
    if (bytes <= s->cap) return ST_OK;
    size_t cap = s->cap ? s->cap : 4096;
    while (cap < bytes) cap *= 2;
    void *buf = malloc(cap); /* the old contents are never needed: no realloc copy */
    if (!buf) return ST_NOMEM;
    free(s->buf);
    s->buf = buf;
    s->cap = cap;
    return ST_OK;
}

st_model_scratch *st_model_scratch_new(const st_model *m) {
    (void)m;
    return calloc(1, sizeof(st_model_scratch));
}

void st_model_scratch_free(st_model_scratch *s) {
    if (!s) return;
    free(s->buf);
    free(s);
}

int st_model_encode(const st_model *m, const char *word, size_t len, st_ibuf *out, st_model_scratch *scratch) {
    if (len == 0) return ST_OK;
    switch (m->kind) {
    case ST_WORDPIECE: return st_wordpiece_encode(m, word, len, out, scratch);
    case ST_UNIGRAM: return st_unigram_encode(m, word, len, out, scratch);
    default: return st_bpe_encode(m, word, len, out, scratch);
    }
}

static void model_free(st_model *m) {
    if (!m) return;
    st_da_free(&m->da);
    free(m->scores);
    free(m->prefix);
    free(m->suffix);
    free(m->merges);
    free(m);
}

static void set_byte_ids(st_model *m) {
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        m->byte_ids[b] = st_da_get(&m->da, name, 6);
    }
}

/* ================================================================== the Python type */

typedef struct {
    PyObject_HEAD
    st_model *model;
    st_model_scratch scratch; /* for the Python methods (they hold the GIL) */
    double build_ms;
} TokenModelObject;

PyTypeObject TokenModelType;

static const char *kind_name(int kind) {
    return kind == ST_WORDPIECE ? "WordPiece" : kind == ST_UNIGRAM ? "Unigram" : "BPE";
}

static PyObject *new_object(PyTypeObject *type, st_model *m, double build_ms) {
    TokenModelObject *self = (TokenModelObject *)type->tp_alloc(type, 0);
    if (!self) {
        model_free(m);
        return NULL;
    }
    self->model = m;
    self->build_ms = build_ms;
    return (PyObject *)self;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* UTF-8 of a str, or NULL with a TypeError naming what it is (`what`). */
static const char *utf8_of(PyObject *obj, Py_ssize_t *len, const char *what) {
    if (!PyUnicode_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be a str, got %.80s", what, Py_TYPE(obj)->tp_name);
        return NULL;
    }
    return PyUnicode_AsUTF8AndSize(obj, len);
}

static int32_t id_of(PyObject *obj, const char *what) {
    long v = PyLong_AsLong(obj);
    if (v == -1 && PyErr_Occurred()) return -1;
    if (v < 0 || v > INT32_MAX - 1) {
        PyErr_Format(PyExc_ValueError, "%s: token id %ld is outside 0..%d", what, v, INT32_MAX - 1);
        return -1;
    }
    return (int32_t)v;
}

/* Keys of a {token: id} dict (the strings stay alive in the dict while the trie is built). */
static st_da_key *dict_keys(PyObject *vocab, size_t *n_out, int32_t *max_id) {
    if (!PyDict_Check(vocab)) {
        PyErr_Format(PyExc_TypeError, "vocab must be a dict of token -> id, got %.80s", Py_TYPE(vocab)->tp_name);
        return NULL;
    }
    size_t n = (size_t)PyDict_Size(vocab);
    st_da_key *keys = malloc((n ? n : 1) * sizeof *keys);
    if (!keys) {
        PyErr_NoMemory();
        return NULL;
    }
    Py_ssize_t pos = 0, i = 0;
    PyObject *k, *v;
    *max_id = -1;
    while (PyDict_Next(vocab, &pos, &k, &v)) {
        Py_ssize_t len;
        const char *p = utf8_of(k, &len, "a vocabulary token");
        int32_t id = p ? id_of(v, "vocab") : -1;
        if (!p || id < 0) {
            free(keys);
            return NULL;
        }
        keys[i] = (st_da_key){p, (uint32_t)len, id, (uint32_t)i};
        if (id > *max_id) *max_id = id;
        i++;
    }
    *n_out = (size_t)i;
    return keys;
}

static int build_trie(st_model *m, st_da_key *keys, size_t n) {
    int r = st_da_build(&m->da, keys, n);
    free(keys);
    if (r != ST_OK) {
        PyErr_NoMemory();
        return -1;
    }
    m->memory = sizeof *m + (size_t)m->da.size * sizeof(st_da_unit);
    return 0;
}

static st_model *model_alloc(int kind) {
    st_model *m = calloc(1, sizeof *m);
    if (!m) {
        PyErr_NoMemory();
        return NULL;
    }
    m->kind = kind;
    m->unk_id = -1;
    m->cont_state = -1;
    m->prefix_state = -1;
    return m;
}

static PyObject *tm_wordpiece(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"vocab", "unk_token", "continuing_subword_prefix", "max_input_chars_per_word", NULL};
    PyObject *vocab, *unk, *prefix;
    Py_ssize_t max_chars;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OUUn", kwlist, &vocab, &unk, &prefix, &max_chars)) return NULL;
    if (max_chars < 0) {
        PyErr_Format(PyExc_ValueError, "max_input_chars_per_word must be >= 0, got %zd", max_chars);
        return NULL;
    }
    double t0 = now_ms();
    st_model *m = model_alloc(ST_WORDPIECE);
    if (!m) return NULL;
    size_t n;
    st_da_key *keys = dict_keys(vocab, &n, &m->vocab_size);
    if (!keys || build_trie(m, keys, n) < 0) {
        model_free(m);
        return NULL;
    }
    m->vocab_size += 1;
    Py_ssize_t ulen, plen;
    const char *u = PyUnicode_AsUTF8AndSize(unk, &ulen);
    const char *p = u ? PyUnicode_AsUTF8AndSize(prefix, &plen) : NULL;
    if (!p) {
        model_free(m);
        return NULL;
    }
    m->has_unk_token = 1;
    m->unk_id = st_da_get(&m->da, u, (size_t)ulen);
    m->cont_state = st_da_walk(&m->da, 0, p, (size_t)plen);
    m->max_chars = (size_t)max_chars;
    m->error = "WordPiece error: Missing unk token from the vocabulary";
    return new_object(type, m, now_ms() - t0);
}

static PyObject *tm_unigram(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"vocab", "unk_id", "byte_fallback", NULL};
    PyObject *vocab, *unk_obj;
    int byte_fallback;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOp", kwlist, &vocab, &unk_obj, &byte_fallback)) return NULL;
    PyObject *seq = PySequence_Fast(vocab, "vocab must be a list of (piece, score) pairs");
    if (!seq) return NULL;
    double t0 = now_ms();
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    st_model *m = model_alloc(ST_UNIGRAM);
    st_da_key *keys = m ? malloc((size_t)(n ? n : 1) * sizeof *keys) : NULL;
    double *scores = keys ? malloc((size_t)(n ? n : 1) * sizeof *scores) : NULL;
    if (!scores) {
        if (m) PyErr_NoMemory();
        free(keys);
        model_free(m);
        Py_DECREF(seq);
        return NULL;
    }
    m->scores = scores;
    double min_score = INFINITY;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
        if (!PyTuple_Check(item) && !PyList_Check(item)) {
            PyErr_Format(PyExc_TypeError, "vocab[%zd] must be a (piece, score) pair, got %.80s", i, Py_TYPE(item)->tp_name);
            goto fail;
        }
        if (PySequence_Size(item) != 2) {
            PyErr_Format(PyExc_ValueError, "vocab[%zd] must be a (piece, score) pair", i);
            goto fail;
        }
        PyObject *piece = PySequence_Fast_GET_ITEM(item, 0), *score = PySequence_Fast_GET_ITEM(item, 1);
        Py_ssize_t len;
        const char *p = utf8_of(piece, &len, "a Unigram piece");
        if (!p) goto fail;
        double s = PyFloat_AsDouble(score);
        if (s == -1.0 && PyErr_Occurred()) goto fail;
        scores[i] = s;
        if (s < min_score) min_score = s;
        keys[i] = (st_da_key){p, (uint32_t)len, (int32_t)i, (uint32_t)i};
    }
    m->vocab_size = (int32_t)n;
    m->unk_score = min_score - 10.0; /* K_UNK_PENALTY */
    if (unk_obj != Py_None) {
        long u = PyLong_AsLong(unk_obj);
        if (u == -1 && PyErr_Occurred()) goto fail;
        if (n == 0) {
            PyErr_SetString(PyExc_ValueError, "The vocabulary is empty but at least <unk> is needed");
            goto fail;
        }
        if (u < 0 || u >= n) {
            PyErr_Format(PyExc_ValueError, "unk_id %ld is not an index of the %zd-piece vocabulary", u, n);
            goto fail;
        }
        m->unk_id = (int32_t)u;
    }
    if (n > INT32_MAX - 1) {
        PyErr_Format(PyExc_ValueError, "a Unigram vocabulary of %zd pieces is too large", n);
        goto fail;
    }
    if (build_trie(m, keys, (size_t)n) < 0) {
        keys = NULL;
        goto fail;
    }
    keys = NULL;
    Py_DECREF(seq);
    m->memory += (size_t)n * sizeof(double);
    m->byte_fallback = byte_fallback;
    set_byte_ids(m);
    m->error = "Encountered an unknown token but `unk_id` is missing";
    return new_object(type, m, now_ms() - t0);
fail:
    free(keys);
    model_free(m);
    Py_DECREF(seq);
    return NULL;
}

static char *dup_opt(PyObject *obj, size_t *len, const char *what, int *err) {
    *len = 0;
    if (obj == Py_None) return NULL;
    Py_ssize_t n;
    const char *p = utf8_of(obj, &n, what);
    if (!p) {
        *err = 1;
        return NULL;
    }
    char *copy = malloc((size_t)n + 1);
    if (!copy) {
        PyErr_NoMemory();
        *err = 1;
        return NULL;
    }
    memcpy(copy, p, (size_t)n + 1);
    *len = (size_t)n;
    return copy;
}

static int merges_insert(st_model *m, int32_t a, int32_t b, uint32_t rank, int32_t new_id) {
    uint64_t key = (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1;
    uint32_t i = (uint32_t)st_merge_hash(key) & m->merge_mask;
    for (;;) {
        st_merge *e = &m->merges[i];
        if (e->key == key || e->key == 0) {
            if (e->key == 0) m->n_merges++;
            e->key = key; /* a pair listed twice: the later entry wins, as in tokenizers' merge map */
            e->rank = rank;
            e->new_id = new_id;
            return 0;
        }
        i = (i + 1) & m->merge_mask;
    }
}

static PyObject *tm_bpe(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"vocab", "merges", "unk_token", "continuing_subword_prefix", "end_of_word_suffix",
                             "fuse_unk", "byte_fallback", "ignore_merges", NULL};
    PyObject *vocab, *merges, *unk, *prefix, *suffix;
    int fuse_unk, byte_fallback, ignore_merges;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOOppp", kwlist, &vocab, &merges, &unk, &prefix, &suffix,
                                     &fuse_unk, &byte_fallback, &ignore_merges))
        return NULL;
    PyObject *seq = PySequence_Fast(merges, "merges must be a list of (left, right) pairs");
    if (!seq) return NULL;
    double t0 = now_ms();
    st_model *m = model_alloc(ST_BPE);
    if (!m) {
        Py_DECREF(seq);
        return NULL;
    }
    size_t n;
    st_da_key *keys = dict_keys(vocab, &n, &m->vocab_size);
    if (!keys || build_trie(m, keys, n) < 0) goto fail;
    m->vocab_size += 1;
    int err = 0;
    m->prefix = dup_opt(prefix, &m->prefix_len, "continuing_subword_prefix", &err);
    if (!err) m->suffix = dup_opt(suffix, &m->suffix_len, "end_of_word_suffix", &err);
    if (err) goto fail;
    m->prefix_state = m->prefix ? st_da_walk(&m->da, 0, m->prefix, m->prefix_len) : 0;
    if (unk != Py_None) {
        Py_ssize_t ulen;
        const char *u = utf8_of(unk, &ulen, "unk_token");
        if (!u) goto fail;
        m->has_unk_token = 1;
        m->unk_id = st_da_get(&m->da, u, (size_t)ulen);
    }
    m->fuse_unk = fuse_unk;
    m->byte_fallback = byte_fallback;
    m->ignore_merges = ignore_merges;
    set_byte_ids(m);
    for (int v = 0; v < 4; v++) {
        for (int c = 0; c < 128; c++) {
            int32_t s = (v & 1) ? m->prefix_state : 0;
            char ch = (char)c;
            s = s >= 0 ? st_da_walk(&m->da, s, &ch, 1) : -1;
            if ((v & 2) && m->suffix) s = s >= 0 ? st_da_walk(&m->da, s, m->suffix, m->suffix_len) : -1;
            m->ascii_ids[v][c] = s >= 0 ? m->da.u[s].value : -1;
        }
    }
    /* the merge map: (left id, right id) -> (rank, id of left + right without the prefix) */
    Py_ssize_t n_merges = PySequence_Fast_GET_SIZE(seq);
    uint64_t slots = 2;
    while (slots < (uint64_t)n_merges * 2) slots *= 2;
    if (slots > ((uint64_t)1 << 31)) {
        PyErr_Format(PyExc_ValueError, "%zd merges are too many", n_merges);
        goto fail;
    }
    m->merges = calloc(slots, sizeof *m->merges);
    if (!m->merges) {
        PyErr_NoMemory();
        goto fail;
    }
    m->merge_mask = (uint32_t)(slots - 1);
    m->memory += slots * sizeof *m->merges;
    char *buf = NULL;
    size_t buf_cap = 0;
    for (Py_ssize_t i = 0; i < n_merges; i++) {
        PyObject *pair = PySequence_Fast_GET_ITEM(seq, i);
        if ((!PyTuple_Check(pair) && !PyList_Check(pair)) || PySequence_Size(pair) != 2) {
            PyErr_Format(PyExc_ValueError, "merges[%zd] must be a (left, right) pair of tokens", i);
            free(buf);
            goto fail;
        }
        Py_ssize_t alen, blen;
        const char *a = utf8_of(PySequence_Fast_GET_ITEM(pair, 0), &alen, "a merge token");
        const char *b = a ? utf8_of(PySequence_Fast_GET_ITEM(pair, 1), &blen, "a merge token") : NULL;
        if (!b) {
            free(buf);
            goto fail;
        }
        int32_t a_id = st_da_get(&m->da, a, (size_t)alen), b_id = st_da_get(&m->da, b, (size_t)blen);
        if (a_id < 0 || b_id < 0) {
            PyErr_Format(PyExc_ValueError, "merges[%zd]: token %R is not in the vocabulary", i,
                         PySequence_Fast_GET_ITEM(pair, a_id < 0 ? 0 : 1));
            free(buf);
            goto fail;
        }
        if ((size_t)blen < m->prefix_len) {
            PyErr_Format(PyExc_ValueError, "merges[%zd]: token %R is shorter than continuing_subword_prefix", i,
                         PySequence_Fast_GET_ITEM(pair, 1));
            free(buf);
            goto fail;
        }
        size_t merged = (size_t)alen + (size_t)blen - m->prefix_len;
        if (merged > buf_cap) {
            char *grown = realloc(buf, merged * 2 + 16);
            if (!grown) {
                free(buf);
                PyErr_NoMemory();
                goto fail;
            }
            buf = grown;
            buf_cap = merged * 2 + 16;
        }
        memcpy(buf, a, (size_t)alen);
        memcpy(buf + alen, b + m->prefix_len, (size_t)blen - m->prefix_len);
        int32_t new_id = st_da_get(&m->da, buf, merged);
        if (new_id < 0) {
            PyErr_Format(PyExc_ValueError, "merges[%zd]: the merged token %R is not in the vocabulary", i,
                         PyUnicode_DecodeUTF8(buf, (Py_ssize_t)merged, "replace"));
            free(buf);
            goto fail;
        }
        merges_insert(m, a_id, b_id, (uint32_t)i, new_id);
    }
    free(buf);
    Py_DECREF(seq);
    m->error = "Unk token not found in the vocabulary";
    return new_object(type, m, now_ms() - t0);
fail:
    model_free(m);
    Py_DECREF(seq);
    return NULL;
}

static int tm_init(PyObject *self, PyObject *args, PyObject *kwds) {
    if (((TokenModelObject *)self)->model) return 0;
    PyErr_SetString(PyExc_TypeError, "build a TokenModel with TokenModel.wordpiece(), .unigram() or .bpe() "
                                     "(staticst.tokenization.native_model.build_token_model does it from a tokenizer)");
    return -1;
}

static void tm_dealloc(TokenModelObject *self) {
    model_free(self->model);
    free(self->scratch.buf);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

const st_model *st_model_from_object(PyObject *obj) {
    if (!PyObject_TypeCheck(obj, &TokenModelType) || !((TokenModelObject *)obj)->model) {
        PyErr_Format(PyExc_TypeError, "expected a staticst._kernel.TokenModel, got %.80s", Py_TYPE(obj)->tp_name);
        return NULL;
    }
    return ((TokenModelObject *)obj)->model;
}

/* Encode one str into out; -1 with an exception set. */
static int encode_str(TokenModelObject *self, PyObject *word, st_ibuf *out) {
    Py_ssize_t len;
    const char *p = utf8_of(word, &len, "a word");
    if (!p) return -1;
    int r = st_model_encode(self->model, p, (size_t)len, out, &self->scratch);
    if (r == ST_NOMEM) {
        PyErr_NoMemory();
        return -1;
    }
    if (r == ST_HF) {
        PyErr_Format(PyExc_ValueError, "the %s model cannot tokenize %R: %s (tokenizers raises this error too)",
                     kind_name(self->model->kind), word, self->model->error);
        return -1;
    }
    return 0;
}

static PyObject *ids_list(const int32_t *ids, size_t n) {
    PyObject *list = PyList_New((Py_ssize_t)n);
    if (!list) return NULL;
    for (size_t i = 0; i < n; i++) {
        PyObject *v = PyLong_FromLong(ids[i]);
        if (!v) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, v);
    }
    return list;
}

static PyObject *tm_encode(TokenModelObject *self, PyObject *word) {
    st_ibuf out = {0};
    if (encode_str(self, word, &out) < 0) {
        st_ibuf_free(&out);
        return NULL;
    }
    PyObject *res = ids_list(out.data, out.len);
    st_ibuf_free(&out);
    return res;
}

static PyObject *tm_encode_words(TokenModelObject *self, PyObject *words) {
    PyObject *seq = PySequence_Fast(words, "encode_words takes a list of str");
    if (!seq) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject *res = PyList_New(n);
    st_ibuf out = {0};
    for (Py_ssize_t i = 0; res && i < n; i++) {
        out.len = 0;
        PyObject *ids = encode_str(self, PySequence_Fast_GET_ITEM(seq, i), &out) < 0 ? NULL : ids_list(out.data, out.len);
        if (!ids) Py_CLEAR(res);
        else PyList_SET_ITEM(res, i, ids);
    }
    st_ibuf_free(&out);
    Py_DECREF(seq);
    return res;
}

/* encode_flat(words) -> (ids int32, offsets int64): the words' ids one after another, in one C loop (what a
 * benchmark or callgrind driver times: no Python objects per id). */
static PyObject *tm_encode_flat(TokenModelObject *self, PyObject *words) {
    PyObject *seq = PySequence_Fast(words, "encode_flat takes a list of str");
    if (!seq) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    npy_intp n1 = n + 1;
    PyObject *offsets = PyArray_SimpleNew(1, &n1, NPY_INT64);
    st_ibuf out = {0};
    PyObject *res = NULL;
    if (!offsets) goto done;
    int64_t *off = PyArray_DATA((PyArrayObject *)offsets);
    off[0] = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (encode_str(self, PySequence_Fast_GET_ITEM(seq, i), &out) < 0) goto done;
        off[i + 1] = (int64_t)out.len;
    }
    npy_intp len = (npy_intp)out.len;
    PyObject *ids = PyArray_SimpleNew(1, &len, NPY_INT32);
    if (!ids) goto done;
    if (len) memcpy(PyArray_DATA((PyArrayObject *)ids), out.data, (size_t)len * sizeof(int32_t));
    res = PyTuple_Pack(2, ids, offsets);
    Py_DECREF(ids);
done:
    Py_XDECREF(offsets);
    st_ibuf_free(&out);
    Py_DECREF(seq);
    return res;
}

static PyObject *tm_get_kind(TokenModelObject *self, void *c) { return PyUnicode_FromString(kind_name(self->model->kind)); }
static PyObject *tm_get_vocab_size(TokenModelObject *self, void *c) { return PyLong_FromLong(self->model->vocab_size); }
static PyObject *tm_get_memory(TokenModelObject *self, void *c) { return PyLong_FromSize_t(self->model->memory); }
static PyObject *tm_get_build_ms(TokenModelObject *self, void *c) { return PyFloat_FromDouble(self->build_ms); }
static PyObject *tm_get_trie_states(TokenModelObject *self, void *c) { return PyLong_FromUnsignedLong(self->model->da.nodes); }

static PyObject *tm_repr(TokenModelObject *self) {
    return PyUnicode_FromFormat("<TokenModel %s, %d ids, %zu KB>", kind_name(self->model->kind),
                                (int)self->model->vocab_size, self->model->memory / 1024);
}

static PyMethodDef tm_methods[] = {
    {"wordpiece", (PyCFunction)(void (*)(void))tm_wordpiece, METH_CLASS | METH_VARARGS | METH_KEYWORDS,
     "wordpiece(vocab, unk_token, continuing_subword_prefix, max_input_chars_per_word) -> TokenModel"},
    {"unigram", (PyCFunction)(void (*)(void))tm_unigram, METH_CLASS | METH_VARARGS | METH_KEYWORDS,
     "unigram(vocab: [(piece, score)], unk_id: int | None, byte_fallback: bool) -> TokenModel"},
    {"bpe", (PyCFunction)(void (*)(void))tm_bpe, METH_CLASS | METH_VARARGS | METH_KEYWORDS,
     "bpe(vocab, merges, unk_token, continuing_subword_prefix, end_of_word_suffix, fuse_unk, byte_fallback, "
     "ignore_merges) -> TokenModel"},
    {"encode", (PyCFunction)tm_encode, METH_O, "encode(word) -> ids, as tokenizer.model.tokenize(word) gives them"},
    {"encode_words", (PyCFunction)tm_encode_words, METH_O, "encode_words(words) -> [ids of each word]"},
    {"encode_flat", (PyCFunction)tm_encode_flat, METH_O,
     "encode_flat(words) -> (ids int32, offsets int64): word i's ids are ids[offsets[i]:offsets[i + 1]]"},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef tm_getset[] = {
    {"kind", (getter)tm_get_kind, NULL, "'WordPiece', 'Unigram' or 'BPE'.", NULL},
    {"vocab_size", (getter)tm_get_vocab_size, NULL, "Ids are in range(vocab_size).", NULL},
    {"memory", (getter)tm_get_memory, NULL, "Bytes the model holds (trie, scores, merge map).", NULL},
    {"build_ms", (getter)tm_get_build_ms, NULL, "Milliseconds the C build took (trie and tables).", NULL},
    {"trie_states", (getter)tm_get_trie_states, NULL, "States of the vocabulary trie.", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

PyTypeObject TokenModelType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "staticst._kernel.TokenModel",
    .tp_doc = PyDoc_STR("A tokenizer model (WordPiece, Unigram or BPE) in C, exact against Hugging Face tokenizers: "
                        "one pre-token in, its ids out. Immutable; shared by threads."),
    .tp_basicsize = sizeof(TokenModelObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)tm_init,
    .tp_dealloc = (destructor)tm_dealloc,
    .tp_repr = (reprfunc)tm_repr,
    .tp_methods = tm_methods,
    .tp_getset = tm_getset,
};
