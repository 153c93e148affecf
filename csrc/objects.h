/*
 * The kernel's Python objects and what the files of its Python face share (private; included after kernel.h):
 *   module.c       the module (its functions, PyInit__kernel) and the WordTable type
 *   kernel_type.c  the Kernel type
 *   batch.c        one Kernel call on a batch: the phases, the resolve and fallback calls into Python
 * Every array and id is checked in these files, at the boundary: dtypes, shapes, contiguity, id ranges.
 */
#ifndef STATICST_OBJECTS_H
#define STATICST_OBJECTS_H

#include "kernel.h"
#include "pipeline.h"

/* numpy's C API is one table for the whole extension: import_array() in PyInit__kernel fills it (module.c
 * defines ST_NUMPY_INIT), every other file uses it by this name. */
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#define PY_ARRAY_UNIQUE_SYMBOL st_numpy_api
#ifndef ST_NUMPY_INIT
#define NO_IMPORT_ARRAY
#endif
#include <numpy/arrayobject.h>

/* ------------------------------------------------------------------ WordTable (module.c) */

typedef struct {
    PyObject_HEAD
    st_gen *current;
    uint32_t start_words, max_words;
    Py_ssize_t generations;
} WordTableObject;

extern PyTypeObject WordTableType;

/* Insert a word into the table's current generation (a full one grows or is replaced): 0, also for a word
 * too long to cache; -1 on out of memory. */
int st_wordtable_insert(WordTableObject *wt, const st_key *key, const int32_t *ids, size_t n);
/* Insert every word of an overlay (in insertion order), then free it and set *fresh to NULL: 0 or -1. */
int st_wordtable_take(WordTableObject *wt, st_gen **fresh);

/* ------------------------------------------------------------------ Pipeline (pipeline.c) */

typedef struct {
    PyObject_HEAD
    st_pipe pipe;
    PyObject *model_obj, *normalizer_obj; /* what pipe.model / pipe.normalizer point into */
    st_pipe_scratch scratch;              /* for the Python methods (they hold the GIL) */
} PipelineObject;

extern PyTypeObject PipelineType;
/* The st_pipe of a Pipeline (borrowed; NULL with a TypeError if not one). */
const st_pipe *st_pipe_from_object(PyObject *obj);

/* ------------------------------------------------------------------ Kernel (kernel_type.c) */

typedef struct {
    PyObject_HEAD
    st_plan plan;
    st_pool pool;
    PyObject *table, *mapping, *weights; /* the arrays the pointers in `pool` point into */
    WordTableObject *words;
    PyObject *resolve, *fallback;
    PyObject *pipeline;   /* the native pipeline (a Pipeline), or NULL: the word-cache plan */
    const st_pipe *pipe;
    st_pipe_scratch one;  /* embed_one's scratch (it holds the GIL throughout) */
    int threads;
    Py_ssize_t parallel_min_bytes;
} KernelObject;

extern PyTypeObject KernelType;
/* kernel_type.c: the names of the fields Kernel(config) reads, in order (a new tuple) */
PyObject *st_kernel_config_fields(void);

/* ------------------------------------------------------------------ the batch pipeline (batch.c) */

/* 0 when every ids[i] is in [0, limit), else -1 with a ValueError naming the first one outside. */
int st_check_ids(const int32_t *ids, int64_t n, int64_t limit);
/* The whole batch (a list of str), chunk by chunk: pooled into out (n x dim float32), or, with out NULL,
 * its ids into *ids_out (int32) and *offsets_out (int64, n + 1). Adds the ids pooled to *tokens. 0, or -1
 * with an exception set. */
int st_run_batch(KernelObject *k, PyObject *seq, float *out, PyObject **ids_out, PyObject **offsets_out,
                 int64_t *tokens);

#endif
