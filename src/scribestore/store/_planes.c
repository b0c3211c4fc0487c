/* Byte-plane split and merge for the byte-grouped chunk codec (FORMAT 3.4).
 *
 * The same permutation as scribestore.store.planes' numpy fallback, as plain loops
 * that the compiler vectorizes, run without the GIL so a reader or writer
 * thread can split or merge while another thread hashes.
 *
 * Layout of n little-endian k-byte elements (k = 2 or 4):
 *   top:  byte k-1 of every element (n bytes)
 *   rest: k = 4: bytes 0-1 of every element (2n), then byte 2 of every element (n)
 *         k = 2: byte 0 of every element (n)
 *
 * The top plane may also be packed into 4-bit codes (blob codec 4): code c < 15
 * is table[c], code 15 the next escape byte; two codes per byte, low nibble
 * first.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>


/* Kept out of its caller's loop: inlined there, encoding measured ~20 % slower. */
#if defined(__GNUC__) || defined(__clang__)
#define NOINLINE __attribute__((noinline))
#else
#define NOINLINE
#endif

static inline void split4(const uint8_t *restrict src, Py_ssize_t n, uint8_t *restrict top,
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

static inline void merge4(uint8_t *restrict dst, Py_ssize_t n, const uint8_t *restrict top,
                   const uint8_t *restrict low, const uint8_t *restrict b2) {
    for (Py_ssize_t i = 0; i < n; i++) {
        uint16_t lo;
        memcpy(&lo, low + 2 * i, 2);
        uint32_t v = (uint32_t)lo | ((uint32_t)b2[i] << 16) | ((uint32_t)top[i] << 24);
        memcpy(dst + 4 * i, &v, 4);
    }
}

static inline void split2(const uint8_t *restrict src, Py_ssize_t n, uint8_t *restrict top,
                   uint8_t *restrict low) {
    for (Py_ssize_t i = 0; i < n; i++) {
        low[i] = src[2 * i];
        top[i] = src[2 * i + 1];
    }
}

static inline void merge2(uint8_t *restrict dst, Py_ssize_t n, const uint8_t *restrict top,
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

#define TABLE 15
#define ESCAPE 15
/* A packed top plane with more escapes than one in this many is left to zstd. */
#define MAX_ESCAPE_RATE 16

/* Pack n top bytes: table of the 15 most frequent values (ties: smaller value
 * first), codes, escapes. Returns the number of escapes. */
static inline Py_ssize_t pack(const uint8_t *restrict top, Py_ssize_t n, uint8_t *restrict table,
                       uint8_t *restrict codes, uint8_t *restrict esc) {
    /* Four interleaved histograms: runs of equal bytes would otherwise make
     * each increment wait for the previous one. */
    uint32_t hist[4][256] = {{0}};
    Py_ssize_t i = 0;
    for (; i + 4 <= n; i += 4) {
        hist[0][top[i]]++;
        hist[1][top[i + 1]]++;
        hist[2][top[i + 2]]++;
        hist[3][top[i + 3]]++;
    }
    for (; i < n; i++) hist[0][top[i]]++;
    uint64_t count[256];
    for (int v = 0; v < 256; v++)
        count[v] = (uint64_t)hist[0][v] + hist[1][v] + hist[2][v] + hist[3][v];
    /* The table: the 15 largest counts, ties to the smaller value (values
     * are visited in ascending order and only a strictly larger count wins),
     * then unused values in ascending order if fewer than 15 occur. */
    uint8_t code[256], used[256] = {0};
    int seen[256], nseen = 0, c = 0;
    memset(code, ESCAPE, sizeof code);
    for (int v = 0; v < 256; v++)
        if (count[v]) seen[nseen++] = v;
    for (; c < TABLE && c < nseen; c++) {
        int best = -1;
        for (int s = 0; s < nseen; s++) {
            int v = seen[s];
            if (!used[v] && (best < 0 || count[v] > count[best])) best = v;
        }
        used[best] = 1;
        table[c] = (uint8_t)best;
        code[best] = (uint8_t)c;
    }
    for (int v = 0; c < TABLE; v++)
        if (!used[v]) {
            table[c] = (uint8_t)v;
            code[v] = (uint8_t)c++;
        }
    Py_ssize_t nesc = 0;
    for (i = 0; i + 1 < n; i += 2) {
        uint8_t lo = code[top[i]], hi = code[top[i + 1]];
        codes[i >> 1] = (uint8_t)(lo | (hi << 4));
        if ((lo == ESCAPE) | (hi == ESCAPE)) {
            if (lo == ESCAPE) esc[nesc++] = top[i];
            if (hi == ESCAPE) esc[nesc++] = top[i + 1];
        }
    }
    if (i < n) {
        uint8_t lo = code[top[i]];
        codes[i >> 1] = lo;
        if (lo == ESCAPE) esc[nesc++] = top[i];
    }
    return nesc;
}

/* Unpack n top bytes; -1 if the escapes do not match the codes. */
static inline int unpack(uint8_t *restrict top, Py_ssize_t n, const uint8_t *restrict table,
                  const uint8_t *restrict codes, const uint8_t *restrict esc, Py_ssize_t nesc) {
    uint16_t pair[256];  /* both values of a code byte, escapes as 0 */
    uint8_t escapes[256];  /* how many of its two codes are escapes */
    for (int b = 0; b < 256; b++) {
        int lo = b & 15, hi = b >> 4;
        pair[b] = (uint16_t)((lo == ESCAPE ? 0 : table[lo]) | ((hi == ESCAPE ? 0 : table[hi]) << 8));
        escapes[b] = (uint8_t)((lo == ESCAPE) + (hi == ESCAPE));
    }
    Py_ssize_t j = 0, whole = n >> 1;
    for (Py_ssize_t i = 0; i < whole; i++) {
        uint8_t b = codes[i];
        memcpy(top + 2 * i, &pair[b], 2);
        if (escapes[b]) {
            if (j + escapes[b] > nesc) return -1;
            if ((b & 15) == ESCAPE) top[2 * i] = esc[j++];
            if ((b >> 4) == ESCAPE) top[2 * i + 1] = esc[j++];
        }
    }
    if (n & 1) {
        uint8_t b = codes[whole];
        if (b >> 4) return -1; /* the unused high nibble must be zero */
        if ((b & 15) == ESCAPE) {
            if (j >= nesc) return -1;
            top[n - 1] = esc[j++];
        } else {
            top[n - 1] = table[b & 15];
        }
    }
    return j == nesc ? 0 : -1;
}

static PyObject *pack_top(PyObject *self, PyObject *args) {
    Py_buffer top, table, codes, esc;
    if (!PyArg_ParseTuple(args, "y*w*w*w*", &top, &table, &codes, &esc)) return NULL;
    PyObject *result = NULL;
    Py_ssize_t n = top.len, nesc = 0;
    if (table.len != TABLE || codes.len != (n + 1) / 2 || esc.len < n) {
        PyErr_SetString(PyExc_ValueError, "packed top bytes: buffer lengths do not match");
    } else {
        Py_BEGIN_ALLOW_THREADS
        nesc = pack(top.buf, n, table.buf, codes.buf, esc.buf);
        Py_END_ALLOW_THREADS
        result = PyLong_FromSsize_t(nesc);
    }
    PyBuffer_Release(&top);
    PyBuffer_Release(&table);
    PyBuffer_Release(&codes);
    PyBuffer_Release(&esc);
    return result;
}

static PyObject *unpack_top(PyObject *self, PyObject *args) {
    Py_buffer top, table, codes, esc;
    if (!PyArg_ParseTuple(args, "w*y*y*y*", &top, &table, &codes, &esc)) return NULL;
    PyObject *result = NULL;
    Py_ssize_t n = top.len;
    int status = 0;
    if (table.len != TABLE || codes.len != (n + 1) / 2) {
        PyErr_SetString(PyExc_ValueError, "packed top bytes: buffer lengths do not match");
    } else {
        Py_BEGIN_ALLOW_THREADS
        status = unpack(top.buf, n, table.buf, codes.buf, esc.buf, esc.len);
        Py_END_ALLOW_THREADS
        if (status < 0)
            PyErr_SetString(PyExc_ValueError, "packed top bytes: codes and escapes disagree");
        else
            result = Py_None, Py_INCREF(result);
    }
    PyBuffer_Release(&top);
    PyBuffer_Release(&table);
    PyBuffer_Release(&codes);
    PyBuffer_Release(&esc);
    return result;
}

/* merge_packed(dst, k, table, codes, esc, rest): unpack a packed top plane and
 * merge it with the rest, in one call without the GIL; ValueError if the
 * lengths or the escapes disagree. */
static PyObject *merge_packed(PyObject *self, PyObject *args) {
    Py_buffer dst, table, codes, esc, rest;
    Py_ssize_t k, n;
    if (!PyArg_ParseTuple(args, "w*ny*y*y*y*", &dst, &k, &table, &codes, &esc, &rest))
        return NULL;
    int status = -1;
    PyObject *result = NULL;
    if (check(k, dst.len, dst.len / (k ? k : 1), rest.len, &n) == 0) {
        if (table.len != TABLE || codes.len != (n + 1) / 2) {
            PyErr_SetString(PyExc_ValueError, "packed top bytes: buffer lengths do not match");
        } else {
            uint8_t *top = PyMem_RawMalloc(n ? n : 1);
            if (top == NULL) {
                PyErr_NoMemory();
            } else {
                const uint8_t *r = rest.buf;
                Py_BEGIN_ALLOW_THREADS
                status = unpack(top, n, table.buf, codes.buf, esc.buf, esc.len);
                if (status == 0) {
                    if (k == 4) merge4(dst.buf, n, top, r, r + 2 * n);
                    else merge2(dst.buf, n, top, r);
                }
                Py_END_ALLOW_THREADS
                PyMem_RawFree(top);
                if (status < 0)
                    PyErr_SetString(PyExc_ValueError,
                                    "packed top bytes: codes and escapes disagree");
                else
                    result = Py_None, Py_INCREF(result);
            }
        }
    }
    PyBuffer_Release(&dst);
    PyBuffer_Release(&table);
    PyBuffer_Release(&codes);
    PyBuffer_Release(&esc);
    PyBuffer_Release(&rest);
    return result;
}

/* One chunk's blob (FORMAT 3.4) written to dst for a packed codec: codec 4,
 * or raw (codec 0) when packing would not make it smaller. Returns the blob's
 * length, or 0 if its top bytes have too many escapes to pack (the caller
 * uses zstd). top and esc are scratch space for size bytes each. */
NOINLINE static Py_ssize_t encode_one(const uint8_t *src, Py_ssize_t size, Py_ssize_t k, Py_ssize_t head,
                             uint8_t *dst, uint8_t *top, uint8_t *esc) {
    Py_ssize_t n = (size - head) / k;
    if (n >= 4) {
        const uint8_t *el = src + head;
        for (Py_ssize_t i = 0; i < n; i++) top[i] = el[k * i + k - 1];
        Py_ssize_t codes = 7 + TABLE, nesc = pack(top, n, dst + 7, dst + codes, esc);
        if (nesc * MAX_ESCAPE_RATE > n) return 0;
        Py_ssize_t rest = codes + (n + 1) / 2 + nesc, raw = rest + (k - 1) * n;
        Py_ssize_t len = raw + (size - k * n);
        if (len <= size) {
            uint32_t count = (uint32_t)nesc;
            dst[0] = 4, dst[1] = (uint8_t)k, dst[2] = (uint8_t)head;
            memcpy(dst + 3, &count, 4);
            memcpy(dst + codes + (n + 1) / 2, esc, (size_t)nesc);
            uint8_t *r = dst + rest;
            if (k == 4) {
                for (Py_ssize_t i = 0; i < n; i++) {
                    memcpy(r + 2 * i, el + 4 * i, 2);
                    r[2 * n + i] = el[4 * i + 2];
                }
            } else {
                for (Py_ssize_t i = 0; i < n; i++) r[i] = el[2 * i];
            }
            memcpy(dst + raw, src, (size_t)head);
            memcpy(dst + raw + head, el + k * n, (size_t)(size - head - k * n));
            return len;
        }
    }
    dst[0] = 0;
    memcpy(dst + 1, src, (size_t)size);
    return size + 1;
}

/* encode_packed(span, k, offset, layout, dst, lengths) -> chunks done.
 * layout holds two int64 per chunk (start in span, size); span starts at
 * byte offset of its object, so element boundaries fall where the object's
 * do. Blobs are written one after another into dst, without the GIL, while
 * dst has room for the largest possible blob (size + 1); lengths[i] gets
 * blob i's length, 0 for a chunk left to the caller (too many escapes). */
static PyObject *encode_packed(PyObject *self, PyObject *args) {
    Py_buffer span, layout, dst, lengths;
    Py_ssize_t k, offset;
    if (!PyArg_ParseTuple(args, "y*nny*w*w*", &span, &k, &offset, &layout, &dst, &lengths))
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t count = layout.len / (Py_ssize_t)(2 * sizeof(int64_t)), done = 0, largest = 1;
    const int64_t *chunks = layout.buf;
    uint8_t *top = NULL, *esc = NULL;
    if ((k != 2 && k != 4) || offset < 0 || layout.len % (Py_ssize_t)(2 * sizeof(int64_t)) ||
        lengths.len != count * (Py_ssize_t)sizeof(int64_t) ||
        ((uintptr_t)layout.buf | (uintptr_t)lengths.buf) % sizeof(int64_t)) {
        PyErr_SetString(PyExc_ValueError, "encode_packed: bad element width or layout");
        goto done;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        int64_t start = chunks[2 * i], size = chunks[2 * i + 1];
        if (start < 0 || size < 0 || start > span.len || size > span.len - start) {
            PyErr_SetString(PyExc_ValueError, "encode_packed: a chunk lies outside the span");
            goto done;
        }
        if (size > largest) largest = (Py_ssize_t)size;
    }
    top = PyMem_RawMalloc((size_t)largest);
    esc = PyMem_RawMalloc((size_t)largest);
    if (top == NULL || esc == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    int64_t *out = lengths.buf;
    Py_ssize_t used = 0;
    for (; done < count; done++) {
        Py_ssize_t start = (Py_ssize_t)chunks[2 * done], size = (Py_ssize_t)chunks[2 * done + 1];
        if (dst.len - used < size + 1) break;
        Py_ssize_t head = (k - (offset + start) % k) % k;
        if (head > size) head = size;
        Py_ssize_t len = encode_one((const uint8_t *)span.buf + start, size, k, head,
                                    (uint8_t *)dst.buf + used, top, esc);
        out[done] = len;
        used += len;
    }
    Py_END_ALLOW_THREADS
    result = PyLong_FromSsize_t(done);
done:
    PyMem_RawFree(top);
    PyMem_RawFree(esc);
    PyBuffer_Release(&span);
    PyBuffer_Release(&layout);
    PyBuffer_Release(&dst);
    PyBuffer_Release(&lengths);
    return result;
}

/* One blob of a run (FORMAT 3.4) decoded into dst (size bytes), for codecs 0
 * and 4; returns 0, 1 if the blob needs zstd (codecs 1 and 3: left to the
 * caller), or -1 with *why set if it is malformed. top is scratch space for
 * size bytes. */
static int decode_blob(const uint8_t *blob, Py_ssize_t len, uint8_t *dst, Py_ssize_t size,
                       uint8_t *top, const char **why) {
    if (len < 1) return *why = "empty chunk blob", -1;
    if (blob[0] == 1 || blob[0] == 3) return 1;
    if (blob[0] == 0) {
        if (len - 1 != size) return *why = "raw chunk blob has the wrong length", -1;
        memcpy(dst, blob + 1, (size_t)size);
        return 0;
    }
    if (blob[0] != 4) return *why = "unknown chunk codec byte", -1;
    if (len < 7) return *why = "byte-grouped chunk: blob too short", -1;
    Py_ssize_t k = blob[1], head = blob[2];
    uint32_t nesc;
    memcpy(&nesc, blob + 3, 4); /* little-endian, as every platform we build on */
    if ((k != 2 && k != 4) || head >= k || head > size)
        return *why = "byte-grouped chunk: bad element width or head", -1;
    Py_ssize_t n = (size - head) / k;
    Py_ssize_t codes = 7 + TABLE, esc = codes + (n + 1) / 2, rest = esc + (Py_ssize_t)nesc;
    Py_ssize_t raw = rest + (k - 1) * n;
    if (raw + (size - k * n) != len) return *why = "byte-grouped chunk: payload has the wrong length", -1;
    if (unpack(top, n, blob + 7, blob + codes, blob + esc, (Py_ssize_t)nesc) < 0)
        return *why = "packed top bytes: codes and escapes disagree", -1;
    if (k == 4) merge4(dst + head, n, top, blob + rest, blob + rest + 2 * n);
    else merge2(dst + head, n, top, blob + rest);
    memcpy(dst, blob + raw, (size_t)head);
    memcpy(dst + head + k * n, blob + raw + head, (size_t)(size - head - k * n));
    return 0;
}

/* decode_run(data, layout, out) -> list of blob numbers left for the caller.
 * layout holds three int64 per blob: its offset in data, its length and its
 * decoded size; the decoded chunks follow each other in out. Blobs of codecs
 * 0 and 4 are decoded without the GIL; the numbers of the zstd ones (codecs 1
 * and 3) are returned. ValueError names the first malformed blob. */
static PyObject *decode_run(PyObject *self, PyObject *args) {
    Py_buffer data, layout, out;
    if (!PyArg_ParseTuple(args, "y*y*w*", &data, &layout, &out)) return NULL;
    PyObject *result = NULL;
    Py_ssize_t count = layout.len / (Py_ssize_t)(3 * sizeof(int64_t));
    int64_t *spans = NULL;
    uint8_t *skipped = NULL, *top = NULL;
    Py_ssize_t total = 0, largest = 1, bad = -1;
    const char *why = NULL;
    if (layout.len % (Py_ssize_t)(3 * sizeof(int64_t))) {
        PyErr_SetString(PyExc_ValueError, "run layout is not whole (offset, length, size) triples");
        goto done;
    }
    spans = PyMem_Malloc(layout.len ? (size_t)layout.len : 1);
    skipped = PyMem_Calloc(count ? (size_t)count : 1, 1);
    if (spans == NULL || skipped == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    memcpy(spans, layout.buf, (size_t)layout.len);
    for (Py_ssize_t i = 0; i < count; i++) {
        int64_t off = spans[3 * i], len = spans[3 * i + 1], size = spans[3 * i + 2];
        if (off < 0 || len < 0 || size < 0 || off > data.len || len > data.len - off) {
            PyErr_Format(PyExc_ValueError, "chunk blob %zd lies outside its pack's run", i);
            goto done;
        }
        if (size > largest) largest = (Py_ssize_t)size;
        total += (Py_ssize_t)size;
    }
    if (total != out.len) {
        PyErr_SetString(PyExc_ValueError, "chunk sizes do not add up to the output");
        goto done;
    }
    top = PyMem_RawMalloc((size_t)largest);
    if (top == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    uint8_t *dst = out.buf;
    for (Py_ssize_t i = 0; i < count; i++) {
        Py_ssize_t size = (Py_ssize_t)spans[3 * i + 2];
        int status = decode_blob((const uint8_t *)data.buf + spans[3 * i], (Py_ssize_t)spans[3 * i + 1],
                                 dst, size, top, &why);
        if (status < 0) {
            bad = i;
            break;
        }
        skipped[i] = (uint8_t)status;
        dst += size;
    }
    Py_END_ALLOW_THREADS
    if (bad >= 0) {
        PyErr_Format(PyExc_ValueError, "chunk blob %zd: %s", bad, why);
        goto done;
    }
    result = PyList_New(0);
    for (Py_ssize_t i = 0; result != NULL && i < count; i++) {
        if (!skipped[i]) continue;
        PyObject *number = PyLong_FromSsize_t(i);
        if (number == NULL || PyList_Append(result, number) < 0) Py_CLEAR(result);
        Py_XDECREF(number);
    }
done:
    PyMem_RawFree(top);
    PyMem_Free(spans);
    PyMem_Free(skipped);
    PyBuffer_Release(&data);
    PyBuffer_Release(&layout);
    PyBuffer_Release(&out);
    return result;
}

/* copy(dst, src): memcpy without the GIL (a reader copies decoded runs into
 * its caller's buffer while other threads decode). */
static PyObject *copy(PyObject *self, PyObject *args) {
    Py_buffer dst, src;
    if (!PyArg_ParseTuple(args, "w*y*", &dst, &src)) return NULL;
    PyObject *result = NULL;
    if (dst.len != src.len) {
        PyErr_SetString(PyExc_ValueError, "copy: buffers differ in length");
    } else {
        Py_BEGIN_ALLOW_THREADS
        memcpy(dst.buf, src.buf, (size_t)src.len);
        Py_END_ALLOW_THREADS
        result = Py_None, Py_INCREF(result);
    }
    PyBuffer_Release(&dst);
    PyBuffer_Release(&src);
    return result;
}

static PyMethodDef methods[] = {
    {"split", split, METH_VARARGS,
     "split(src, k, top, rest): write the byte planes of src's k-byte elements."},
    {"merge", merge, METH_VARARGS,
     "merge(dst, k, top, rest): write the k-byte elements whose planes are top and rest."},
    {"pack_top", pack_top, METH_VARARGS,
     "pack_top(top, table, codes, esc) -> escapes: pack a top plane into 4-bit codes."},
    {"unpack_top", unpack_top, METH_VARARGS,
     "unpack_top(top, table, codes, esc): restore a top plane from its 4-bit codes."},
    {"merge_packed", merge_packed, METH_VARARGS,
     "merge_packed(dst, k, table, codes, esc, rest): unpack a top plane and merge it."},
    {"decode_run", decode_run, METH_VARARGS,
     "decode_run(data, layout, out) -> [blob numbers]: decode a run's raw and packed blobs."},
    {"encode_packed", encode_packed, METH_VARARGS,
     "encode_packed(span, k, offset, layout, dst, lengths) -> chunks: packed blobs into dst."},
    {"copy", copy, METH_VARARGS, "copy(dst, src): memcpy without the GIL."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "scribestore.store._planes",
    "Byte-plane split and merge without the GIL (see scribestore.store.planes).", -1, methods,
};

PyMODINIT_FUNC PyInit__planes(void) { return PyModule_Create(&module); }
