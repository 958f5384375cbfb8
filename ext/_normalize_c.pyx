# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, infer_types=True
"""Per-listen normalization and the lookup key: the compiled implementation.

The twin of ``koito_import/_normalize_py.py``: same public names, same results, same
exceptions (a hypothesis test compares the two on arbitrary input). Read the Python
module for *what* is done and why; this file is only about doing it fast:

- strings are inspected in their own storage (``PyUnicode_KIND``/``DATA``); an ASCII or
  Latin-1 string that needs no change is returned as is, without a copy;
- ``Listen``, ``EntityRecord`` and ``KoitoEntities`` are slotted dataclasses: their
  fields are read and written through the slot offsets (what the dataclass ``__init__``
  does through ``object.__setattr__``, minus the interpreter); if a future change to
  those classes makes that unsafe, the module falls back to calling the class;
- a listen (or Koito entity) that needs no change is returned itself: the dataclasses
  are immutable, so the result is equal to the twin's new copy without allocating one;
- the lookup key's length-prefixed layout is encoded straight into a C buffer (on the
  caller's stack, one per call) and hashed with a built-in BLAKE2b (RFC 7693, unkeyed,
  16-byte digest): the same digest ``hashlib.blake2b(data, digest_size=16)`` gives,
  without creating a bytes, a hash object and a digest object per listen;
- ``normalize_batch`` runs all of that for a whole batch in one call, and reports a
  rejected listen without raising an exception for it;
- ``parse_artists`` matches Koito's "feat." patterns and the default separator by hand
  (their regexes are simple enough to be exact); custom separators go through ``re``.

Anything that is not an exact ``str`` where a string is expected takes the same
generic code as the Python twin, so even errors agree.
"""

cimport cython
from cpython.exc cimport PyErr_NoMemory
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.tuple cimport PyTuple_GET_ITEM, PyTuple_GET_SIZE
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libc.string cimport memchr, memcpy, memset

import re

from koito_import.errors import InvalidListen
from koito_import.listen import EntityRecord, KoitoEntities, Listen

cdef extern from "Python.h":
    ctypedef struct PyObject
    int PyUnicode_KIND(object o)
    void* PyUnicode_DATA(object o)
    Py_ssize_t PyUnicode_GET_LENGTH(object o)
    bint PyUnicode_IS_ASCII(object o)
    uint32_t PyUnicode_READ(int kind, void* data, Py_ssize_t index) noexcept nogil
    object PyUnicode_New(Py_ssize_t size, uint32_t maxchar)
    object PyUnicode_Substring(object s, Py_ssize_t start, Py_ssize_t end)
    object PyUnicode_Replace(object s, object substr, object replstr, Py_ssize_t maxcount)
    unsigned char* PyUnicode_1BYTE_DATA(object o)
    int PyUnicode_1BYTE_KIND
    long long PyLong_AsLongLongAndOverflow(object o, int* overflow) except? -1

cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    #include "structmember.h"

    #ifdef Py_T_OBJECT_EX
    #define KOITO_T_OBJECT_EX Py_T_OBJECT_EX
    #else
    #define KOITO_T_OBJECT_EX T_OBJECT_EX
    #endif
    #ifdef Py_READONLY
    #define KOITO_READONLY Py_READONLY
    #else
    #define KOITO_READONLY READONLY
    #endif

    /* The offset of a writable object slot, or -1 when descr is no such slot. */
    static Py_ssize_t koito_slot_offset(PyObject *descr) {
        PyMemberDef *m;
        if (Py_TYPE(descr) != &PyMemberDescr_Type) return -1;
        m = ((PyMemberDescrObject *)descr)->d_member;
        if (m->type != KOITO_T_OBJECT_EX || (m->flags & KOITO_READONLY)) return -1;
        return m->offset;
    }

    /* A new, empty instance (all slots NULL), as object.__new__(type) makes it. */
    static PyObject *koito_alloc(PyObject *type) {
        PyTypeObject *t = (PyTypeObject *)type;
        return t->tp_alloc(t, 0);
    }

    static CYTHON_INLINE void koito_set_slot(PyObject *o, Py_ssize_t off, PyObject *v) {
        PyObject **p = (PyObject **)((char *)o + off);
        PyObject *old = *p;
        Py_INCREF(v);
        *p = v;
        Py_XDECREF(old);
    }

    /* The slot's value (borrowed), NULL when unset. */
    static CYTHON_INLINE PyObject *koito_slot(PyObject *o, Py_ssize_t off) {
        return *(PyObject **)((char *)o + off);
    }

    /* ---- BLAKE2b (RFC 7693), one-shot, unkeyed ---------------------------------- */

    static const uint64_t koito_b2b_iv[8] = {
        0x6a09e667f3bcc908ULL, 0xbb67ae8584caa73bULL, 0x3c6ef372fe94f82bULL,
        0xa54ff53a5f1d36f1ULL, 0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL,
        0x1f83d9abfb41bd6bULL, 0x5be0cd19137e2179ULL};

    static const uint8_t koito_b2b_sigma[12][16] = {
        {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
        {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
        {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4},
        {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
        {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13},
        {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
        {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11},
        {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
        {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5},
        {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
        {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
        {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3}};

    static CYTHON_INLINE uint64_t koito_rotr64(uint64_t x, unsigned n) {
        return (x >> n) | (x << (64 - n));
    }

    static CYTHON_INLINE uint64_t koito_load64(const uint8_t *p) {
        return ((uint64_t)p[0]) | ((uint64_t)p[1] << 8) | ((uint64_t)p[2] << 16) |
               ((uint64_t)p[3] << 24) | ((uint64_t)p[4] << 32) | ((uint64_t)p[5] << 40) |
               ((uint64_t)p[6] << 48) | ((uint64_t)p[7] << 56);
    }

    #define KOITO_B2B_G(a, b, c, d, x, y)           \\
        do {                                        \\
            a = a + b + (x);                        \\
            d = koito_rotr64(d ^ a, 32);            \\
            c = c + d;                              \\
            b = koito_rotr64(b ^ c, 24);            \\
            a = a + b + (y);                        \\
            d = koito_rotr64(d ^ a, 16);            \\
            c = c + d;                              \\
            b = koito_rotr64(b ^ c, 63);            \\
        } while (0)

    #define KOITO_B2B_ROUND(r)                                                       \\
        do {                                                                         \\
            KOITO_B2B_G(v0, v4, v8, v12, m[koito_b2b_sigma[r][0]], m[koito_b2b_sigma[r][1]]);    \\
            KOITO_B2B_G(v1, v5, v9, v13, m[koito_b2b_sigma[r][2]], m[koito_b2b_sigma[r][3]]);    \\
            KOITO_B2B_G(v2, v6, v10, v14, m[koito_b2b_sigma[r][4]], m[koito_b2b_sigma[r][5]]);   \\
            KOITO_B2B_G(v3, v7, v11, v15, m[koito_b2b_sigma[r][6]], m[koito_b2b_sigma[r][7]]);   \\
            KOITO_B2B_G(v0, v5, v10, v15, m[koito_b2b_sigma[r][8]], m[koito_b2b_sigma[r][9]]);   \\
            KOITO_B2B_G(v1, v6, v11, v12, m[koito_b2b_sigma[r][10]], m[koito_b2b_sigma[r][11]]); \\
            KOITO_B2B_G(v2, v7, v8, v13, m[koito_b2b_sigma[r][12]], m[koito_b2b_sigma[r][13]]);  \\
            KOITO_B2B_G(v3, v4, v9, v14, m[koito_b2b_sigma[r][14]], m[koito_b2b_sigma[r][15]]);  \\
        } while (0)

    /* One compression; the rounds are unrolled so that the message schedule is constant. */
    static void koito_b2b_compress(uint64_t h[8], const uint8_t *block, uint64_t t, int last) {
        uint64_t m[16];
        uint64_t v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12, v13, v14, v15;
        int i;
        for (i = 0; i < 16; i++) m[i] = koito_load64(block + 8 * i);
        v0 = h[0]; v1 = h[1]; v2 = h[2]; v3 = h[3];
        v4 = h[4]; v5 = h[5]; v6 = h[6]; v7 = h[7];
        v8 = koito_b2b_iv[0]; v9 = koito_b2b_iv[1]; v10 = koito_b2b_iv[2]; v11 = koito_b2b_iv[3];
        /* the counter's high word stays 0: a key is far below 2**64 bytes */
        v12 = koito_b2b_iv[4] ^ t; v13 = koito_b2b_iv[5];
        v14 = last ? ~koito_b2b_iv[6] : koito_b2b_iv[6]; v15 = koito_b2b_iv[7];
        KOITO_B2B_ROUND(0); KOITO_B2B_ROUND(1); KOITO_B2B_ROUND(2); KOITO_B2B_ROUND(3);
        KOITO_B2B_ROUND(4); KOITO_B2B_ROUND(5); KOITO_B2B_ROUND(6); KOITO_B2B_ROUND(7);
        KOITO_B2B_ROUND(8); KOITO_B2B_ROUND(9); KOITO_B2B_ROUND(10); KOITO_B2B_ROUND(11);
        h[0] ^= v0 ^ v8; h[1] ^= v1 ^ v9; h[2] ^= v2 ^ v10; h[3] ^= v3 ^ v11;
        h[4] ^= v4 ^ v12; h[5] ^= v5 ^ v13; h[6] ^= v6 ^ v14; h[7] ^= v7 ^ v15;
    }

    /* hashlib.blake2b(data, digest_size=16).hexdigest() into out[32] (lower-case hex). */
    static void koito_blake2b16_hex(const uint8_t *data, size_t len, uint8_t *out) {
        static const char hexdigits[] = "0123456789abcdef";
        uint64_t h[8];
        uint8_t block[128];
        size_t done = 0;
        int i;
        for (i = 0; i < 8; i++) h[i] = koito_b2b_iv[i];
        h[0] ^= 0x01010000ULL ^ 16ULL;  /* depth 1, fanout 1, no key, 16-byte digest */
        while (len - done > 128) {
            koito_b2b_compress(h, data + done, (uint64_t)(done + 128), 0);
            done += 128;
        }
        memset(block, 0, sizeof block);
        if (len - done) memcpy(block, data + done, len - done);
        koito_b2b_compress(h, block, (uint64_t)len, 1);
        for (i = 0; i < 16; i++) {
            uint8_t byte = (uint8_t)(h[i >> 3] >> (8 * (i & 7)));
            out[2 * i] = hexdigits[byte >> 4];
            out[2 * i + 1] = hexdigits[byte & 15];
        }
    }
    """
    Py_ssize_t koito_slot_offset(object descr)
    object koito_alloc(object cls)
    void koito_set_slot(object o, Py_ssize_t off, object v)
    PyObject* koito_slot(object o, Py_ssize_t off)
    void koito_blake2b16_hex(const uint8_t* data, size_t length, uint8_t* out)


cdef enum:
    _MAX_FIELD_CHARS = 600
    _FOLD_PAGES = 0x1100  # pages of 256 code points up to U+10FFFF

#: Longest name or title accepted; 4 bytes a character still fits PostgreSQL's index rows.
MAX_FIELD_CHARS = _MAX_FIELD_CHARS

# The listen times both databases hold alike (see the twin).
cdef long long _MIN_TIME = -62135596800
cdef long long _MAX_TIME = 253402300799
MIN_TIME = _MIN_TIME
MAX_TIME = _MAX_TIME

#: Go's regexp ``\s`` is ASCII-only; Python's is Unicode. Spell it out.
_GO_SPACE = r"[\t\n\f\r ]"

#: Koito's default artist separator (``KOITO_ARTIST_SEPARATORS_REGEX`` replaces it).
DEFAULT_SEPARATORS = (_GO_SPACE + r"+·" + _GO_SPACE + r"+",)

# The same regexes as the Python twin; used only by the generic (non-str) paths.
_BRACKET_FEAT = (
    re.compile(r"(?i)\([fF]eat\. ([^)]*)\)"),
    re.compile(r"(?i)\[[fF]eat\. ([^\]]*)\]"),
)
_INLINE_FEAT = re.compile(r"(?i)[fF]eat\. ([^()\[\]]+)\Z")
_FEAT_SPLIT = re.compile(r"(?i)" + _GO_SPACE + r"*(?:,|&|and|·)" + _GO_SPACE + r"*")

#: Characters Go's unicode.IsSpace accepts; str.strip() also strips \x1c-\x1f, Go does not.
_GO_TRIM = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"

cdef str _DEFAULT_SEPARATOR = DEFAULT_SEPARATORS[0]
cdef object _PatternType = re.Pattern
cdef int _DEFAULT_FLAGS = re.compile("").flags
cdef str _EMPTY = ""
cdef str _NUL = "\x00"
cdef object _ZERO = 0


# --- characters ------------------------------------------------------------------------


cdef inline bint _go_space(uint32_t c) noexcept nogil:
    """Go's unicode.IsSpace."""
    if c < 0x80:
        return c == 32 or (9 <= c <= 13)
    if c < 0x1680:
        return c == 0x85 or c == 0xA0
    return (
        c == 0x1680
        or (0x2000 <= c <= 0x200A)
        or c == 0x2028
        or c == 0x2029
        or c == 0x202F
        or c == 0x205F
        or c == 0x3000
    )


cdef inline bint _re_space(uint32_t c) noexcept nogil:
    """Go's regexp ``\\s``: ``[\\t\\n\\f\\r ]``."""
    return c == 32 or c == 9 or c == 10 or c == 12 or c == 13


cdef inline uint32_t _ascii_lower(uint32_t c) noexcept nogil:
    if 65 <= c <= 90:
        return c + 32
    return c


# --- clean -----------------------------------------------------------------------------


def _storable_generic(value):
    # The Python twin's code, for anything that is not an exact str (errors included).
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            value = value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if "\x00" in value:
        value = value.replace("\x00", "")
    return value


def _clean_generic(value):
    return _storable_generic(value).strip(_GO_TRIM)


cdef str _go_strip(str value):
    """``value.strip(_GO_TRIM)`` for an exact str (the same object when nothing to strip)."""
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(value)
    cdef Py_ssize_t start = 0, end = n
    cdef int kind
    cdef void* data
    if n == 0:
        return value
    kind = PyUnicode_KIND(value)
    data = PyUnicode_DATA(value)
    while start < end and _go_space(PyUnicode_READ(kind, data, start)):
        start += 1
    while end > start and _go_space(PyUnicode_READ(kind, data, end - 1)):
        end -= 1
    if start == 0 and end == n:
        return value
    return PyUnicode_Substring(value, start, end)


cdef str _storable_str(str value):
    """storable() for an exact str (the same object when nothing changes)."""
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(value)
    cdef Py_ssize_t i
    cdef int kind
    cdef void* data
    cdef uint32_t c
    cdef bint has_nul = False, has_surrogate = False
    if n == 0:
        return value
    kind = PyUnicode_KIND(value)
    data = PyUnicode_DATA(value)
    if kind == PyUnicode_1BYTE_KIND:
        # ASCII or Latin-1: always encodable.
        has_nul = memchr(data, 0, <size_t>n) != NULL
    else:
        for i in range(n):
            c = PyUnicode_READ(kind, data, i)
            if c == 0:
                has_nul = True
            elif 0xD800 <= c <= 0xDFFF:
                has_surrogate = True
                break
        if has_surrogate:
            # Rare: let the codecs pair or replace the surrogates exactly as the twin does.
            value = value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
            has_nul = _NUL in value
    if has_nul:
        value = PyUnicode_Replace(value, _NUL, _EMPTY, -1)
    return value


cdef inline str _clean_str(str value):
    """clean() for an exact str."""
    return _go_strip(_storable_str(value))


cdef inline object _clean(object value):
    if type(value) is str:
        return _clean_str(<str>value)
    return _clean_generic(value)


def clean(value):
    """Trim like Go's TrimSpace and make the text storable in both databases."""
    return _clean(value)


def storable(value):
    """The text as both databases can store it: lone surrogates replaced, NULs removed."""
    if type(value) is str:
        return _storable_str(<str>value)
    return _storable_generic(value)


def compile_separators(patterns):
    """Compile artist-separator regexes (Koito's ``;;``-separated list, already split)."""
    return tuple([re.compile(p) for p in patterns])


# --- equal_fold ------------------------------------------------------------------------


def _fold(ch):
    """Simple case folding of one character (what Go's EqualFold compares)."""
    folded = ch.casefold()
    if len(folded) == 1:
        return folded
    lowered = ch.lower()
    return lowered if len(lowered) == 1 else ch


# Fold tables, one page of 256 code points each, filled from _fold on first use.
cdef uint32_t* _fold_page[_FOLD_PAGES]


cdef uint32_t _fold_cp(uint32_t c) except 0xFFFFFFFF:
    cdef uint32_t* page
    cdef uint32_t base, k
    if c < 0x80:
        return _ascii_lower(c)
    page = _fold_page[c >> 8]
    if page == NULL:
        page = <uint32_t*>PyMem_Malloc(256 * sizeof(uint32_t))
        if page == NULL:
            PyErr_NoMemory()
            return 0xFFFFFFFF
        base = c & ~(<uint32_t>0xFF)
        try:
            for k in range(256):
                page[k] = ord(_fold(chr(base + k)))
        except BaseException:
            PyMem_Free(page)
            raise
        if _fold_page[c >> 8] == NULL:  # another thread may have filled it meanwhile
            _fold_page[c >> 8] = page
        else:
            PyMem_Free(page)
            page = _fold_page[c >> 8]
    return page[c & 0xFF]


def _equal_fold_generic(a, b):
    if a == b:
        return True
    if len(a) != len(b):
        return False
    if a.isascii() and b.isascii():
        return a.lower() == b.lower()
    return all([x == y or _fold(x) == _fold(y) for x, y in zip(a, b)])


def equal_fold(a, b):
    """Go's ``strings.EqualFold``: equal under simple Unicode case folding."""
    cdef Py_ssize_t n, i
    cdef int ka, kb
    cdef void* da
    cdef void* db
    cdef uint32_t x, y
    if type(a) is not str or type(b) is not str:
        return _equal_fold_generic(a, b)
    if a is b:
        return True
    n = PyUnicode_GET_LENGTH(a)
    if n != PyUnicode_GET_LENGTH(b):
        return False
    ka = PyUnicode_KIND(a)
    kb = PyUnicode_KIND(b)
    da = PyUnicode_DATA(a)
    db = PyUnicode_DATA(b)
    for i in range(n):
        x = PyUnicode_READ(ka, da, i)
        y = PyUnicode_READ(kb, db, i)
        if x == y:
            continue
        if x < 0x80 and y < 0x80:
            if _ascii_lower(x) != _ascii_lower(y):
                return False
        elif _fold_cp(x) != _fold_cp(y):
            return False
    return True


# --- parse_artists ---------------------------------------------------------------------


def _split_go(pattern, text):
    """``regexp.Split(text, -1)`` with Go's semantics (the twin's code, for custom regexes)."""
    if not text:
        return [""]
    out = []
    beg = end = 0
    prev_end = -1
    for m in pattern.finditer(text):
        start, stop = m.span()
        if start == stop and start == prev_end:
            continue  # Go ignores an empty match right after the previous match
        prev_end = stop
        end = start
        if stop != 0:
            out.append(text[beg:end])
        beg = stop
    if end != len(text):
        out.append(text[beg:])
    return out


cdef inline bint _ci(uint32_t c, uint32_t lower) noexcept nogil:
    """c equals the ASCII letter ``lower`` ignoring case."""
    return c == lower or c == lower - 32


cdef inline bint _feat_at(int kind, void* data, Py_ssize_t n, Py_ssize_t p) noexcept nogil:
    """``(?i)[fF]eat\\. `` matches at p."""
    return (
        p + 6 <= n
        and _ci(PyUnicode_READ(kind, data, p), 102)  # f
        and _ci(PyUnicode_READ(kind, data, p + 1), 101)  # e
        and _ci(PyUnicode_READ(kind, data, p + 2), 97)  # a
        and _ci(PyUnicode_READ(kind, data, p + 3), 116)  # t
        and PyUnicode_READ(kind, data, p + 4) == 46  # .
        and PyUnicode_READ(kind, data, p + 5) == 32
    )


cdef bint _bracket_feat(str text, uint32_t opening, uint32_t closing, Py_ssize_t* span) noexcept:
    """Leftmost ``(?i)\\(feat\\. ([^)]*)\\)`` (or the [] variant); span = m0, m1, g0, g1."""
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(text)
    cdef int kind = PyUnicode_KIND(text)
    cdef void* data = PyUnicode_DATA(text)
    cdef Py_ssize_t p, q
    for p in range(n - 7):
        if PyUnicode_READ(kind, data, p) == opening and _feat_at(kind, data, n, p + 1):
            q = p + 7
            while q < n and PyUnicode_READ(kind, data, q) != closing:
                q += 1
            if q == n:
                return False  # no closing bracket after p, so none after a later p either
            span[0] = p
            span[1] = q + 1
            span[2] = p + 7
            span[3] = q
            return True
    return False


cdef bint _inline_feat(str text, Py_ssize_t* span) noexcept:
    """Leftmost ``(?i)[fF]eat\\. ([^()\\[\\]]+)\\Z``; span = m0, m1, g0, g1."""
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(text)
    cdef int kind = PyUnicode_KIND(text)
    cdef void* data = PyUnicode_DATA(text)
    cdef Py_ssize_t p, last = -1
    cdef uint32_t c
    # The group runs to the end without brackets: the match starts after the last bracket.
    for p in range(n - 1, -1, -1):
        c = PyUnicode_READ(kind, data, p)
        if c == 40 or c == 41 or c == 91 or c == 93:
            last = p
            break
    for p in range(last + 1, n - 6):
        if _feat_at(kind, data, n, p):
            span[0] = p
            span[1] = n
            span[2] = p + 6
            span[3] = n
            return True
    return False


cdef int _add(list out, object name) except -1:
    name = _go_strip(<str>name) if type(name) is str else name.strip(_GO_TRIM)
    if name and name not in out:
        out.append(name)
    return 0


cdef int _add_feat(list out, str text) except -1:
    """Split on Koito's feat. delimiters ``\\s*(?:,|&|and|·)\\s*`` and add every piece."""
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(text)
    cdef int kind = PyUnicode_KIND(text)
    cdef void* data = PyUnicode_DATA(text)
    cdef Py_ssize_t beg = 0, p = 0, q, r
    cdef uint32_t c
    if n == 0:
        return 0  # [""]: a blank name, dropped
    while p < n:
        q = p
        while q < n and _re_space(PyUnicode_READ(kind, data, q)):
            q += 1
        r = -1
        if q < n:
            c = PyUnicode_READ(kind, data, q)
            if c == 44 or c == 38 or c == 0xB7:  # , & ·
                r = q + 1
            elif (
                q + 3 <= n
                and _ci(c, 97)
                and _ci(PyUnicode_READ(kind, data, q + 1), 110)
                and _ci(PyUnicode_READ(kind, data, q + 2), 100)
            ):
                r = q + 3
        if r < 0:
            p += 1
            continue
        while r < n and _re_space(PyUnicode_READ(kind, data, r)):
            r += 1
        _add(out, PyUnicode_Substring(text, beg, p))
        beg = p = r
    _add(out, PyUnicode_Substring(text, beg, n))
    return 0


cdef list _split_default(str text):
    """``_split_go`` for Koito's default separator ``[\\t\\n\\f\\r ]+·[\\t\\n\\f\\r ]+``."""
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(text)
    cdef int kind = PyUnicode_KIND(text)
    cdef void* data = PyUnicode_DATA(text)
    cdef Py_ssize_t beg = 0, p = 0, q, r
    cdef list out
    if n == 0:
        return [_EMPTY]
    out = []
    while p < n:
        if not _re_space(PyUnicode_READ(kind, data, p)):
            p += 1
            continue
        q = p + 1
        while q < n and _re_space(PyUnicode_READ(kind, data, q)):
            q += 1
        if q + 1 < n and PyUnicode_READ(kind, data, q) == 0xB7 and _re_space(
            PyUnicode_READ(kind, data, q + 1)
        ):
            r = q + 2
            while r < n and _re_space(PyUnicode_READ(kind, data, r)):
                r += 1
            out.append(PyUnicode_Substring(text, beg, p))
            beg = p = r
        else:
            p = q
    out.append(PyUnicode_Substring(text, beg, n))
    return out


cdef inline bint _is_default_separator(object sep):
    return (
        type(sep) is _PatternType
        and sep.flags == _DEFAULT_FLAGS
        and sep.pattern == _DEFAULT_SEPARATOR
    )


def _parse_artists_generic(artist, title, separators):
    # The twin's code, for arguments that are not exact str.
    seen = set()
    out = []

    def add(name):
        name = name.strip(_GO_TRIM)
        if name and name not in seen:
            seen.add(name)
            out.append(name)

    def add_feat(text):
        for name in _split_go(_FEAT_SPLIT, text):
            add(name)

    for pattern in _BRACKET_FEAT:
        m = pattern.search(artist)
        if m:
            artist = artist.replace(m.group(0), "", 1)
            add_feat(m.group(1))
    m = _INLINE_FEAT.search(artist)
    if m:
        artist = artist.replace(m.group(0), "", 1)
        add_feat(m.group(1))

    before = len(out)
    for sep in separators:
        for name in _split_go(sep, artist):
            if name != artist:
                add(name)
    if len(out) == before:
        add(artist)

    for pattern in _BRACKET_FEAT:
        m = pattern.search(title)
        if m:
            add_feat(m.group(1))
    m = _INLINE_FEAT.search(title)
    if m:
        add_feat(m.group(1))
    return out


cdef str _take_feat(list out, str text, Py_ssize_t* span, bint remove):
    """Add the featured names of the match; return text with the match's text removed."""
    _add_feat(out, PyUnicode_Substring(text, span[2], span[3]))
    if not remove:
        return text
    return PyUnicode_Replace(text, PyUnicode_Substring(text, span[0], span[1]), _EMPTY, 1)


def parse_artists(artist, title, separators):
    """Koito's ParseArtists: featured artists from the artist string and the title.

    Featured names come first, then the artist string split by the separators (or whole
    when no separator matched), then names featured in the title; exact duplicates and
    blank names are dropped.
    """
    cdef Py_ssize_t span[4]
    cdef Py_ssize_t before
    cdef list out, pieces
    cdef str a, t
    if type(artist) is not str or type(title) is not str:
        return _parse_artists_generic(artist, title, separators)
    a = <str>artist
    t = <str>title
    out = []
    if _bracket_feat(a, 40, 41, span):
        a = _take_feat(out, a, span, True)
    if _bracket_feat(a, 91, 93, span):
        a = _take_feat(out, a, span, True)
    if _inline_feat(a, span):
        a = _take_feat(out, a, span, True)

    before = len(out)
    for sep in separators:
        if _is_default_separator(sep):
            pieces = _split_default(a)
        else:
            pieces = _split_go(sep, a)
        for name in pieces:
            if name != a:
                _add(out, name)
    if len(out) == before:
        _add(out, a)

    if _bracket_feat(t, 40, 41, span):
        _take_feat(out, t, span, False)
    if _bracket_feat(t, 91, 93, span):
        _take_feat(out, t, span, False)
    if _inline_feat(t, span):
        _take_feat(out, t, span, False)
    return out


# --- the dataclasses, field by field ---------------------------------------------------

cdef enum:
    _L_ARTIST, _L_TITLE, _L_TIME, _L_ARTIST_NAMES, _L_ALBUM, _L_ARTIST_MBIDS
    _L_MBID_MAPPINGS, _L_RELEASE_MBID, _L_RECORDING_MBID, _L_DURATION, _L_CLIENT
    _L_ENTITIES

cdef enum:
    _E_NAME, _E_ALIASES, _E_MBID, _E_IMAGE_URL

cdef enum:
    _K_ARTISTS, _K_ALBUM, _K_TRACK, _K_VARIOUS

_LISTEN_FIELDS = (
    "artist", "title", "time", "artist_names", "album", "artist_mbids", "mbid_mappings",
    "release_mbid", "recording_mbid", "duration", "client", "entities",
)
_ENTITY_FIELDS = ("name", "aliases", "mbid", "image_url")
_ENTITIES_FIELDS = ("artists", "album", "track", "various_artists")


cdef class _Layout:
    """How to read and build one slotted dataclass without its ``__init__``."""

    cdef readonly object cls
    cdef readonly tuple names
    cdef readonly bint fast
    cdef Py_ssize_t offsets[16]

    def __init__(self, cls, tuple names):
        import dataclasses

        self.cls = cls
        self.names = names
        self.fast = False
        if len(names) > 16:
            return
        try:
            fields = tuple(f.name for f in dataclasses.fields(cls))
        except TypeError:
            return
        if (
            set(fields) != set(names)
            or type(cls) is not type
            or cls.__new__ is not object.__new__
            or hasattr(cls, "__post_init__")
            or cls.__dictoffset__ != 0
        ):
            return
        for i, name in enumerate(names):
            descr = None
            for klass in cls.__mro__:
                if name in klass.__dict__:
                    descr = klass.__dict__[name]
                    break
            if descr is None:
                return
            off = koito_slot_offset(descr)
            if off < 0:
                return
            self.offsets[i] = off
        self.fast = True

    cdef inline object get(self, object obj, int i):
        cdef PyObject* value
        if self.fast and type(obj) is self.cls:
            value = koito_slot(obj, self.offsets[i])
            if value != NULL:
                return <object>value
        return getattr(obj, self.names[i])  # also raises the AttributeError of an unset slot


cdef _Layout _LISTEN = _Layout(Listen, _LISTEN_FIELDS)
cdef _Layout _ENTITY = _Layout(EntityRecord, _ENTITY_FIELDS)
cdef _Layout _ENTITIES = _Layout(KoitoEntities, _ENTITIES_FIELDS)
cdef object _ListenT = Listen
cdef object _EntityRecordT = EntityRecord
cdef object _KoitoEntitiesT = KoitoEntities


cdef object _new_listen(
    artist, title, time, artist_names, album, artist_mbids, mbid_mappings,
    release_mbid, recording_mbid, duration, client, entities,
):
    cdef _Layout lay = _LISTEN
    cdef object o
    if not lay.fast:
        return _ListenT(
            artist=artist, title=title, time=time, artist_names=artist_names, album=album,
            artist_mbids=artist_mbids, mbid_mappings=mbid_mappings,
            release_mbid=release_mbid, recording_mbid=recording_mbid, duration=duration,
            client=client, entities=entities,
        )
    o = koito_alloc(_ListenT)
    koito_set_slot(o, lay.offsets[_L_ARTIST], artist)
    koito_set_slot(o, lay.offsets[_L_TITLE], title)
    koito_set_slot(o, lay.offsets[_L_TIME], time)
    koito_set_slot(o, lay.offsets[_L_ARTIST_NAMES], artist_names)
    koito_set_slot(o, lay.offsets[_L_ALBUM], album)
    koito_set_slot(o, lay.offsets[_L_ARTIST_MBIDS], artist_mbids)
    koito_set_slot(o, lay.offsets[_L_MBID_MAPPINGS], mbid_mappings)
    koito_set_slot(o, lay.offsets[_L_RELEASE_MBID], release_mbid)
    koito_set_slot(o, lay.offsets[_L_RECORDING_MBID], recording_mbid)
    koito_set_slot(o, lay.offsets[_L_DURATION], duration)
    koito_set_slot(o, lay.offsets[_L_CLIENT], client)
    koito_set_slot(o, lay.offsets[_L_ENTITIES], entities)
    return o


cdef object _new_entity(name, aliases, mbid, image_url):
    cdef _Layout lay = _ENTITY
    cdef object o
    if not lay.fast:
        return _EntityRecordT(name, aliases, mbid, image_url)
    o = koito_alloc(_EntityRecordT)
    koito_set_slot(o, lay.offsets[_E_NAME], name)
    koito_set_slot(o, lay.offsets[_E_ALIASES], aliases)
    koito_set_slot(o, lay.offsets[_E_MBID], mbid)
    koito_set_slot(o, lay.offsets[_E_IMAGE_URL], image_url)
    return o


cdef object _new_entities(artists, album, track, various_artists):
    cdef _Layout lay = _ENTITIES
    cdef object o
    if not lay.fast:
        return _KoitoEntitiesT(artists, album, track, various_artists)
    o = koito_alloc(_KoitoEntitiesT)
    koito_set_slot(o, lay.offsets[_K_ARTISTS], artists)
    koito_set_slot(o, lay.offsets[_K_ALBUM], album)
    koito_set_slot(o, lay.offsets[_K_TRACK], track)
    koito_set_slot(o, lay.offsets[_K_VARIOUS], various_artists)
    return o


# --- prepare ---------------------------------------------------------------------------


@cython.final
cdef class _Rejected:
    """What the cdef functions return instead of raising InvalidListen(reason)."""

    cdef readonly str reason

    def __cinit__(self, str reason):
        self.reason = reason


cdef _Rejected _FIELD_TOO_LONG = _Rejected("field_too_long")
cdef _Rejected _MISSING_ARTIST = _Rejected("missing_artist")
cdef _Rejected _MISSING_TITLE = _Rejected("missing_title")
cdef _Rejected _MISSING_PRIMARY_ALIAS = _Rejected("missing_primary_alias")
cdef _Rejected _BAD_TIMESTAMP = _Rejected("bad_timestamp")


cdef inline bint _rejected(object value) noexcept:
    return type(value) is _Rejected


cdef inline object _limited(object value, bint trim):
    """Storable, trimmed when ``trim``, length-checked: the twin's _checked / _verbatim."""
    if type(value) is str:
        value = _clean_str(<str>value) if trim else _storable_str(<str>value)
        if PyUnicode_GET_LENGTH(value) > _MAX_FIELD_CHARS:
            return _FIELD_TOO_LONG
        return value
    value = _clean_generic(value) if trim else _storable_generic(value)
    if len(value) > _MAX_FIELD_CHARS:
        return _FIELD_TOO_LONG
    return value


cdef inline object _checked(object value):
    return _limited(value, True)


cdef inline object _verbatim(object value):
    """A title: storable, length-checked, never trimmed."""
    return _limited(value, False)


cdef inline bint _truthy(object value) except -1:
    if type(value) is str:
        return PyUnicode_GET_LENGTH(value) != 0
    return bool(value)


cdef object _checked_names(object raw, bint keep_blank=False):
    """``tuple(n for n in (_checked(x) for x in raw) if n)`` (every n with
    ``keep_blank``); raw itself when unchanged."""
    cdef Py_ssize_t i, n
    cdef list acc = None
    cdef object x, c
    if type(raw) is tuple:
        n = PyTuple_GET_SIZE(raw)
        for i in range(n):
            x = <object>PyTuple_GET_ITEM(raw, i)
            c = _checked(x)
            if _rejected(c):
                return c
            if acc is None:
                if c is x and (keep_blank or _truthy(c)):
                    continue
                acc = list((<tuple>raw)[:i])
            if keep_blank or _truthy(c):
                acc.append(c)
        return raw if acc is None else tuple(acc)
    acc = []
    for x in raw:
        c = _checked(x)
        if _rejected(c):
            return c
        if keep_blank or _truthy(c):
            acc.append(c)
    return tuple(acc)


cdef object _checked_mappings(object raw):
    """``tuple((name, mbid) for name, mbid in ... if name)`` with names checked."""
    cdef Py_ssize_t i, n
    cdef list acc = None
    cdef object pair, name, mbid, c
    cdef bint same
    if type(raw) is tuple:
        n = PyTuple_GET_SIZE(raw)
        for i in range(n):
            pair = <object>PyTuple_GET_ITEM(raw, i)
            name, mbid = pair
            c = _checked(name)
            if _rejected(c):
                return c
            same = c is name and type(pair) is tuple
            if acc is None:
                if same and _truthy(c):
                    continue
                acc = list((<tuple>raw)[:i])
            if _truthy(c):
                acc.append(pair if same else (c, mbid))
        return raw if acc is None else tuple(acc)
    acc = []
    for pair in raw:
        name, mbid = pair
        c = _checked(name)
        if _rejected(c):
            return c
        if _truthy(c):
            acc.append((c, mbid))
    return tuple(acc)


cdef enum:
    _ARTIST = 0
    _ALBUM = 1
    _TRACK = 2


cdef object _entity(object record, int kind):
    """The twin's _entity(); the record itself when nothing changes (it is immutable)."""
    cdef _Layout lay = _ENTITY
    cdef object raw_aliases, aliases, raw_name, name
    raw_aliases = lay.get(record, _E_ALIASES)
    aliases = _checked_names(raw_aliases, kind == _ALBUM)
    if _rejected(aliases):
        return aliases
    raw_name = lay.get(record, _E_NAME)
    name = _checked(raw_name) if kind == _ARTIST else _verbatim(raw_name)
    if _rejected(name):
        return name
    if (
        aliases is raw_aliases
        and name is raw_name
        and lay.fast  # (then the record has no field the twin's copy would not carry)
        and type(record) is _EntityRecordT
    ):
        return record
    return _new_entity(name, aliases, lay.get(record, _E_MBID), lay.get(record, _E_IMAGE_URL))


cdef object _prepare_entities(object entities):
    """The entities part of prepare(); the object itself when nothing changes."""
    cdef _Layout lay = _ENTITIES
    cdef list artists = []
    cdef object raw, x, a, raw_album, album, raw_track, track
    cdef bint same
    raw = lay.get(entities, _K_ARTISTS)
    if not raw:
        return _MISSING_ARTIST
    same = lay.fast and type(raw) is tuple and type(entities) is _KoitoEntitiesT
    for x in raw:
        a = _entity(x, _ARTIST)
        if _rejected(a):
            return a
        same = same and a is x
        artists.append(a)
    for a in artists:
        if not _truthy(_ENTITY.get(a, _E_NAME)):
            return _MISSING_PRIMARY_ALIAS
    raw_album = lay.get(entities, _K_ALBUM)
    album = _entity(raw_album, _ALBUM)
    if _rejected(album):
        return album
    raw_track = lay.get(entities, _K_TRACK)
    track = _entity(raw_track, _TRACK)
    if _rejected(track):
        return track
    if not _truthy(_ENTITY.get(album, _E_NAME)) or not _truthy(_ENTITY.get(track, _E_NAME)):
        return _MISSING_PRIMARY_ALIAS
    if same and album is raw_album and track is raw_track:
        return entities
    return _new_entities(tuple(artists), album, track, lay.get(entities, _K_VARIOUS))


cdef inline object _as_int(object value):
    if type(value) is int:
        return value
    return int(value)


cdef bint _time_ok(object value) except -1:
    """MIN_TIME <= value <= MAX_TIME (the twin's _time)."""
    cdef int overflow = 0
    cdef long long v
    if type(value) is int:
        v = PyLong_AsLongLongAndOverflow(value, &overflow)
        return overflow == 0 and _MIN_TIME <= v <= _MAX_TIME
    return bool(MIN_TIME <= value <= MAX_TIME)


cdef bint _negative(object value) except -1:
    cdef int overflow = 0
    cdef long long v
    if type(value) is int:
        v = PyLong_AsLongLongAndOverflow(value, &overflow)
        return overflow < 0 or (overflow == 0 and v < 0)
    return bool(0 > value)


cdef object _prepare(object listen):
    """prepare(), returning a _Rejected instead of raising InvalidListen.

    A listen that needs no change at all is returned itself (Listen is immutable): no
    copy, no allocation. The result is equal to the twin's in every case.
    """
    cdef _Layout lay = _LISTEN
    cdef object raw_artist, artist, raw_title, title, raw_names, names
    cdef object raw_mappings, mappings, raw_entities, entities, raw_time, time
    cdef object raw_album, album, artist_mbids, release_mbid, recording_mbid
    cdef object raw_duration, duration, raw_client, client
    raw_artist = lay.get(listen, _L_ARTIST)
    artist = _checked(raw_artist)
    if _rejected(artist):
        return artist
    raw_title = lay.get(listen, _L_TITLE)
    title = _verbatim(raw_title)
    if _rejected(title):
        return title
    if not _truthy(artist):
        return _MISSING_ARTIST
    if not _truthy(title):
        return _MISSING_TITLE
    raw_names = lay.get(listen, _L_ARTIST_NAMES)
    names = _checked_names(raw_names)
    if _rejected(names):
        return names
    raw_mappings = lay.get(listen, _L_MBID_MAPPINGS)
    mappings = _checked_mappings(raw_mappings)
    if _rejected(mappings):
        return mappings
    raw_entities = entities = lay.get(listen, _L_ENTITIES)
    if entities is not None:
        entities = _prepare_entities(entities)
        if _rejected(entities):
            return entities
    # The rest in the order the twin evaluates Listen(...)'s arguments.
    raw_time = lay.get(listen, _L_TIME)
    time = _as_int(raw_time)
    if not _time_ok(time):
        return _BAD_TIMESTAMP
    raw_album = lay.get(listen, _L_ALBUM)
    album = _verbatim(raw_album)
    if _rejected(album):
        return album
    artist_mbids = lay.get(listen, _L_ARTIST_MBIDS)
    release_mbid = lay.get(listen, _L_RELEASE_MBID)
    recording_mbid = lay.get(listen, _L_RECORDING_MBID)
    raw_duration = lay.get(listen, _L_DURATION)
    duration = _as_int(raw_duration)
    if _negative(duration):
        duration = _ZERO  # max(duration, 0)
    raw_client = lay.get(listen, _L_CLIENT)
    client = _clean(raw_client)
    if (
        artist is raw_artist
        and title is raw_title
        and names is raw_names
        and mappings is raw_mappings
        and entities is raw_entities
        and time is raw_time
        and album is raw_album
        and duration is raw_duration
        and client is raw_client
        and lay.fast
        and type(listen) is _ListenT
    ):
        return listen
    return _new_listen(
        artist, title, time, names, album, artist_mbids, mappings, release_mbid,
        recording_mbid, duration, client, entities,
    )


def prepare(listen):
    """Validate one listen, trimming its artist names; raise InvalidListen(reason) when
    it cannot be imported.

    Koito refuses a listen without artist or title; a name that is blank after trimming
    is dropped from the name lists (Koito would fail the whole import on it). Titles
    are kept as they are (only made storable).
    """
    result = _prepare(listen)
    if _rejected(result):
        raise InvalidListen((<_Rejected>result).reason)
    return result


# --- lookup_key ------------------------------------------------------------------------

# The key is encoded into a _Buf that starts in a caller's stack array and moves to the
# heap only for a very long key; each call has its own, so threads never share one.
cdef enum:
    _STACK_BUF = 1024


cdef struct _Buf:
    uint8_t* data
    Py_ssize_t size
    Py_ssize_t cap
    bint owned


cdef inline void _buf_init(_Buf* b, uint8_t* stack, Py_ssize_t cap) noexcept:
    b.data = stack
    b.size = 0
    b.cap = cap
    b.owned = False


cdef inline void _buf_free(_Buf* b) noexcept:
    if b.owned:
        PyMem_Free(b.data)
        b.owned = False


cdef int _grow(_Buf* b, Py_ssize_t extra) except -1:
    cdef Py_ssize_t cap = b.cap * 2
    cdef uint8_t* data
    while cap < b.size + extra:
        cap *= 2
    if b.owned:
        data = <uint8_t*>PyMem_Realloc(b.data, <size_t>cap)
    else:
        data = <uint8_t*>PyMem_Malloc(<size_t>cap)
        if data != NULL:
            memcpy(data, b.data, <size_t>b.size)
    if data == NULL:
        PyErr_NoMemory()
        return -1
    b.data = data
    b.cap = cap
    b.owned = True
    return 0


cdef inline int _reserve(_Buf* b, Py_ssize_t extra) except -1:
    if b.size + extra > b.cap:
        return _grow(b, extra)
    return 0


cdef inline int _put_char(_Buf* b, uint8_t c) except -1:
    _reserve(b, 1)
    b.data[b.size] = c
    b.size += 1
    return 0


cdef int _put_count(_Buf* b, Py_ssize_t n) except -1:
    """str(n) for n >= 0."""
    cdef uint8_t tmp[24]
    cdef int k = 0
    _reserve(b, 24)
    if n == 0:
        b.data[b.size] = 48
        b.size += 1
        return 0
    while n:
        tmp[k] = <uint8_t>(48 + n % 10)
        n //= 10
        k += 1
    while k:
        k -= 1
        b.data[b.size] = tmp[k]
        b.size += 1
    return 0


cdef int _put_field(_Buf* b, object value) except -1:
    """str(len(value)) + ":" + value, UTF-8 encoded."""
    cdef Py_ssize_t n, i
    cdef int kind
    cdef void* data
    cdef uint32_t c
    cdef uint8_t* out
    if not isinstance(value, str):
        len(value)  # the twin's TypeError for an unsized value
        raise TypeError(f"expected str instance, {type(value).__name__} found")
    n = PyUnicode_GET_LENGTH(value)
    _put_count(b, n)
    _put_char(b, 58)  # ':'
    if PyUnicode_IS_ASCII(value):
        _reserve(b, n)
        memcpy(b.data + b.size, PyUnicode_DATA(value), <size_t>n)
        b.size += n
        return 0
    kind = PyUnicode_KIND(value)
    data = PyUnicode_DATA(value)
    _reserve(b, 4 * n)
    out = b.data + b.size
    for i in range(n):
        c = PyUnicode_READ(kind, data, i)
        if c < 0x80:
            out[0] = <uint8_t>c
            out += 1
        elif c < 0x800:
            out[0] = <uint8_t>(0xC0 | (c >> 6))
            out[1] = <uint8_t>(0x80 | (c & 0x3F))
            out += 2
        elif c < 0x10000:
            if 0xD800 <= c <= 0xDFFF:
                value.encode("utf-8")  # raises the twin's UnicodeEncodeError
            out[0] = <uint8_t>(0xE0 | (c >> 12))
            out[1] = <uint8_t>(0x80 | ((c >> 6) & 0x3F))
            out[2] = <uint8_t>(0x80 | (c & 0x3F))
            out += 3
        else:
            out[0] = <uint8_t>(0xF0 | (c >> 18))
            out[1] = <uint8_t>(0x80 | ((c >> 12) & 0x3F))
            out[2] = <uint8_t>(0x80 | ((c >> 6) & 0x3F))
            out[3] = <uint8_t>(0x80 | (c & 0x3F))
            out += 4
    b.size = out - b.data
    return 0


cdef int _put_seq(_Buf* b, object seq) except -1:
    cdef Py_ssize_t i, n
    if type(seq) is tuple:
        n = PyTuple_GET_SIZE(seq)
        _put_count(b, n)
        for i in range(n):
            _put_field(b, <object>PyTuple_GET_ITEM(seq, i))
        return 0
    _put_count(b, len(seq))
    for x in seq:
        _put_field(b, x)
    return 0


cdef bint _positive(object value) except -1:
    cdef int overflow = 0
    cdef long long v
    if type(value) is int:
        v = PyLong_AsLongLongAndOverflow(value, &overflow)
        return overflow > 0 or (overflow == 0 and v > 0)
    return bool(value > 0)


cdef int _put_listen(_Buf* b, object listen) except -1:
    """Everything after the salt, as the twin's lookup_key lays it out."""
    cdef _Layout lay = _LISTEN
    cdef object entities, mappings, pair, name, mbid
    cdef Py_ssize_t i, n
    entities = lay.get(listen, _L_ENTITIES)
    if entities is None:
        _put_char(b, 83)  # 'S'
        _put_field(b, lay.get(listen, _L_ARTIST))
        _put_field(b, lay.get(listen, _L_TITLE))
        _put_field(b, lay.get(listen, _L_ALBUM))
        _put_seq(b, lay.get(listen, _L_ARTIST_NAMES))
        _put_seq(b, lay.get(listen, _L_ARTIST_MBIDS))
        mappings = lay.get(listen, _L_MBID_MAPPINGS)
        if type(mappings) is tuple:
            n = PyTuple_GET_SIZE(mappings)
            _put_count(b, n)
            for i in range(n):
                pair = <object>PyTuple_GET_ITEM(mappings, i)
                name, mbid = pair
                _put_field(b, name)
                _put_field(b, mbid)
        else:
            _put_count(b, len(mappings))
            for name, mbid in mappings:
                _put_field(b, name)
                _put_field(b, mbid)
        _put_field(b, lay.get(listen, _L_RELEASE_MBID))
        _put_field(b, lay.get(listen, _L_RECORDING_MBID))
        _put_char(b, 68 if _positive(lay.get(listen, _L_DURATION)) else 45)  # 'D' / '-'
    else:
        _put_char(b, 75)  # 'K'
        artists = _ENTITIES.get(entities, _K_ARTISTS)
        _put_count(b, len(artists))
        records = (*artists, _ENTITIES.get(entities, _K_ALBUM), _ENTITIES.get(entities, _K_TRACK))
        for record in records:
            _put_field(b, _ENTITY.get(record, _E_NAME))
            _put_field(b, _ENTITY.get(record, _E_MBID))
    return 0


cdef str _digest(_Buf* b):
    cdef str out = PyUnicode_New(32, 127)
    koito_blake2b16_hex(b.data, <size_t>b.size, PyUnicode_1BYTE_DATA(out))
    return out


def lookup_key(listen, salt=""):
    """A fixed-size, storable key covering everything the match of a prepared listen uses.

    Length-prefixed fields make it unambiguous; no case folding (Koito matches names
    case-sensitively). ``salt`` carries settings that change matching (the artist
    separators), so a cache row never serves a run configured differently. Whether the
    listen carries a duration is part of the key because it decides the duration fill.
    """
    cdef uint8_t stack[_STACK_BUF]
    cdef _Buf b
    _buf_init(&b, stack, _STACK_BUF)
    try:
        _put_field(&b, salt)
        _put_listen(&b, listen)
        return _digest(&b)
    finally:
        _buf_free(&b)


# --- the bulk path ---------------------------------------------------------------------


def normalize_batch(listens, salt):
    """prepare() and lookup_key() for a whole batch, in one call.

    Returns the prepared listens, their lookup keys (same order) and, for each listen
    prepare() rejected, its index in ``listens`` and the InvalidListen reason.
    """
    cdef list prepared = []
    cdef list keys = []
    cdef list rejected = []
    cdef Py_ssize_t i = 0, salted = -1
    cdef object seq, listen, result
    cdef uint8_t stack[_STACK_BUF]
    cdef _Buf b
    _buf_init(&b, stack, _STACK_BUF)
    try:
        seq = listens if type(listens) is list or type(listens) is tuple else list(listens)
        for listen in seq:
            try:
                result = _prepare(listen)
            except InvalidListen as exc:  # raised by a str-like object's own methods
                rejected.append((i, exc.reason))
                i += 1
                continue
            if _rejected(result):
                rejected.append((i, (<_Rejected>result).reason))
            else:
                prepared.append(result)
                if salted < 0:  # the salt is encoded once, when the first key needs it
                    _put_field(&b, salt)
                    salted = b.size
                b.size = salted
                _put_listen(&b, result)
                keys.append(_digest(&b))
            i += 1
    finally:
        _buf_free(&b)
    return prepared, keys, rejected


@cython.final
cdef void* _grown(void* block, size_t size) except NULL:
    """``block`` reallocated to ``size`` bytes; on failure it stays as it was (MemoryError)."""
    cdef void* grown = PyMem_Realloc(block, size)
    if grown == NULL:
        PyErr_NoMemory()
    return grown


cdef class ListenMap:
    """(track id, second) -> int64, in flat arrays: open addressing, linear probing.

    The twin of ``_normalize_py.ListenMap`` (a dict), at ~40 bytes an entry: a bulk run
    of a million listens keeps one entry per listen to its end.
    """

    cdef int64_t* _tracks
    cdef int64_t* _times
    cdef int64_t* _values
    cdef uint8_t* _used
    cdef Py_ssize_t _cap
    cdef Py_ssize_t _len

    def __cinit__(self):
        self._tracks = self._times = self._values = NULL
        self._used = NULL
        self._cap = 0
        self._len = 0
        self._alloc(1024)

    def __dealloc__(self):
        PyMem_Free(self._tracks)
        PyMem_Free(self._times)
        PyMem_Free(self._values)
        PyMem_Free(self._used)

    cdef int _alloc(self, Py_ssize_t cap) except -1:
        cdef int64_t* tracks = <int64_t*>PyMem_Malloc(cap * sizeof(int64_t))
        cdef int64_t* times = <int64_t*>PyMem_Malloc(cap * sizeof(int64_t))
        cdef int64_t* values = <int64_t*>PyMem_Malloc(cap * sizeof(int64_t))
        cdef uint8_t* used = <uint8_t*>PyMem_Malloc(cap)
        if tracks == NULL or times == NULL or values == NULL or used == NULL:
            PyMem_Free(tracks)
            PyMem_Free(times)
            PyMem_Free(values)
            PyMem_Free(used)
            PyErr_NoMemory()
            return -1
        memset(used, 0, cap)
        self._tracks, self._times, self._values, self._used = tracks, times, values, used
        self._cap = cap
        return 0

    cdef inline Py_ssize_t _slot(self, int64_t track, int64_t time) noexcept:
        cdef Py_ssize_t i = self._home(track, time)
        cdef Py_ssize_t cap = self._cap
        while self._used[i] and (self._tracks[i] != track or self._times[i] != time):
            i += 1
            if i == cap:
                i = 0
        return i

    cdef inline Py_ssize_t _home(self, int64_t track, int64_t time) noexcept:
        # A multiplicative mix of both halves (splitmix64's finalizer): ids and seconds
        # are dense, and a weak hash would cluster them in the probe sequence.
        cdef uint64_t h = <uint64_t>track * <uint64_t>0x9E3779B97F4A7C15 + <uint64_t>time
        h ^= h >> 30
        h *= <uint64_t>0xBF58476D1CE4E5B9
        h ^= h >> 27
        h *= <uint64_t>0x94D049BB133111EB
        h ^= h >> 31
        # Any capacity, not only powers of two: a reserved map is sized to its count
        # (at a million entries a power of two can be 1.5x as large).
        return <Py_ssize_t>(h % <uint64_t>self._cap)

    cdef int _resize(self, Py_ssize_t new_cap) except -1:
        # Grown in place: each array is reallocated (large blocks are remapped by the
        # C library, not copied) and the entries are moved within them. A copy into new
        # arrays held old and new together: at a million listens the map's 26 MB plus
        # 52 MB at once, the peak of a whole run into PostgreSQL.
        # ``_used``: 0 empty, 1 an entry not moved yet, 2 an entry at its new place.
        cdef Py_ssize_t cap = self._cap, j, i
        cdef int64_t track, time, value
        if new_cap <= cap:
            return 0
        self._tracks = <int64_t*>_grown(self._tracks, new_cap * sizeof(int64_t))
        self._times = <int64_t*>_grown(self._times, new_cap * sizeof(int64_t))
        self._values = <int64_t*>_grown(self._values, new_cap * sizeof(int64_t))
        self._used = <uint8_t*>_grown(self._used, new_cap)
        # Every array is large enough now; nothing below can fail.
        memset(self._used + cap, 0, new_cap - cap)
        self._cap = new_cap
        for j in range(cap):
            if self._used[j] != 1:
                continue
            track, time, value = self._tracks[j], self._times[j], self._values[j]
            self._used[j] = 0
            while True:
                # Its place among the moved entries: those never move again, so the
                # probe sequence of each stays occupied. An entry not moved yet that
                # sits there is taken out and placed next.
                i = self._home(track, time)
                while self._used[i] == 2:
                    i += 1
                    if i == new_cap:
                        i = 0
                if self._used[i] == 0:
                    self._tracks[i], self._times[i], self._values[i] = track, time, value
                    self._used[i] = 2
                    break
                self._tracks[i], track = track, self._tracks[i]
                self._times[i], time = time, self._times[i]
                self._values[i], value = value, self._values[i]
                self._used[i] = 2
        for j in range(new_cap):
            if self._used[j]:
                self._used[j] = 1
        return 0

    def reserve(self, Py_ssize_t count):
        """Make room for ``count`` entries at once, exactly (load 3/4): growing by doubling
        holds the old and the new arrays together, and ends at a capacity up to twice
        the one needed."""
        if (count + 1) * 4 > self._cap * 3:
            self._resize((count + 1) * 4 // 3 + 1)

    def _capacity(self):
        """Slots allocated (a test helper, not part of the twins' shared API)."""
        return self._cap

    def get(self, int64_t track, int64_t time):
        """The value stored for (track, time), or None."""
        cdef Py_ssize_t i = self._slot(track, time)
        if self._used[i]:
            return self._values[i]
        return None

    def set(self, int64_t track, int64_t time, int64_t value):
        """Store (or replace) the value of (track, time)."""
        cdef Py_ssize_t i
        if (self._len + 1) * 4 > self._cap * 3:
            self._resize(self._cap * 2)
        i = self._slot(track, time)
        if not self._used[i]:
            self._used[i] = 1
            self._tracks[i] = track
            self._times[i] = time
            self._len += 1
        self._values[i] = value

    def __len__(self):
        return self._len


__all__ = [
    "DEFAULT_SEPARATORS",
    "MAX_FIELD_CHARS",
    "MAX_TIME",
    "MIN_TIME",
    "ListenMap",
    "clean",
    "compile_separators",
    "equal_fold",
    "lookup_key",
    "normalize_batch",
    "parse_artists",
    "prepare",
    "storable",
]


def _fast_paths():
    """Which dataclasses are built and read through their slots (for tests)."""
    return {"Listen": _LISTEN.fast, "EntityRecord": _ENTITY.fast, "KoitoEntities": _ENTITIES.fast}


def _blake2b_hex(data):
    """The built-in BLAKE2b-128 of bytes, hex (for tests against hashlib)."""
    cdef const uint8_t[::1] view = data
    cdef uint8_t out[32]
    koito_blake2b16_hex(&view[0] if view.shape[0] else <const uint8_t*>b"", <size_t>view.shape[0], out)
    return (<char*>out)[:32].decode("ascii")
