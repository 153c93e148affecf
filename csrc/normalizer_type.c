/*
 * _kernel.Normalizer: a compiled normaliser program (normalize.c) behind a small Python face. Built by
 * staticst/tokenization/native_normalizer.py from the normalizer section of `tokenizer.json`:
 *
 *   Normalizer(steps)   steps: a list of tuples, each one step of the program, in order:
 *       ("bert_clean",) ("bert_cjk",) ("bert_strip",) ("lowercase",) ("nfd",) ("nfkd",) ("nfc",) ("nfkc",)
 *       ("strip_accents",) ("nmt",) ("bytelevel",) ("strip", left: bool, right: bool)
 *       ("replace", pattern: str, content: str)       every non-overlapping occurrence (pattern not empty)
 *       ("replace_run", char: str, min: int, content: str)   each run of >= min `char`s (a regex `c{min,}`)
 *       ("prepend", text: str)  ("precompiled", charsmap: bytes)
 *   .normalize(text) -> str, or None where the text must take the slow path (a flagged code point)
 *   .description       the compiled program (stages and fast paths)
 *   ._repeat(text, n)  normalise n times without Python in between (instruction counts per byte)
 */
#include "kernel.h"
#include "normalize.h"
#include "tokenizer.h"
#include "unicode.h"

typedef struct {
    PyObject_HEAD st_normalizer *nz;
} NormalizerObject;

static PyTypeObject NormalizerType;

static const struct {
    const char *name;
    st_norm_step_kind kind;
} simple_steps[] = {
    {"bert_clean", ST_NS_BERT_CLEAN}, {"bert_cjk", ST_NS_BERT_CJK}, {"bert_strip", ST_NS_BERT_STRIP},
    {"lowercase", ST_NS_LOWERCASE},   {"nfd", ST_NS_NFD},           {"nfkd", ST_NS_NFKD},
    {"nfc", ST_NS_NFC},               {"nfkc", ST_NS_NFKC},         {"strip_accents", ST_NS_STRIP_ACCENTS},
    {"nmt", ST_NS_NMT},               {"bytelevel", ST_NS_BYTELEVEL},
};

static int utf8_arg(PyObject *o, const char **s, size_t *n, const char *what, Py_ssize_t i) {
    Py_ssize_t len;
    if (!PyUnicode_Check(o)) {
        PyErr_Format(PyExc_TypeError, "normaliser step %zd: %s must be a str, got %.80s", i, what, Py_TYPE(o)->tp_name);
        return -1;
    }
    *s = PyUnicode_AsUTF8AndSize(o, &len);
    if (!*s) return -1;
    *n = (size_t)len;
    return 0;
}

static int normalizer_init(NormalizerObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"steps", NULL};
    PyObject *steps;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O", kwlist, &steps)) return -1;
    PyObject *seq = PySequence_Fast(steps, "Normalizer(steps): steps must be a list of tuples");
    if (!seq) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    st_norm_step *sp = PyMem_Calloc((size_t)(n ? n : 1), sizeof(st_norm_step));
    if (!sp) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return -1;
    }
    int ok = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *t = PySequence_Fast_GET_ITEM(seq, i);
        if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) < 1 || !PyUnicode_Check(PyTuple_GET_ITEM(t, 0))) {
            PyErr_Format(PyExc_TypeError, "normaliser step %zd must be a tuple (name, ...), got %R", i, t);
            goto out;
        }
        const char *name = PyUnicode_AsUTF8(PyTuple_GET_ITEM(t, 0));
        if (!name) goto out;
        Py_ssize_t na = PyTuple_GET_SIZE(t) - 1;
        int found = 0;
        for (size_t k = 0; k < sizeof(simple_steps) / sizeof(simple_steps[0]); k++) {
            if (!strcmp(name, simple_steps[k].name)) {
                sp[i].kind = simple_steps[k].kind;
                found = 1;
                break;
            }
        }
        if (found) {
            if (na) {
                PyErr_Format(PyExc_TypeError, "normaliser step %zd (%s) takes no arguments, got %zd", i, name, na);
                goto out;
            }
            continue;
        }
        if (!strcmp(name, "strip") && na == 2) {
            sp[i].kind = ST_NS_STRIP;
            if ((sp[i].a = PyObject_IsTrue(PyTuple_GET_ITEM(t, 1))) < 0) goto out;
            if ((sp[i].b = PyObject_IsTrue(PyTuple_GET_ITEM(t, 2))) < 0) goto out;
        } else if (!strcmp(name, "replace") && na == 2) {
            sp[i].kind = ST_NS_REPLACE;
            if (utf8_arg(PyTuple_GET_ITEM(t, 1), &sp[i].s1, &sp[i].n1, "the pattern", i) ||
                utf8_arg(PyTuple_GET_ITEM(t, 2), &sp[i].s2, &sp[i].n2, "the content", i))
                goto out;
        } else if (!strcmp(name, "replace_run") && na == 3) {
            sp[i].kind = ST_NS_REPLACE_RUN;
            PyObject *c = PyTuple_GET_ITEM(t, 1);
            if (!PyUnicode_Check(c) || PyUnicode_GET_LENGTH(c) != 1) {
                PyErr_Format(PyExc_ValueError, "normaliser step %zd (replace_run): the char must be one code point, got %R", i, c);
                goto out;
            }
            sp[i].cp = PyUnicode_READ_CHAR(c, 0);
            long mn = PyLong_AsLong(PyTuple_GET_ITEM(t, 2));
            if (mn == -1 && PyErr_Occurred()) goto out;
            if (mn < 1 || mn > 1000000) {
                PyErr_Format(PyExc_ValueError, "normaliser step %zd (replace_run): min must be in 1..1000000, got %ld", i, mn);
                goto out;
            }
            sp[i].a = (int)mn;
            if (utf8_arg(PyTuple_GET_ITEM(t, 3), &sp[i].s2, &sp[i].n2, "the content", i)) goto out;
        } else if (!strcmp(name, "prepend") && na == 1) {
            sp[i].kind = ST_NS_PREPEND;
            if (utf8_arg(PyTuple_GET_ITEM(t, 1), &sp[i].s1, &sp[i].n1, "the prepended text", i)) goto out;
        } else if (!strcmp(name, "precompiled") && na == 1) {
            sp[i].kind = ST_NS_PRECOMPILED;
            PyObject *b = PyTuple_GET_ITEM(t, 1);
            if (!PyBytes_Check(b)) {
                PyErr_Format(PyExc_TypeError, "normaliser step %zd (precompiled): the charsmap must be bytes, got %.80s", i,
                             Py_TYPE(b)->tp_name);
                goto out;
            }
            sp[i].s1 = PyBytes_AS_STRING(b);
            sp[i].n1 = (size_t)PyBytes_GET_SIZE(b);
        } else {
            PyErr_Format(PyExc_ValueError,
                         "normaliser step %zd: unknown step %R (or wrong number of arguments); known: bert_clean, "
                         "bert_cjk, bert_strip, lowercase, nfd, nfkd, nfc, nfkc, strip_accents, nmt, bytelevel, "
                         "strip(left, right), replace(pattern, content), replace_run(char, min, content), "
                         "prepend(text), precompiled(charsmap)",
                         i, t);
            goto out;
        }
    }
    {
        char err[256] = "";
        st_normalizer *nz = st_normalizer_build(sp, (int)n, err, sizeof(err));
        if (!nz) {
            if (!strcmp(err, "out of memory"))
                PyErr_NoMemory();
            else
                PyErr_SetString(PyExc_ValueError, err);
            goto out;
        }
        st_normalizer_free(self->nz);
        self->nz = nz;
        ok = 1;
    }
out:
    PyMem_Free(sp);
    Py_DECREF(seq);
    return ok ? 0 : -1;
}

static void normalizer_dealloc(NormalizerObject *self) {
    st_normalizer_free(self->nz);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int check_ready(NormalizerObject *self) {
    if (!self->nz) {
        PyErr_SetString(PyExc_RuntimeError, "Normalizer was not initialised");
        return -1;
    }
    return 0;
}

static PyObject *normalizer_normalize(NormalizerObject *self, PyObject *text) {
    if (check_ready(self)) return NULL;
    if (!PyUnicode_Check(text)) return PyErr_Format(PyExc_TypeError, "normalize() takes a str, got %.80s", Py_TYPE(text)->tp_name);
    Py_ssize_t len;
    const char *s = PyUnicode_AsUTF8AndSize(text, &len);
    if (!s) return NULL; /* lone surrogates: UnicodeEncodeError */
    st_cbuf out = {0};
    int rc;
    if (len > 4096) {
        Py_BEGIN_ALLOW_THREADS rc = st_normalize(self->nz, s, (size_t)len, &out);
        Py_END_ALLOW_THREADS
    } else
        rc = st_normalize(self->nz, s, (size_t)len, &out);
    PyObject *res;
    if (rc == ST_OK)
        res = PyUnicode_DecodeUTF8(out.data ? out.data : "", (Py_ssize_t)out.len, "strict");
    else if (rc == ST_HF) {
        res = Py_None;
        Py_INCREF(res);
    } else
        res = PyErr_NoMemory();
    st_cbuf_free(&out);
    return res;
}

static PyObject *normalizer_repeat(NormalizerObject *self, PyObject *args) {
    PyObject *text;
    Py_ssize_t n;
    if (check_ready(self) || !PyArg_ParseTuple(args, "Un", &text, &n)) return NULL;
    Py_ssize_t len;
    const char *s = PyUnicode_AsUTF8AndSize(text, &len);
    if (!s) return NULL;
    int rc = ST_OK;
    size_t total = 0;
    Py_BEGIN_ALLOW_THREADS st_cbuf out = {0};
    for (Py_ssize_t i = 0; i < n && rc == ST_OK; i++) {
        out.len = 0;
        rc = st_normalize(self->nz, s, (size_t)len, &out);
        total += out.len;
    }
    st_cbuf_free(&out);
    Py_END_ALLOW_THREADS if (rc == ST_NOMEM) return PyErr_NoMemory();
    return PyLong_FromSize_t(rc == ST_HF ? 0 : total);
}

static PyObject *normalizer_get_description(NormalizerObject *self, void *closure) {
    if (check_ready(self)) return NULL;
    char buf[1024];
    st_normalizer_describe(self->nz, buf, sizeof(buf));
    return PyUnicode_FromString(buf);
}

static PyMethodDef normalizer_methods[] = {
    {"normalize", (PyCFunction)normalizer_normalize, METH_O,
     "normalize(text) -> str | None: the normalised text, or None where it must take the slow path"},
    {"_repeat", (PyCFunction)normalizer_repeat, METH_VARARGS,
     "_repeat(text, n) -> int: normalise n times (for instruction counts); the output bytes, 0 on the slow path"},
    {NULL}};

static PyGetSetDef normalizer_getset[] = {
    {"description", (getter)normalizer_get_description, NULL, "the compiled program", NULL}, {NULL}};

static PyTypeObject NormalizerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "staticst._kernel.Normalizer",
    .tp_basicsize = sizeof(NormalizerObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A Hugging Face normaliser compiled to a native program (see native_normalizer.py).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)normalizer_init,
    .tp_dealloc = (destructor)normalizer_dealloc,
    .tp_methods = normalizer_methods,
    .tp_getset = normalizer_getset,
};

const st_normalizer *st_normalizer_from_object(PyObject *obj) {
    if (!PyObject_TypeCheck(obj, &NormalizerType)) {
        PyErr_Format(PyExc_TypeError, "expected a staticst._kernel.Normalizer, got %.80s", Py_TYPE(obj)->tp_name);
        return NULL;
    }
    NormalizerObject *o = (NormalizerObject *)obj;
    if (!o->nz) {
        PyErr_SetString(PyExc_RuntimeError, "Normalizer was not initialised");
        return NULL;
    }
    return o->nz;
}

static PyObject *uni_record(PyObject *mod, PyObject *arg) {
    long cp = PyLong_AsLong(arg);
    if (cp == -1 && PyErr_Occurred()) return NULL;
    if (cp < 0 || cp > 0x10FFFF) return PyErr_Format(PyExc_ValueError, "code point must be in 0..0x10FFFF, got %ld", cp);
    const st_uni_rec *r = st_uni_rec_of((uint32_t)cp);
    uint32_t dec[ST_UNI_MAX_DECOMP], kdec[ST_UNI_MAX_DECOMP], low[3];
    int nd = st_uni_decompose((uint32_t)cp, 0, dec), nk = st_uni_decompose((uint32_t)cp, 1, kdec);
    int nl = st_uni_lower((uint32_t)cp, low);
    PyObject *d = PyTuple_New(nd), *k = PyTuple_New(nk), *l = PyTuple_New(nl);
    if (!d || !k || !l) goto fail;
    for (int i = 0; i < nd; i++) PyTuple_SET_ITEM(d, i, PyLong_FromUnsignedLong(dec[i]));
    for (int i = 0; i < nk; i++) PyTuple_SET_ITEM(k, i, PyLong_FromUnsignedLong(kdec[i]));
    for (int i = 0; i < nl; i++) PyTuple_SET_ITEM(l, i, PyLong_FromUnsignedLong(low[i]));
    return Py_BuildValue("{sIsIsNsisisNsN}", "props", r->props, "flags", r->flags, "lower", l, "ccc", (int)r->ccc, "gcb",
                         (int)r->gcb, "decomposition", d, "compat_decomposition", k);
fail:
    Py_XDECREF(d);
    Py_XDECREF(k);
    Py_XDECREF(l);
    return NULL;
}

static PyObject *uni_compose(PyObject *mod, PyObject *args) {
    unsigned long a, b;
    if (!PyArg_ParseTuple(args, "kk", &a, &b)) return NULL;
    if (a > 0x10FFFF || b > 0x10FFFF) return PyErr_Format(PyExc_ValueError, "code points must be in 0..0x10FFFF");
    return PyLong_FromUnsignedLong(st_uni_compose((uint32_t)a, (uint32_t)b));
}

static PyMethodDef uni_functions[] = {
    {"_uni_record", uni_record, METH_O, "_uni_record(cp) -> dict: the tables' record of a code point (tests)"},
    {"_uni_compose", uni_compose, METH_VARARGS, "_uni_compose(a, b) -> int: the primary composite, 0 if none (tests)"},
    {NULL}};

int st_normalizer_register(PyObject *m) {
    if (PyType_Ready(&NormalizerType) < 0) return -1;
    Py_INCREF(&NormalizerType);
    if (PyModule_AddObject(m, "Normalizer", (PyObject *)&NormalizerType) < 0) {
        Py_DECREF(&NormalizerType);
        return -1;
    }
    for (PyMethodDef *f = uni_functions; f->ml_name; f++) {
        PyObject *fn = PyCFunction_NewEx(f, NULL, NULL);
        if (!fn || PyModule_AddObject(m, f->ml_name, fn) < 0) {
            Py_XDECREF(fn);
            return -1;
        }
    }
    PyObject *v = Py_BuildValue("{ssssss}", "tokenizers", ST_UNI_TOKENIZERS_VERSION, "unicodedata",
                                ST_UNI_UNICODEDATA_VERSION, "regex_unicode", ST_UNI_REGEX_UNICODE_VERSION);
    if (!v || PyModule_AddObject(m, "UNICODE_TABLES", v) < 0) {
        Py_XDECREF(v);
        return -1;
    }
    return 0;
}
