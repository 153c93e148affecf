/*
 * The Python type `_kernel.Pipeline`: a compiled tokenizer pipeline (see pipeline.h), built by
 * staticst.tokenization.native from a `tokenizers.Tokenizer` and handed to a Kernel. Every value is checked
 * here; its methods (pre_tokenize, split_added, encode) run one text with the GIL held, for tests.
 */
#include "pipeline.h"
#include "objects.h"

#include <stdlib.h>
#include <string.h>

static void pipeline_dealloc(PipelineObject *self) {
    st_pretok_free(&self->pipe.pretok);
    st_added_free(&self->pipe.raw);
    st_added_free(&self->pipe.norm);
    st_pipe_scratch_free(&self->scratch);
    Py_XDECREF(self->model_obj);
    Py_XDECREF(self->normalizer_obj);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* A dict's int item (default when absent); -1 with an error set on a bad value. */
static int dict_int(PyObject *d, const char *key, long dflt, long lo, long hi, long *out) {
    PyObject *v = PyDict_GetItemString(d, key);
    if (!v) {
        *out = dflt;
        return 0;
    }
    long x = PyLong_AsLong(v);
    if (x == -1 && PyErr_Occurred()) return -1;
    if (x < lo || x > hi) {
        PyErr_Format(PyExc_ValueError, "pre-tokenizer operation field %s=%ld is outside %ld..%ld", key, x, lo, hi);
        return -1;
    }
    *out = x;
    return 0;
}

static int parse_op(PyObject *d, st_pt_op *op) {
    if (!PyDict_Check(d)) {
        PyErr_SetString(PyExc_TypeError, "each pre-tokenizer operation must be a dict");
        return -1;
    }
    long kind, behavior, invert, classes, prepend, split, map, num_max;
    if (dict_int(d, "kind", -1, ST_PT_BERT, ST_PT_RUNSPLIT, &kind) || dict_int(d, "behavior", 0, 0, 4, &behavior) ||
        dict_int(d, "invert", 0, 0, 1, &invert) || dict_int(d, "classes", 0, 0, 0xFF, &classes) ||
        dict_int(d, "prepend", 0, 0, 2, &prepend) || dict_int(d, "split", 1, 0, 1, &split) ||
        dict_int(d, "map", 1, 0, 1, &map) || dict_int(d, "num_max", 0, 0, 1000, &num_max))
        return -1;
    op->kind = (int)kind;
    op->behavior = (int)behavior;
    op->invert = (int)invert;
    op->classes = (uint32_t)classes;
    op->prepend = (int)prepend;
    op->split = (int)split;
    op->map = (int)map;
    op->num_max = (int)num_max;
    PyObject *ch = PyDict_GetItemString(d, "ch");
    if (ch) {
        if (!PyUnicode_Check(ch) || PyUnicode_GET_LENGTH(ch) != 1) {
            PyErr_SetString(PyExc_ValueError, "pre-tokenizer operation field ch must be one character");
            return -1;
        }
        Py_ssize_t n;
        const char *u = PyUnicode_AsUTF8AndSize(ch, &n);
        if (!u) return -1;
        memcpy(op->chb, u, (size_t)n);
        op->chn = (int)n;
        op->ch = (uint32_t)PyUnicode_READ_CHAR(ch, 0);
    } else if (kind == ST_PT_CHAR || kind == ST_PT_METASPACE || kind == ST_PT_RUNSPLIT) {
        PyErr_SetString(PyExc_ValueError, "this pre-tokenizer operation needs its character (ch)");
        return -1;
    }
    PyObject *pattern = PyDict_GetItemString(d, "pattern");
    if (pattern) {
        Py_ssize_t n;
        const char *u = PyUnicode_Check(pattern) ? PyUnicode_AsUTF8AndSize(pattern, &n) : NULL;
        if (!u || n == 0) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "the pattern must be a non-empty str");
            return -1;
        }
        op->str = malloc((size_t)n);
        if (!op->str) {
            PyErr_NoMemory();
            return -1;
        }
        memcpy(op->str, u, (size_t)n);
        op->str_len = (size_t)n;
    } else if (kind == ST_PT_STRING) {
        PyErr_SetString(PyExc_ValueError, "a string split needs its pattern");
        return -1;
    }
    return 0;
}

/* added tokens: a sequence of (content: str, id: int, single_word, lstrip, rstrip) */
static int parse_added(PyObject *seq, st_added *a, const char *what) {
    PyObject *fast = PySequence_Fast(seq, "added tokens must be a sequence of tuples");
    if (!fast) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    st_added_token *tokens = calloc((size_t)(n ? n : 1), sizeof(st_added_token));
    if (!tokens) {
        Py_DECREF(fast);
        PyErr_NoMemory();
        return -1;
    }
    int count = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *content;
        long id;
        int single_word, lstrip, rstrip;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(fast, i), "Ulppp", &content, &id, &single_word, &lstrip, &rstrip))
            goto fail;
        Py_ssize_t len;
        const char *u = PyUnicode_AsUTF8AndSize(content, &len);
        if (!u) goto fail;
        if (len == 0) {
            PyErr_Format(PyExc_ValueError, "an empty %s added token", what);
            goto fail;
        }
        if (id < 0 || id > INT32_MAX) {
            PyErr_Format(PyExc_ValueError, "added token id %ld is out of range", id);
            goto fail;
        }
        tokens[count].content = malloc((size_t)len);
        if (!tokens[count].content) {
            PyErr_NoMemory();
            goto fail;
        }
        memcpy(tokens[count].content, u, (size_t)len);
        tokens[count].len = (size_t)len;
        tokens[count].id = (int32_t)id;
        tokens[count].single_word = (uint8_t)single_word;
        tokens[count].lstrip = (uint8_t)lstrip;
        tokens[count].rstrip = (uint8_t)rstrip;
        count++;
    }
    Py_DECREF(fast);
    if (st_added_build(a, tokens, count) != ST_OK) {
        st_added_free(a);
        PyErr_NoMemory();
        return -1;
    }
    return 0;
fail:
    for (int i = 0; i < count; i++) free(tokens[i].content);
    free(tokens);
    Py_DECREF(fast);
    return -1;
}

/* ascii: None or (table: 128 str, prefix: str, odd pairs: sequence of 2-character str) */
static int parse_ascii(PyObject *ascii, st_pipe *p) {
    if (ascii == Py_None) return 0;
    PyObject *table, *prefix, *odd;
    if (!PyArg_ParseTuple(ascii, "OUO", &table, &prefix, &odd)) return -1;
    PyObject *fast = PySequence_Fast(table, "the ASCII table must be a sequence of 128 str");
    if (!fast) return -1;
    if (PySequence_Fast_GET_SIZE(fast) != 128) {
        Py_DECREF(fast);
        PyErr_SetString(PyExc_ValueError, "the ASCII table must hold 128 entries");
        return -1;
    }
    for (int c = 0; c < 128; c++) {
        PyObject *item = PySequence_Fast_GET_ITEM(fast, c);
        Py_ssize_t n;
        const char *u = PyUnicode_Check(item) ? PyUnicode_AsUTF8AndSize(item, &n) : NULL;
        if (!u || n > 8) {
            Py_DECREF(fast);
            if (!PyErr_Occurred())
                PyErr_Format(PyExc_ValueError, "ASCII table entry %d must be a str of at most 8 UTF-8 bytes", c);
            return -1;
        }
        p->norm_len[c] = (uint8_t)n;
        memcpy(p->norm_out[c], u, (size_t)n);
    }
    Py_DECREF(fast);
    Py_ssize_t n;
    const char *u = PyUnicode_AsUTF8AndSize(prefix, &n);
    if (!u) return -1;
    if (n > 8) {
        PyErr_SetString(PyExc_ValueError, "the ASCII prefix must be at most 8 UTF-8 bytes");
        return -1;
    }
    memcpy(p->ascii_prefix, u, (size_t)n);
    p->ascii_prefix_len = (int)n;
    fast = PySequence_Fast(odd, "odd pairs must be a sequence of str");
    if (!fast) return -1;
    Py_ssize_t m = PySequence_Fast_GET_SIZE(fast);
    if (m > 16) {
        Py_DECREF(fast);
        PyErr_SetString(PyExc_ValueError, "at most 16 odd ASCII pairs");
        return -1;
    }
    for (Py_ssize_t i = 0; i < m; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(fast, i);
        if (!PyUnicode_Check(item) || PyUnicode_GET_LENGTH(item) != 2 || !PyUnicode_IS_ASCII(item)) {
            Py_DECREF(fast);
            PyErr_SetString(PyExc_ValueError, "odd pairs must be two ASCII characters");
            return -1;
        }
        const char *pair = (const char *)PyUnicode_1BYTE_DATA(item);
        p->odd[i][0] = pair[0];
        p->odd[i][1] = pair[1];
        p->ascii_odd[(unsigned char)pair[0]] = 1;
    }
    p->n_odd = (int)m;
    Py_DECREF(fast);
    p->ascii_table = 1;
    return 0;
}

static int pipeline_init(PipelineObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"model", "normalizer", "pretok", "added_raw", "added_norm", "ascii", "key_bytelevel",
                             "first_check", NULL};
    PyObject *model = Py_None, *normalizer = Py_None, *pretok = NULL, *added_raw = NULL, *added_norm = NULL,
             *ascii = Py_None;
    int key_bytelevel = 0, first_check = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|OOOOOOpp", kwlist, &model, &normalizer, &pretok, &added_raw,
                                     &added_norm, &ascii, &key_bytelevel, &first_check))
        return -1;
    if (self->model_obj || self->pipe.has_pretok || self->pipe.raw.n_tokens) {
        PyErr_SetString(PyExc_RuntimeError, "a Pipeline is initialised once");
        return -1;
    }
    st_classes_init();
    st_bytelevel_init();
    st_pipe *p = &self->pipe;
    if (model != Py_None) {
        p->model = st_model_from_object(model);
        if (!p->model) return -1;
        Py_INCREF(model);
        self->model_obj = model;
    }
    if (normalizer != Py_None) {
        p->normalizer = st_normalizer_from_object(normalizer);
        if (!p->normalizer) return -1;
        Py_INCREF(normalizer);
        self->normalizer_obj = normalizer;
    }
    if (pretok && pretok != Py_None) {
        PyObject *fast = PySequence_Fast(pretok, "pretok must be a sequence of operations");
        if (!fast) return -1;
        Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
        if (n > ST_MAX_PT_OPS) {
            Py_DECREF(fast);
            PyErr_Format(PyExc_ValueError, "at most %d pre-tokenizer operations, got %zd", ST_MAX_PT_OPS, n);
            return -1;
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            if (parse_op(PySequence_Fast_GET_ITEM(fast, i), &p->pretok.ops[i]) < 0) {
                p->pretok.n_ops = (int)i + 1;
                Py_DECREF(fast);
                return -1;
            }
            p->pretok.n_ops = (int)i + 1;
        }
        Py_DECREF(fast);
        p->has_pretok = n > 0;
    }
    if (added_raw && parse_added(added_raw, &p->raw, "raw") < 0) return -1;
    if (added_norm && parse_added(added_norm, &p->norm, "normalized") < 0) return -1;
    if (parse_ascii(ascii, p) < 0) return -1;
    p->key_bytelevel = key_bytelevel;
    p->first_check = first_check;
    return 0;
}

const st_pipe *st_pipe_from_object(PyObject *obj) {
    if (!PyObject_TypeCheck(obj, &PipelineType)) {
        PyErr_Format(PyExc_TypeError, "expected a staticst._kernel.Pipeline, got %.80s", Py_TYPE(obj)->tp_name);
        return NULL;
    }
    return &((PipelineObject *)obj)->pipe;
}

static PyObject *str_of(const char *p, size_t n) { return PyUnicode_DecodeUTF8(p, (Py_ssize_t)n, "strict"); }

/* pre_tokenize(text) -> the pre-tokens of a normalised text as the model receives them, or None (slow path) */
static PyObject *pipeline_pre_tokenize(PipelineObject *self, PyObject *text) {
    Py_ssize_t n;
    const char *u = PyUnicode_Check(text) ? PyUnicode_AsUTF8AndSize(text, &n) : NULL;
    if (!u) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "text must be a str");
        return NULL;
    }
    const char *buf = u;
    const st_pieces *pieces = NULL;
    st_pieces one = {0};
    if (self->pipe.has_pretok) {
        int rc = st_pretokenize(&self->pipe.pretok, u, (size_t)n, 1, &self->scratch.pw, &buf, &pieces);
        if (rc == ST_NOMEM) return PyErr_NoMemory();
        if (rc == ST_HF) Py_RETURN_NONE;
    } else {
        if (n && st_pieces_push(&one, 0, (uint32_t)n, 1)) return PyErr_NoMemory();
        pieces = &one;
    }
    PyObject *list = PyList_New(0);
    for (size_t k = 0; list && k < pieces->len; k++) {
        const st_piece *pc = &pieces->data[k];
        PyObject *s;
        if (self->pipe.key_bytelevel) {
            self->scratch.keymap.len = 0;
            if (st_bytelevel_map(buf + pc->off, pc->len, &self->scratch.keymap)) {
                Py_CLEAR(list);
                PyErr_NoMemory();
                break;
            }
            s = str_of(self->scratch.keymap.data, self->scratch.keymap.len);
        } else {
            s = str_of(buf + pc->off, pc->len);
        }
        if (!s || PyList_Append(list, s) < 0) Py_CLEAR(list);
        Py_XDECREF(s);
    }
    free(one.data);
    return list;
}

/* split_added(text, normalized=False) -> [(piece, id or None)], or None (slow path) */
static PyObject *pipeline_split_added(PipelineObject *self, PyObject *args) {
    PyObject *text;
    int normalized = 0;
    if (!PyArg_ParseTuple(args, "U|p", &text, &normalized)) return NULL;
    Py_ssize_t n;
    const char *u = PyUnicode_AsUTF8AndSize(text, &n);
    if (!u) return NULL;
    st_segments segs = {0};
    int r = st_added_split(normalized ? &self->pipe.norm : &self->pipe.raw, u, (size_t)n, &segs);
    if (r == -1) return PyErr_NoMemory();
    if (r == -2) {
        st_segments_free(&segs);
        Py_RETURN_NONE;
    }
    PyObject *list = PyList_New(0);
    for (size_t k = 0; list && k < segs.len; k++) {
        st_segment *sg = &segs.data[k];
        PyObject *item = sg->id >= 0 ? Py_BuildValue("(N l)", str_of(u + sg->start, sg->end - sg->start), (long)sg->id)
                                     : Py_BuildValue("(N O)", str_of(u + sg->start, sg->end - sg->start), Py_None);
        if (!item || PyList_Append(list, item) < 0) Py_CLEAR(list);
        Py_XDECREF(item);
    }
    st_segments_free(&segs);
    return list;
}

/* encode(text) -> ids (no token rules, no word table), or None (the slow path) */
static PyObject *pipeline_encode(PipelineObject *self, PyObject *text) {
    if (!self->pipe.model) {
        PyErr_SetString(PyExc_ValueError, "this Pipeline has no model");
        return NULL;
    }
    Py_ssize_t n;
    const char *u = PyUnicode_Check(text) ? PyUnicode_AsUTF8AndSize(text, &n) : NULL;
    if (!u) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "text must be a str");
        return NULL;
    }
    st_ibuf out = {0};
    self->scratch.id_limit = INT32_MAX;
    int rc = st_pipe_text(&self->pipe, NULL, u, (size_t)n, PyUnicode_IS_ASCII(text), &out, &self->scratch);
    if (rc == ST_NOMEM) {
        st_ibuf_free(&out);
        return PyErr_NoMemory();
    }
    if (rc != ST_OK) {
        st_ibuf_free(&out);
        Py_RETURN_NONE;
    }
    PyObject *list = PyList_New((Py_ssize_t)out.len);
    for (size_t i = 0; list && i < out.len; i++) {
        PyObject *v = PyLong_FromLong(out.data[i]);
        if (!v) Py_CLEAR(list);
        else PyList_SET_ITEM(list, (Py_ssize_t)i, v);
    }
    st_ibuf_free(&out);
    return list;
}

static PyMethodDef pipeline_methods[] = {
    {"pre_tokenize", (PyCFunction)pipeline_pre_tokenize, METH_O,
     "pre_tokenize(normalized_text) -> the pre-tokens the model gets, or None (the slow path)."},
    {"split_added", (PyCFunction)pipeline_split_added, METH_VARARGS,
     "split_added(text, normalized=False) -> [(piece, id or None)], or None (the slow path)."},
    {"encode", (PyCFunction)pipeline_encode, METH_O,
     "encode(text) -> the ids (before token rules), or None (the slow path)."},
    {NULL, NULL, 0, NULL}};

PyTypeObject PipelineType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "staticst._kernel.Pipeline",
    .tp_doc = PyDoc_STR("A tokenizer pipeline compiled for the kernel (see staticst.tokenization.native)."),
    .tp_basicsize = sizeof(PipelineObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)pipeline_init,
    .tp_dealloc = (destructor)pipeline_dealloc,
    .tp_methods = pipeline_methods,
};
