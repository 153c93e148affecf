/*
 * The Kernel type: construction (every array of the engine checked once: dtypes, shapes, contiguity, id
 * ranges; the tokenizer plan copied in), and its methods embed / tokenize / embed_one / pool. embed and
 * tokenize run the batch pipeline in batch.c; embed_one takes a one-text fast path first.
 */
#include "kernel.h"
#include "objects.h"

#include <stdlib.h>
#include <string.h>

static void free_plan(st_plan *plan) {
    for (int i = 0; i < plan->n_raw; i++) free(plan->raw[i]);
    for (int i = 0; i < plan->n_norm; i++) free(plan->norm[i]);
    plan->n_raw = plan->n_norm = 0;
}

/* Garbage-collector support: the kernel holds Python callables (resolve, fallback: closures over the
 * tokenizer) that could hold the kernel's owner in turn. */
static int kernel_traverse(KernelObject *self, visitproc visit, void *arg) {
    Py_VISIT(self->table);
    Py_VISIT(self->mapping);
    Py_VISIT(self->weights);
    Py_VISIT((PyObject *)self->words);
    Py_VISIT(self->resolve);
    Py_VISIT(self->fallback);
    Py_VISIT(self->pipeline);
    return 0;
}

/* Breaks a cycle through the callables (a cleared kernel refuses to run: batch.c checks them). */
static int kernel_clear(KernelObject *self) {
    Py_CLEAR(self->resolve);
    Py_CLEAR(self->fallback);
    return 0;
}

static void kernel_dealloc(KernelObject *self) {
    PyObject_GC_UnTrack(self);
    free_plan(&self->plan);
    Py_XDECREF(self->table);
    Py_XDECREF(self->mapping);
    Py_XDECREF(self->weights);
    Py_XDECREF((PyObject *)self->words);
    Py_XDECREF(self->resolve);
    Py_XDECREF(self->fallback);
    Py_XDECREF(self->pipeline);
    st_pipe_scratch_free(&self->one);
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

/* The fields of the one config object Kernel(config) reads (staticst.kernel.KernelConfig), in this order; exported
   as staticst._kernel.KERNEL_CONFIG_FIELDS so the Python dataclass is checked against this list. */
static char *config_fields[] = {"words",      "table",      "mapping",     "weights",      "mode",       "prepend_space",
                                "norm_table", "raw",        "normalized",  "char_limit",   "max_length", "truncate_left",
                                "unk_id",     "drop_unknown", "arithmetic", "normalize",   "weight_sum", "resolve",
                                "fallback",   "threads",    "boundary",    "pipeline",     NULL};

PyObject *st_kernel_config_fields(void) {
    Py_ssize_t n = 0;
    while (config_fields[n]) n++;
    PyObject *out = PyTuple_New(n);
    if (!out) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *name = PyUnicode_FromString(config_fields[i]);
        if (!name) {
            Py_DECREF(out);
            return NULL;
        }
        PyTuple_SET_ITEM(out, i, name);
    }
    return out;
}

static int kernel_init_fields(KernelObject *self, PyObject *fields);

/* Kernel(config): every field of config_fields read by name from one object (attribute access), then checked as
   one set of keywords, so a missing or mistyped field is an error naming it. */
static int kernel_init(KernelObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"config", NULL};
    PyObject *config;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O:Kernel", kwlist, &config)) return -1;
    PyObject *fields = PyDict_New();
    if (!fields) return -1;
    for (char **name = config_fields; *name; name++) {
        PyObject *value = PyObject_GetAttrString(config, *name);
        if (!value) {
            if (PyErr_ExceptionMatches(PyExc_AttributeError)) {
                PyErr_Clear();
                PyErr_Format(PyExc_TypeError, "the kernel's config (%.100s) has no field '%s'", Py_TYPE(config)->tp_name,
                             *name);
            }
            Py_DECREF(fields);
            return -1;
        }
        int failed = PyDict_SetItemString(fields, *name, value);
        Py_DECREF(value);
        if (failed < 0) {
            Py_DECREF(fields);
            return -1;
        }
    }
    int status = kernel_init_fields(self, fields); /* the dict keeps the borrowed values alive meanwhile */
    Py_DECREF(fields);
    return status;
}

static int kernel_init_fields(KernelObject *self, PyObject *fields) {
    PyObject *words, *table, *mapping, *weights, *norm_table, *raw, *normalized, *resolve, *fallback;
    int mode, prepend_space, truncate_left, drop_unknown, arithmetic, normalize, weight_sum, threads;
    Py_ssize_t char_limit, max_length, unk_id;
    const char *boundary = NULL;
    Py_ssize_t n_boundary = 0;
    PyObject *pipeline = Py_None;
    PyObject *no_args = PyTuple_New(0);
    if (!no_args) return -1;
    int parsed = PyArg_ParseTupleAndKeywords(
        no_args, fields, "O!OOOipOOOnnpnpiipOOiz#O:Kernel config", config_fields, &WordTableType, &words, &table,
        &mapping, &weights, &mode, &prepend_space, &norm_table, &raw, &normalized, &char_limit, &max_length,
        &truncate_left, &unk_id, &drop_unknown, &arithmetic, &normalize, &weight_sum, &resolve, &fallback, &threads,
        &boundary, &n_boundary, &pipeline);
    Py_DECREF(no_args);
    if (!parsed) return -1;
    if (pipeline != Py_None) {
        const st_pipe *pipe = st_pipe_from_object(pipeline);
        if (!pipe) return -1;
        if (!pipe->model) {
            PyErr_SetString(PyExc_ValueError, "the kernel's pipeline needs its model");
            return -1;
        }
    }
    if (self->table) {
        PyErr_SetString(PyExc_RuntimeError, "a Kernel is initialised once");
        return -1;
    }
    if (mode < ST_MODE_WHITESPACE || mode > ST_MODE_NONE) {
        PyErr_Format(PyExc_ValueError, "unknown mode %d", mode);
        return -1;
    }
    if (arithmetic != ST_ARITH_MODEL2VEC && arithmetic != ST_ARITH_ST) {
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
    if (arithmetic == ST_ARITH_MODEL2VEC && dtype == ST_F16 && p->acc64) {
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
    if (pipeline != Py_None) {
        Py_INCREF(pipeline);
        self->pipeline = pipeline;
        self->pipe = st_pipe_from_object(pipeline);
    }
    self->threads = threads;
    self->parallel_min_bytes = 1 << 14; /* about 230 sentences: below that a part is not worth a hand-off */
    return 0;
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
    if (st_run_batch(self, texts, (float *)PyArray_DATA(out), NULL, NULL, &tokens) < 0) return NULL;
    return PyLong_FromLongLong((long long)tokens);
}

static PyObject *kernel_tokenize(KernelObject *self, PyObject *texts) {
    PyObject *ids = NULL, *offsets = NULL;
    int64_t tokens = 0;
    if (st_run_batch(self, texts, NULL, &ids, &offsets, &tokens) < 0) return NULL;
    PyObject *res = PyTuple_Pack(2, ids, offsets);
    Py_DECREF(ids);
    Py_DECREF(offsets);
    return res;
}

/* embed_one tokenizes a text up to this long on the calling thread, holding the GIL. */
#define ST_ONE_MAX_BYTES (1 << 16)

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
    if (self->pipe) {
        /* the native pipeline, on this thread with the GIL held: a long text takes the batch path instead
         * (released GIL, Ctrl-C answered) */
        s = ST_HF;
        if (data && len <= ST_ONE_MAX_BYTES) {
            st_pipe_scratch *ps = &self->one;
            ps->intr = NULL;
            ps->id_limit = self->plan.n_valid_ids;
            s = st_pipe_text(self->pipe, gen, data, (size_t)st_cut_bytes(&self->plan, data, len, ascii), ascii, &buf, ps);
            if (s == ST_OK) buf.len = (size_t)st_apply_rules(&self->plan, buf.data, (Py_ssize_t)buf.len);
            if (ps->fresh && st_wordtable_take(self->words, &ps->fresh) < 0) s = ST_NOMEM;
        }
    } else {
        s = st_tokenize_text(&self->plan, gen, NULL, data, len, ascii, &buf, &scratch, 0);
    }
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
        if (!rows || st_run_batch(self, list, (float *)PyArray_DATA((PyArrayObject *)rows), NULL, NULL, &tokens) < 0) {
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
    if (st_check_ids(idd, total, self->plan.n_valid_ids) < 0) return NULL;
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

PyTypeObject KernelType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "staticst._kernel.Kernel",
    .tp_doc = PyDoc_STR("The compiled text -> vector path of one engine (see staticst.kernel)."),
    .tp_basicsize = sizeof(KernelObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)kernel_init,
    .tp_traverse = (traverseproc)kernel_traverse,
    .tp_clear = (inquiry)kernel_clear,
    .tp_dealloc = (destructor)kernel_dealloc,
    .tp_methods = kernel_methods,
    .tp_getset = kernel_getset,
};
