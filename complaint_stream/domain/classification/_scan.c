/*
 * Native term scanner: the optional compiled form of text.TermMatcher.
 *
 * For every position of a text it walks the term trie and keeps the longest
 * term that starts there (respecting the ASCII word boundaries below); a term
 * is reported when it reaches past every term reported before it, so terms
 * wholly inside a longer, earlier match are dropped.  That is exactly the
 * reference semantics of text.find_terms (the overlapping regex form), done
 * in one C loop instead of a regex engine run per position.
 *
 * Word boundaries, as in text.py: a term whose first character is an ASCII
 * letter or digit ([a-z0-9]) cannot start right after another one; a term
 * flagged "right bound" (a whole-word term ending in [a-z0-9]) cannot end
 * right before one.
 *
 * The trie is built in Python (text.TermMatcher) and handed over flattened:
 * per node, the range of its edges in the edge arrays (sorted by character)
 * and the index of the term ending there (-1: none).  This file only scans.
 * Pure C99 and the limited CPython API used by any extension; no state
 * beyond the immutable arrays, so a Scanner can be shared freely.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    PyObject_HEAD
    PyObject *terms;        /* tuple of str, indexed by node_term */
    uint32_t *edge_char;    /* n_edges */
    int32_t *edge_child;    /* n_edges */
    int32_t *node_first;    /* n_nodes: first edge of the node */
    int32_t *node_count;    /* n_nodes: number of edges */
    int32_t *node_term;     /* n_nodes: term index or -1 */
    uint8_t *node_rbound;   /* n_nodes: 1 = needs a right word boundary */
    Py_ssize_t n_nodes;
    Py_ssize_t n_edges;
    uint64_t *masks;        /* n_terms * mask_words, or NULL (see masked()) */
    Py_ssize_t mask_words;
    /* Bit c set: a term starts with code point c (c < 65536).  Most
       positions of a text start no term; this rejects them at once. */
    uint8_t root_bmp[65536 / 8];
} Scanner;

static inline int may_start(const Scanner *s, Py_UCS4 ch) {
    return ch >= 65536 || (s->root_bmp[ch >> 3] >> (ch & 7)) & 1;
}

static inline int is_word(Py_UCS4 ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
}

static inline int32_t child_of(const Scanner *s, int32_t node, Py_UCS4 ch) {
    int32_t lo = s->node_first[node];
    int32_t hi = lo + s->node_count[node];
    while (lo < hi) {
        int32_t mid = lo + (hi - lo) / 2;
        uint32_t c = s->edge_char[mid];
        if (c == ch)
            return s->edge_child[mid];
        if (c < ch)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

static void *copy_buffer(PyObject *obj, Py_ssize_t itemsize, Py_ssize_t *count, const char *name) {
    Py_buffer view;
    void *out;
    if (PyObject_GetBuffer(obj, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    if (view.len % itemsize != 0) {
        PyBuffer_Release(&view);
        PyErr_Format(PyExc_ValueError, "%s: length %zd is not a multiple of %zd", name, view.len, itemsize);
        return NULL;
    }
    out = PyMem_Malloc(view.len ? (size_t)view.len : 1);
    if (out == NULL) {
        PyBuffer_Release(&view);
        PyErr_NoMemory();
        return NULL;
    }
    memcpy(out, view.buf, (size_t)view.len);
    *count = view.len / itemsize;
    PyBuffer_Release(&view);
    return out;
}

static void Scanner_clear_arrays(Scanner *self) {
    PyMem_Free(self->edge_char);
    PyMem_Free(self->edge_child);
    PyMem_Free(self->node_first);
    PyMem_Free(self->node_count);
    PyMem_Free(self->node_term);
    PyMem_Free(self->node_rbound);
    PyMem_Free(self->masks);
    self->masks = NULL;
    self->mask_words = 0;
    self->edge_char = NULL;
    self->edge_child = NULL;
    self->node_first = self->node_count = self->node_term = NULL;
    self->node_rbound = NULL;
}

static void Scanner_dealloc(Scanner *self) {
    Scanner_clear_arrays(self);
    Py_XDECREF(self->terms);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Scanner_init(Scanner *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"terms", "edge_char", "edge_child", "node_first", "node_count",
                             "node_term", "node_rbound", "masks", NULL};
    PyObject *terms, *edge_char, *edge_child, *node_first, *node_count, *node_term, *node_rbound;
    PyObject *masks = NULL;
    Py_ssize_t n_edges2, n_nodes2, n_nodes3, n_nodes4, n_nodes5, i;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!OOOOOO|O", kwlist, &PyTuple_Type, &terms, &edge_char,
                                     &edge_child, &node_first, &node_count, &node_term, &node_rbound,
                                     &masks))
        return -1;
    Scanner_clear_arrays(self);
    Py_CLEAR(self->terms);
    for (i = 0; i < PyTuple_GET_SIZE(terms); i++) {
        if (!PyUnicode_Check(PyTuple_GET_ITEM(terms, i))) {
            PyErr_SetString(PyExc_TypeError, "terms must be a tuple of str");
            return -1;
        }
    }
    self->edge_char = copy_buffer(edge_char, 4, &self->n_edges, "edge_char");
    self->edge_child = copy_buffer(edge_child, 4, &n_edges2, "edge_child");
    self->node_first = copy_buffer(node_first, 4, &self->n_nodes, "node_first");
    self->node_count = copy_buffer(node_count, 4, &n_nodes2, "node_count");
    self->node_term = copy_buffer(node_term, 4, &n_nodes3, "node_term");
    self->node_rbound = copy_buffer(node_rbound, 1, &n_nodes4, "node_rbound");
    if (!self->edge_char || !self->edge_child || !self->node_first || !self->node_count ||
        !self->node_term || !self->node_rbound)
        goto fail;
    n_nodes5 = self->n_nodes;
    if (n_edges2 != self->n_edges || n_nodes2 != n_nodes5 || n_nodes3 != n_nodes5 || n_nodes4 != n_nodes5 ||
        n_nodes5 < 1) {
        PyErr_SetString(PyExc_ValueError, "inconsistent trie arrays");
        goto fail;
    }
    /* Validate every index once, so that scanning needs no checks; the
       binary search needs each node's edges in strictly ascending order. */
    for (i = 0; i < self->n_nodes; i++) {
        int32_t first = self->node_first[i], count = self->node_count[i], term = self->node_term[i], k;
        if (first < 0 || count < 0 || (Py_ssize_t)first + count > self->n_edges ||
            term < -1 || term >= PyTuple_GET_SIZE(terms)) {
            PyErr_SetString(PyExc_ValueError, "trie arrays out of range");
            goto fail;
        }
        for (k = first + 1; k < first + count; k++) {
            if (self->edge_char[k] <= self->edge_char[k - 1]) {
                PyErr_SetString(PyExc_ValueError, "trie edges are not sorted");
                goto fail;
            }
        }
    }
    for (i = 0; i < self->n_edges; i++) {
        if (self->edge_child[i] < 0 || self->edge_child[i] >= self->n_nodes) {
            PyErr_SetString(PyExc_ValueError, "trie arrays out of range");
            goto fail;
        }
    }
    if (masks != NULL && masks != Py_None) {
        Py_ssize_t n_words, n_terms = PyTuple_GET_SIZE(terms);
        self->masks = copy_buffer(masks, 8, &n_words, "masks");
        if (self->masks == NULL)
            goto fail;
        if (n_terms == 0 || n_words % n_terms != 0 || n_words == 0) {
            PyErr_SetString(PyExc_ValueError, "masks: need the same number of 64-bit words for every term");
            goto fail;
        }
        self->mask_words = n_words / n_terms;
        /* The masks arrive as little-endian bytes: make them native words. */
        for (i = 0; i < n_words; i++) {
            const uint8_t *b = (const uint8_t *)(self->masks + i);
            uint64_t v = 0;
            int j;
            for (j = 7; j >= 0; j--)
                v = (v << 8) | b[j];
            self->masks[i] = v;
        }
    }
    memset(self->root_bmp, 0, sizeof(self->root_bmp));
    for (i = self->node_first[0]; i < self->node_first[0] + self->node_count[0]; i++) {
        uint32_t ch = self->edge_char[i];
        if (ch < 65536)
            self->root_bmp[ch >> 3] |= (uint8_t)(1u << (ch & 7));
    }
    Py_INCREF(terms);
    self->terms = terms;
    return 0;
fail:
    Scanner_clear_arrays(self);
    return -1;
}

/* The code points of ``text`` for a scan: 0, or -1 with an exception set. */
typedef struct {
    Py_ssize_t n;
    int kind;
    const void *data;
} TextView;

static int text_view(const Scanner *self, PyObject *text, TextView *view) {
    if (self->terms == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Scanner is not initialised");
        return -1;
    }
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "a Scanner scans str only");
        return -1;
    }
    if (PyUnicode_READY(text) < 0)
        return -1;
    view->n = PyUnicode_GET_LENGTH(text);
    view->kind = PyUnicode_KIND(text);
    view->data = PyUnicode_DATA(text);
    return 0;
}

/* scan(text) -> (terms, starts, ends): see the file comment. */
static PyObject *Scanner_scan(Scanner *self, PyObject *text) {
    PyObject *terms = NULL, *starts = NULL, *ends = NULL, *result;
    Py_ssize_t n, p, reach = 0;
    int kind;
    const void *data;
    TextView view;
    if (text_view(self, text, &view) < 0)
        return NULL;
    n = view.n;
    kind = view.kind;
    data = view.data;
    terms = PyList_New(0);
    starts = PyList_New(0);
    ends = PyList_New(0);
    if (!terms || !starts || !ends)
        goto fail;
    for (p = 0; p < n; p++) {
        Py_UCS4 first = PyUnicode_READ(kind, data, p);
        int32_t node = 0, best = -1;
        Py_ssize_t i, best_end = 0;
        if (!may_start(self, first))
            continue;
        if (is_word(first) && p > 0 && is_word(PyUnicode_READ(kind, data, p - 1)))
            continue; /* inside an ASCII word: no term starts here */
        for (i = p; i < n; i++) {
            int32_t term;
            node = child_of(self, node, PyUnicode_READ(kind, data, i));
            if (node < 0)
                break;
            term = self->node_term[node];
            if (term >= 0 &&
                (!self->node_rbound[node] || i + 1 >= n || !is_word(PyUnicode_READ(kind, data, i + 1)))) {
                best = term;
                best_end = i + 1;
            }
        }
        if (best >= 0 && best_end > reach) {
            PyObject *s, *e;
            reach = best_end;
            if (PyList_Append(terms, PyTuple_GET_ITEM(self->terms, best)) < 0)
                goto fail;
            s = PyLong_FromSsize_t(p);
            if (s == NULL || PyList_Append(starts, s) < 0) {
                Py_XDECREF(s);
                goto fail;
            }
            Py_DECREF(s);
            e = PyLong_FromSsize_t(best_end);
            if (e == NULL || PyList_Append(ends, e) < 0) {
                Py_XDECREF(e);
                goto fail;
            }
            Py_DECREF(e);
        }
    }
    result = PyTuple_Pack(3, terms, starts, ends);
    Py_DECREF(terms);
    Py_DECREF(starts);
    Py_DECREF(ends);
    return result;
fail:
    Py_XDECREF(terms);
    Py_XDECREF(starts);
    Py_XDECREF(ends);
    return NULL;
}

/* masked(text) -> int: the bitwise OR of the masks of every term occurring
   anywhere in the text as a plain substring (no word boundaries, overlaps
   allowed); 0 when none does.  Bit k of the
   result is bit k % 64 of word k / 64 of the masks given to the constructor. */
static PyObject *Scanner_masked(Scanner *self, PyObject *text) {
    Py_ssize_t n, p, w, words = self->mask_words;
    int kind;
    const void *data;
    uint64_t small[16], *acc;
    PyObject *result;
    TextView view;
    if (text_view(self, text, &view) < 0)
        return NULL;
    if (self->masks == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Scanner has no masks");
        return NULL;
    }
    acc = words <= 16 ? small : PyMem_Malloc((size_t)words * sizeof(uint64_t));
    if (acc == NULL)
        return PyErr_NoMemory();
    memset(acc, 0, (size_t)words * sizeof(uint64_t));
    n = view.n;
    kind = view.kind;
    data = view.data;
    for (p = 0; p < n; p++) {
        int32_t node = 0;
        Py_ssize_t i;
        if (!may_start(self, PyUnicode_READ(kind, data, p)))
            continue;
        for (i = p; i < n; i++) {
            int32_t term;
            node = child_of(self, node, PyUnicode_READ(kind, data, i));
            if (node < 0)
                break;
            term = self->node_term[node];
            if (term >= 0) {
                const uint64_t *mask = self->masks + (Py_ssize_t)term * words;
                for (w = 0; w < words; w++)
                    acc[w] |= mask[w];
            }
        }
    }
    /* To little-endian bytes, in place (each word is read before it is
       overwritten), then one int from them. */
    for (w = 0; w < words; w++) {
        uint64_t v = acc[w];
        uint8_t *b = (uint8_t *)(acc + w);
        int j;
        for (j = 0; j < 8; j++, v >>= 8)
            b[j] = (uint8_t)(v & 0xff);
    }
    result = _PyLong_FromByteArray((const unsigned char *)acc, (size_t)words * sizeof(uint64_t), 1, 0);
    if (acc != small)
        PyMem_Free(acc);
    return result;
}

static PyMethodDef Scanner_methods[] = {
    {"masked", (PyCFunction)Scanner_masked, METH_O,
     "masked(text) -> int: OR of the masks of the terms occurring anywhere in text."},
    {"scan", (PyCFunction)Scanner_scan, METH_O,
     "scan(text) -> (terms, starts, ends): the longest term at each position, minus those inside an "
     "earlier, longer match (text.find_terms semantics)."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ScannerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "complaint_stream.domain.classification._scan.Scanner",
    .tp_basicsize = sizeof(Scanner),
    .tp_dealloc = (destructor)Scanner_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Longest-match term scanner over a flattened trie (see text.TermMatcher).",
    .tp_methods = Scanner_methods,
    .tp_init = (initproc)Scanner_init,
    .tp_new = PyType_GenericNew,
};

static struct PyModuleDef scan_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_scan",
    .m_doc = "Native term scanner for the complaint classifier.",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__scan(void) {
    PyObject *m;
    if (PyType_Ready(&ScannerType) < 0)
        return NULL;
    m = PyModule_Create(&scan_module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&ScannerType);
    if (PyModule_AddObject(m, "Scanner", (PyObject *)&ScannerType) < 0) {
        Py_DECREF(&ScannerType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
