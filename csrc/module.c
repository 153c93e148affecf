/*
 * The module staticst._kernel: its functions (empty_rows and the float16 / pairwise-sum test hooks),
 * PyInit__kernel, and the WordTable type. The Kernel type is in kernel_type.c, the batch pipeline behind
 * it in batch.c; the objects they share are in objects.h.
 */
#define ST_NUMPY_INIT /* this file's import_array() fills the numpy API table the other files use */
#include "kernel.h"
#include "objects.h"
#include "tokenizer.h"

#include <stdlib.h>
#include <sys/mman.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

/* ================================================================== WordTable */

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
int st_wordtable_insert(WordTableObject *wt, const st_key *key, const int32_t *ids, size_t n) {
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

int st_wordtable_take(WordTableObject *wt, st_gen **fresh) {
    st_gen *g = *fresh;
    if (!g) return 0;
    int rc = 0;
    for (uint32_t i = 0; i < g->n_entries && rc == 0; i++) {
        const st_entry *e = &g->entries[i];
        st_key key;
        st_key_make(&key, st_entry_key(g, e), e->key_len);
        rc = st_wordtable_insert(wt, &key, st_entry_ids(g, e), e->n_ids);
    }
    st_gen_decref(g);
    *fresh = NULL;
    return rc;
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

PyTypeObject WordTableType = {
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

/* Give the C heap's free pages back to the system (glibc's malloc_trim): after a large object is freed (a
 * released Hugging Face tokenizer: ~300 MB of small Rust allocations), glibc keeps its pages otherwise. */
static PyObject *trim_heap(PyObject *module, PyObject *noargs) {
    (void)module;
    (void)noargs;
#if defined(__GLIBC__)
    int released;
    Py_BEGIN_ALLOW_THREADS;
    released = malloc_trim(0);
    Py_END_ALLOW_THREADS;
    return PyBool_FromLong(released);
#else
    Py_RETURN_FALSE;
#endif
}

/* The codes Kernel(...) takes, by name (kernel.py reads them here: nothing is copied by hand). */
static int add_dict(PyObject *m, const char *name, const char *const *keys, const long *values, size_t n) {
    PyObject *d = PyDict_New();
    if (!d) return -1;
    for (size_t i = 0; i < n; i++) {
        PyObject *v = PyLong_FromLong(values[i]);
        if (!v || PyDict_SetItemString(d, keys[i], v) < 0) {
            Py_XDECREF(v);
            Py_DECREF(d);
            return -1;
        }
        Py_DECREF(v);
    }
    if (PyModule_AddObject(m, name, d) < 0) {
        Py_DECREF(d);
        return -1;
    }
    return 0;
}

static int add_constants(PyObject *m) {
    static const char *const modes[] = {"whitespace", "bert", "words", "metaspace", "llama", "none"};
    static const long mode_codes[] = {ST_MODE_WHITESPACE, ST_MODE_BERT,  ST_MODE_WORDS,
                                      ST_MODE_METASPACE,  ST_MODE_LLAMA, ST_MODE_NONE};
    static const char *const arithmetics[] = {"model2vec", "sentence-transformers"};
    static const long arithmetic_codes[] = {ST_ARITH_MODEL2VEC, ST_ARITH_ST};
    if (add_dict(m, "MODES", modes, mode_codes, sizeof mode_codes / sizeof *mode_codes) < 0 ||
        add_dict(m, "ARITHMETICS", arithmetics, arithmetic_codes, sizeof arithmetic_codes / sizeof *arithmetic_codes) < 0)
        return -1;
    return PyModule_AddIntConstant(m, "MAX_NORM", ST_MAX_NORM);
}

static PyMethodDef module_methods[] = {
    {"trim_heap", trim_heap, METH_NOARGS, "trim_heap() -> whether free heap pages went back to the system (glibc)."},
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
    if (PyType_Ready(&TokenModelType) < 0) return NULL;
    Py_INCREF(&TokenModelType);
    if (PyModule_AddObject(m, "TokenModel", (PyObject *)&TokenModelType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    if (PyType_Ready(&PipelineType) < 0) return NULL;
    Py_INCREF(&PipelineType);
    if (PyModule_AddObject(m, "Pipeline", (PyObject *)&PipelineType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    if (PyModule_AddObject(m, "WordTable", (PyObject *)&WordTableType) < 0 ||
        PyModule_AddObject(m, "Kernel", (PyObject *)&KernelType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    PyModule_AddIntConstant(m, "MAX_KEY", ST_MAX_KEY);
    PyObject *config_fields = st_kernel_config_fields();
    if (!config_fields || PyModule_AddObjectRef(m, "KERNEL_CONFIG_FIELDS", config_fields) < 0) {
        Py_XDECREF(config_fields);
        Py_DECREF(m);
        return NULL;
    }
    Py_DECREF(config_fields);
    if (add_constants(m) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    if (st_normalizer_register(m) < 0) { /* the native normalisers (normalizer_type.c) */
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
