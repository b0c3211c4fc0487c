/* Byte-plane split and merge for the byte-grouped chunk codec (FORMAT 3.4).
 *
 * The same permutation as scribestore.planes' numpy fallback, as plain loops
 * that the compiler vectorizes, run without the GIL so a reader or writer
 * thread can split or merge while another thread hashes.
 *
 * Layout of n little-endian k-byte elements (k = 2 or 4):
 *   top:  byte k-1 of every element (n bytes)
 *   rest: k = 4: bytes 0-1 of every element (2n), then byte 2 of every element (n)
 *         k = 2: byte 0 of every element (n)
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static void split4(const uint8_t *restrict src, Py_ssize_t n, uint8_t *restrict top,
                   uint8_t *restrict low, uint8_t *restrict b2) {
    for (Py_ssize_t i = 0; i < n; i++) {
        uint32_t v;
        memcpy(&v, src + 4 * i, 4);
        top[i] = (uint8_t)(v >> 24);
        b2[i] = (uint8_t)(v >> 16);
        uint16_t lo = (uint16_t)v;
        memcpy(low + 2 * i, &lo, 2);
    }
}

static void merge4(uint8_t *restrict dst, Py_ssize_t n, const uint8_t *restrict top,
                   const uint8_t *restrict low, const uint8_t *restrict b2) {
    for (Py_ssize_t i = 0; i < n; i++) {
        uint16_t lo;
        memcpy(&lo, low + 2 * i, 2);
        uint32_t v = (uint32_t)lo | ((uint32_t)b2[i] << 16) | ((uint32_t)top[i] << 24);
        memcpy(dst + 4 * i, &v, 4);
    }
}

static void split2(const uint8_t *restrict src, Py_ssize_t n, uint8_t *restrict top,
                   uint8_t *restrict low) {
    for (Py_ssize_t i = 0; i < n; i++) {
        low[i] = src[2 * i];
        top[i] = src[2 * i + 1];
    }
}

static void merge2(uint8_t *restrict dst, Py_ssize_t n, const uint8_t *restrict top,
                   const uint8_t *restrict low) {
    for (Py_ssize_t i = 0; i < n; i++) {
        dst[2 * i] = low[i];
        dst[2 * i + 1] = top[i];
    }
}

/* Check the three buffers' lengths against k and the element count. */
static int check(Py_ssize_t k, Py_ssize_t whole, Py_ssize_t top, Py_ssize_t rest, Py_ssize_t *n) {
    if (k != 2 && k != 4) {
        PyErr_SetString(PyExc_ValueError, "element width must be 2 or 4");
        return -1;
    }
    if (whole % k != 0 || top != whole / k || rest != (k - 1) * (whole / k)) {
        PyErr_SetString(PyExc_ValueError, "byte plane lengths do not match the elements");
        return -1;
    }
    *n = whole / k;
    return 0;
}

/* split(src, k, top, rest) or merge(dst, k, top, rest): the three buffers are
 * parsed, checked, and permuted with the GIL released. */
static PyObject *permute(PyObject *args, int merging) {
    Py_buffer whole, top, rest;
    Py_ssize_t k, n;
    const char *format = merging ? "w*ny*y*" : "y*nw*w*";
    if (!PyArg_ParseTuple(args, format, &whole, &k, &top, &rest)) return NULL;
    PyObject *result = NULL;
    if (check(k, whole.len, top.len, rest.len, &n) == 0) {
        uint8_t *w = whole.buf, *t = top.buf, *r = rest.buf;
        Py_BEGIN_ALLOW_THREADS
        if (merging && k == 4) merge4(w, n, t, r, r + 2 * n);
        else if (merging) merge2(w, n, t, r);
        else if (k == 4) split4(w, n, t, r, r + 2 * n);
        else split2(w, n, t, r);
        Py_END_ALLOW_THREADS
        result = Py_None;
        Py_INCREF(result);
    }
    PyBuffer_Release(&whole);
    PyBuffer_Release(&top);
    PyBuffer_Release(&rest);
    return result;
}

static PyObject *split(PyObject *self, PyObject *args) { return permute(args, 0); }

static PyObject *merge(PyObject *self, PyObject *args) { return permute(args, 1); }

static PyMethodDef methods[] = {
    {"split", split, METH_VARARGS,
     "split(src, k, top, rest): write the byte planes of src's k-byte elements."},
    {"merge", merge, METH_VARARGS,
     "merge(dst, k, top, rest): write the k-byte elements whose planes are top and rest."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "scribestore._planes",
    "Byte-plane split and merge without the GIL (see scribestore.planes).", -1, methods,
};

PyMODINIT_FUNC PyInit__planes(void) { return PyModule_Create(&module); }
