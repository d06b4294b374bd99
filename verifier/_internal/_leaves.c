/*
 * verifier._internal._leaves: the leaf walk of docs/FORMAT.md §3 in C, an accelerator.
 *
 * One function, target_hash(), computes a credential's targetHash from its envelope's canonical
 * bytes, its credentialSubject and its salts, doing in one pass what
 * verifier/_internal/disclosure.py does with walk_leaves + digests_from_walk + target_hash_of:
 *
 *     digest = H(salt ‖ uint32_be(len(path_utf8)) ‖ path_utf8 ‖ JCS(value))     for every leaf
 *     entry  = uint32_be(len(path_utf8)) ‖ path_utf8 ‖ digest
 *     targetHash = H(entries sorted bytewise ascending, concatenated)
 *
 * It answers only for the plain case and returns None for anything else — a missing or malformed
 * salt, a float, an integer beyond ±(2^53−1), a lone surrogate, a non-text key, a type JSON cannot
 * hold, a leaf count that does not match the salts, nesting deeper than MAX_DEPTH. The caller then
 * takes the pure-Python path, which is the reference: it computes the same hash or names the
 * problem. So this module never decides that a credential is bad, and tests/verifier/
 * test_leaves_accelerator.py checks that wherever it answers, it answers what the reference does.
 *
 * H is the suite's hash constructor (hashlib.sha256, or SM3), called through Python: the hashing
 * stays OpenSSL's. What this saves is the interpreter's work around it.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 32
#define MAX_SAFE_INTEGER 9007199254740991LL

typedef struct {
    char *data;
    Py_ssize_t len;
    Py_ssize_t cap;
} Buf;

static int buf_reserve(Buf *b, Py_ssize_t extra) {
    if (b->len + extra <= b->cap) return 0;
    Py_ssize_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra) cap *= 2;
    char *data = PyMem_Realloc(b->data, (size_t)cap);
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = data;
    b->cap = cap;
    return 0;
}

static int buf_put(Buf *b, const void *src, Py_ssize_t n) {
    if (buf_reserve(b, n) < 0) return -1;
    if (n > 0) memcpy(b->data + b->len, src, (size_t)n);
    b->len += n;
    return 0;
}


/* ---- SHA-256 with the x86 SHA extensions ------------------------------------------------------
 * Hashing through hashlib costs a Python call, an OpenSSL context and a digest() call per leaf;
 * for a credential's seventeen short inputs that is most of the walk. Where the CPU has the SHA
 * extensions (and the module's self-test at import agrees with hashlib), SHA-256 runs here; else
 * every hash goes through H as given. test_leaves_accelerator.py checks sha256() against hashlib. */
static const uint32_t K256[64] = {
    0x428a2f98U, 0x71374491U, 0xb5c0fbcfU, 0xe9b5dba5U, 0x3956c25bU, 0x59f111f1U, 0x923f82a4U, 0xab1c5ed5U,
    0xd807aa98U, 0x12835b01U, 0x243185beU, 0x550c7dc3U, 0x72be5d74U, 0x80deb1feU, 0x9bdc06a7U, 0xc19bf174U,
    0xe49b69c1U, 0xefbe4786U, 0x0fc19dc6U, 0x240ca1ccU, 0x2de92c6fU, 0x4a7484aaU, 0x5cb0a9dcU, 0x76f988daU,
    0x983e5152U, 0xa831c66dU, 0xb00327c8U, 0xbf597fc7U, 0xc6e00bf3U, 0xd5a79147U, 0x06ca6351U, 0x14292967U,
    0x27b70a85U, 0x2e1b2138U, 0x4d2c6dfcU, 0x53380d13U, 0x650a7354U, 0x766a0abbU, 0x81c2c92eU, 0x92722c85U,
    0xa2bfe8a1U, 0xa81a664bU, 0xc24b8b70U, 0xc76c51a3U, 0xd192e819U, 0xd6990624U, 0xf40e3585U, 0x106aa070U,
    0x19a4c116U, 0x1e376c08U, 0x2748774cU, 0x34b0bcb5U, 0x391c0cb3U, 0x4ed8aa4aU, 0x5b9cca4fU, 0x682e6ff3U,
    0x748f82eeU, 0x78a5636fU, 0x84c87814U, 0x8cc70208U, 0x90befffaU, 0xa4506cebU, 0xbef9a3f7U, 0xc67178f2U,
};

static int native_sha256 = 0; /* set at import: the CPU can, and the self-test passed */

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>
#define HAVE_SHA_NI_CODE 1

#define SHA_TARGET __attribute__((target("sha,ssse3,sse4.1")))

/* The state as the SHA instructions hold it: ABEF and CDGH. */
SHA_TARGET static inline void sha256_state_in(const uint32_t state[8], __m128i *abef, __m128i *cdgh) {
    __m128i tmp = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&state[0]), 0xB1); /* CDAB */
    __m128i efgh = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&state[4]), 0x1B);
    *abef = _mm_alignr_epi8(tmp, efgh, 8);
    *cdgh = _mm_blend_epi16(efgh, tmp, 0xF0);
}

SHA_TARGET static inline void sha256_state_out(uint32_t state[8], __m128i abef, __m128i cdgh) {
    __m128i tmp = _mm_shuffle_epi32(abef, 0x1B);  /* FEBA */
    cdgh = _mm_shuffle_epi32(cdgh, 0xB1);         /* DCHG */
    _mm_storeu_si128((__m128i *)&state[0], _mm_blend_epi16(tmp, cdgh, 0xF0)); /* DCBA */
    _mm_storeu_si128((__m128i *)&state[4], _mm_alignr_epi8(cdgh, tmp, 8));    /* HGFE */
}

/* Four rounds of a block: step i of 16 (w holds the message schedule's last four groups). */
#define SHA256_STEP(i, data, w, state0, state1)                                                     \
    do {                                                                                            \
        __m128i x_, msg_;                                                                           \
        if ((i) < 4) {                                                                              \
            x_ = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)((data) + 16 * (i))), mask);     \
        } else {                                                                                    \
            x_ = _mm_sha256msg1_epu32(w[(i) & 3], w[((i) + 1) & 3]);                                \
            x_ = _mm_add_epi32(x_, _mm_alignr_epi8(w[((i) + 3) & 3], w[((i) + 2) & 3], 4));         \
            x_ = _mm_sha256msg2_epu32(x_, w[((i) + 3) & 3]);                                        \
        }                                                                                           \
        w[(i) & 3] = x_;                                                                            \
        msg_ = _mm_add_epi32(x_, _mm_loadu_si128((const __m128i *)&K256[4 * (i)]));                 \
        state1 = _mm_sha256rnds2_epu32(state1, state0, msg_);                                       \
        msg_ = _mm_shuffle_epi32(msg_, 0x0E);                                                       \
        state0 = _mm_sha256rnds2_epu32(state0, state1, msg_);                                       \
    } while (0)

SHA_TARGET static void sha256_blocks(uint32_t state[8], const unsigned char *data, size_t blocks) {
    const __m128i mask = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i state0, state1;
    sha256_state_in(state, &state0, &state1);
    while (blocks--) {
        __m128i abef = state0, cdgh = state1, w[4];
        for (int i = 0; i < 16; i++) SHA256_STEP(i, data, w, state0, state1);
        state0 = _mm_add_epi32(state0, abef);
        state1 = _mm_add_epi32(state1, cdgh);
        data += 64;
    }
    sha256_state_out(state, state0, state1);
}

/* sha256_blocks of two messages at once, a block of each in turn: a round's instruction waits for
 * the one before it, so one message leaves the SHA unit idle most of the time, and the other's
 * rounds fill it (FORMAT.md §3's leaves are short and many: a credential's are hashed in pairs). */
SHA_TARGET static void sha256_blocks_x2(uint32_t sa[8], const unsigned char *a, uint32_t sb[8],
                                        const unsigned char *b, size_t blocks) {
    const __m128i mask = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i a0, a1, b0, b1;
    sha256_state_in(sa, &a0, &a1);
    sha256_state_in(sb, &b0, &b1);
    while (blocks--) {
        __m128i abef_a = a0, cdgh_a = a1, abef_b = b0, cdgh_b = b1, wa[4], wb[4];
        for (int i = 0; i < 16; i++) {
            SHA256_STEP(i, a, wa, a0, a1);
            SHA256_STEP(i, b, wb, b0, b1);
        }
        a0 = _mm_add_epi32(a0, abef_a);
        a1 = _mm_add_epi32(a1, cdgh_a);
        b0 = _mm_add_epi32(b0, abef_b);
        b1 = _mm_add_epi32(b1, cdgh_b);
        a += 64;
        b += 64;
    }
    sha256_state_out(sa, a0, a1);
    sha256_state_out(sb, b0, b1);
}

static int cpu_has_sha_ni(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    if (!(c & (1U << 9)) || !(c & (1U << 19))) return 0; /* SSSE3, SSE4.1 */
    if (__get_cpuid_max(0, NULL) < 7) return 0;
    __cpuid_count(7, 0, a, b, c, d);
    return (b >> 29) & 1; /* SHA */
}

static const uint32_t SHA256_IV[8] = {0x6a09e667U, 0xbb67ae85U, 0x3c6ef372U, 0xa54ff53aU,
                                      0x510e527fU, 0x9b05688cU, 0x1f83d9abU, 0x5be0cd19U};

/* The last one or two of those blocks (the message's last n % 64 bytes, padded) into tail[128]. */
static size_t sha256_tail(const unsigned char *data, size_t n, unsigned char tail[128]) {
    size_t rem = n % 64, blocks = rem + 9 <= 64 ? 1 : 2;
    memset(tail, 0, 64 * blocks);
    if (rem > 0) memcpy(tail, data + (n - rem), rem);
    tail[rem] = 0x80;
    uint64_t bits = (uint64_t)n * 8;
    for (int i = 0; i < 8; i++) tail[64 * blocks - 1 - i] = (unsigned char)(bits >> (8 * i));
    return blocks;
}

static void sha256_digest_out(const uint32_t st[8], unsigned char out[32]) {
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (unsigned char)(st[i] >> 24);
        out[4 * i + 1] = (unsigned char)(st[i] >> 16);
        out[4 * i + 2] = (unsigned char)(st[i] >> 8);
        out[4 * i + 3] = (unsigned char)st[i];
    }
}

static void sha256(const unsigned char *data, size_t n, unsigned char out[32]) {
    uint32_t st[8];
    unsigned char tail[128];
    memcpy(st, SHA256_IV, sizeof st);
    sha256_blocks(st, data, n / 64);
    sha256_blocks(st, tail, sha256_tail(data, n, tail));
    sha256_digest_out(st, out);
}

/* SHA-256 of `count` messages already padded (sha256_pad_into), back to back in `padded`: message
 * i starts at starts[i] and ends where the next starts (the last at `end`); its digest goes to
 * out + 32 * i. Two lanes, each taking the next message as soon as its own is done, so that the
 * lanes' blocks go side by side (sha256_blocks_x2) however the lengths differ; the last message's
 * remainder goes alone. */
static void sha256_lanes(const unsigned char *padded, const Py_ssize_t *starts, Py_ssize_t count,
                         Py_ssize_t end, unsigned char *out) {
    uint32_t st[2][8];
    const unsigned char *at[2];
    size_t left[2];
    Py_ssize_t msg[2], next = 0;
    int lanes = 0;
    while (lanes > 0 || next < count) {
        while (lanes < 2 && next < count) { /* a free lane takes the next message */
            msg[lanes] = next;
            memcpy(st[lanes], SHA256_IV, sizeof st[lanes]);
            at[lanes] = padded + starts[next];
            left[lanes] = (size_t)((next + 1 < count ? starts[next + 1] : end) - starts[next]) / 64;
            lanes++, next++;
        }
        size_t both = lanes == 2 ? (left[0] < left[1] ? left[0] : left[1]) : left[0];
        if (lanes == 2)
            sha256_blocks_x2(st[0], at[0], st[1], at[1], both);
        else
            sha256_blocks(st[0], at[0], both);
        for (int k = lanes - 1; k >= 0; k--) {
            at[k] += 64 * both;
            left[k] -= both;
            if (left[k] > 0) continue;
            sha256_digest_out(st[k], out + 32 * msg[k]);
            if (--lanes == 1 && k == 0) { /* lane 1 carries on as lane 0 */
                memcpy(st[0], st[1], sizeof st[0]);
                at[0] = at[1];
                left[0] = left[1];
                msg[0] = msg[1];
            }
        }
    }
}

/* Append the message, padded (it, 0x80, zeros, its length in bits: whole blocks), to buf. */
static int sha256_pad_into(Buf *buf, const unsigned char *data, size_t n) {
    size_t full = n / 64 * 64;
    unsigned char tail[128];
    size_t blocks = sha256_tail(data, n, tail);
    if (buf_reserve(buf, (Py_ssize_t)(full + 64 * blocks)) < 0) return -1;
    if (full > 0) memcpy(buf->data + buf->len, data, full);
    memcpy(buf->data + buf->len + full, tail, 64 * blocks);
    buf->len += (Py_ssize_t)(full + 64 * blocks);
    return 0;
}
#endif

static PyObject *hashlib_sha256 = NULL; /* hashlib.sha256: the H for which sha256() above stands in */

static void put_u32(char *out, Py_ssize_t n) {
    uint32_t v = (uint32_t)n;
    out[0] = (char)(v >> 24);
    out[1] = (char)(v >> 16);
    out[2] = (char)(v >> 8);
    out[3] = (char)v;
}

/* SHAKE256 (FIPS 202) read as a stream: the issuer's seeded salts (FORMAT.md §3.2), the Keccak-f[1600]
 * below with the rate of Keccak-256, the domain bits 1111 and the pad 10*1. */
#define KECCAK256_RATE 136
typedef struct {
    uint64_t st[25];
    unsigned char out[KECCAK256_RATE]; /* the block being read */
    int pos;                           /* bytes of it read */
} Shake;

static void keccak_f1600(uint64_t A[25]);

static void keccak_absorb(uint64_t st[25], const unsigned char *in, size_t len, unsigned char domain);
static void keccak_lanes_out(const uint64_t st[25], unsigned char *out, int n);

static void shake256_begin(Shake *x, const unsigned char *in, size_t len) {
    keccak_absorb(x->st, in, len, 0x1F);
    keccak_lanes_out(x->st, x->out, KECCAK256_RATE);
    x->pos = 0;
}

static void shake256_read(Shake *x, unsigned char *out, size_t n) {
    while (n > 0) {
        if (x->pos == KECCAK256_RATE) {
            keccak_f1600(x->st);
            keccak_lanes_out(x->st, x->out, KECCAK256_RATE);
            x->pos = 0;
        }
        size_t take = (size_t)(KECCAK256_RATE - x->pos) < n ? (size_t)(KECCAK256_RATE - x->pos) : n;
        memcpy(out, x->out + x->pos, take);
        x->pos += (int)take;
        out += take;
        n -= take;
    }
}

/* Outcome of a step: go on, give the case to the reference (None), or a Python error. */
enum { OK = 0, FALLBACK = 1, ERROR = -1 };

typedef struct {
    PyObject *h;       /* hash constructor */
    PyObject *salts;   /* dict: path → "0x…" */
    Buf path;          /* the current leaf's JSON Pointer, UTF-8 */
    Buf msg;           /* salt ‖ uint32_be(len(path)) ‖ path ‖ JCS(value) */
    Buf entries;       /* every entry, back to back */
    Py_ssize_t *offsets; /* where each entry starts in `entries` (its length follows from the next) */
    Py_ssize_t count;
    Py_ssize_t offsets_cap;
    int native;        /* H is hashlib.sha256 and sha256() above computes it */
    Buf pending;       /* native: each leaf's message, padded, back to back (hashed after the walk) */
    Py_ssize_t *starts; /* native: where each leaf's padded message starts in `pending` */
    Py_ssize_t salt_pos; /* PyDict_Next's position after the salt last found in order */
    Shake *stream; /* salts drawn from a SHAKE256 stream (32 bytes a leaf, in leaf order), or NULL */
} Walk;

/* One more than the value of a lower-case hex digit, 0 for any other byte (upper case is left to
 * the reference). */
static const unsigned char HEX1[256] = {['0'] = 1,  ['1'] = 2,  ['2'] = 3,  ['3'] = 4,  ['4'] = 5,  ['5'] = 6,
                                        ['6'] = 7,  ['7'] = 8,  ['8'] = 9,  ['9'] = 10, ['a'] = 11, ['b'] = 12,
                                        ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16};


/* n bytes from the 2n lower-case hex digits at s into out: 0, or -1 if a character is not one
 * (out is then written but meaningless). Without a branch per digit: salts and proofs are ~1,300
 * digits a credential. */
static int unhex(const unsigned char *s, Py_ssize_t n, unsigned char *out) {
    unsigned bad = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned hi = HEX1[s[2 * i]], lo = HEX1[s[2 * i + 1]];
        bad |= (hi == 0) | (lo == 0);
        out[i] = (unsigned char)(((hi - 1) << 4) | ((lo - 1) & 0x0F));
    }
    return bad ? -1 : 0;
}

/* The salt of the current path, decoded: 32 bytes of lower-case 0x-hex, else FALLBACK. */
static int salt_of(Walk *w, unsigned char out[32]) {
    if (w->stream != NULL) { /* the stream's next 32 bytes */
        shake256_read(w->stream, out, 32);
        return OK;
    }
    /* An issuer writes the salts in leaf order, so the next entry is usually this path's: compared
     * in place, it spares making the path a str, hashing it and looking it up. */
    PyObject *next_key, *salt; /* borrowed */
    Py_ssize_t pos = w->salt_pos;
    if (PyDict_Next(w->salts, &pos, &next_key, &salt) && PyUnicode_CheckExact(next_key) &&
        PyUnicode_IS_COMPACT_ASCII(next_key) && PyUnicode_GET_LENGTH(next_key) == w->path.len &&
        (w->path.len == 0 || memcmp(PyUnicode_DATA(next_key), w->path.data, (size_t)w->path.len) == 0)) {
        w->salt_pos = pos;
    } else { /* salts in another order: look it up */
        PyObject *key = PyUnicode_DecodeUTF8(w->path.data, w->path.len, NULL);
        if (key == NULL) return ERROR;
        salt = PyDict_GetItemWithError(w->salts, key);
        Py_DECREF(key);
        if (salt == NULL) return PyErr_Occurred() ? ERROR : FALLBACK;
    }
    if (!PyUnicode_CheckExact(salt) || !PyUnicode_IS_COMPACT_ASCII(salt) || PyUnicode_GET_LENGTH(salt) != 66)
        return FALLBACK;
    const unsigned char *s = (const unsigned char *)PyUnicode_DATA(salt);
    if (s[0] != '0' || s[1] != 'x') return FALLBACK;
    return unhex(s + 2, 32, out) == 0 ? OK : FALLBACK;
}

/* Hash w->msg with H; 32 bytes into out. */
static int digest_msg(Walk *w, unsigned char out[32]) {
#ifdef HAVE_SHA_NI_CODE
    if (w->native) {
        sha256((const unsigned char *)w->msg.data, (size_t)w->msg.len, out);
        return OK;
    }
#endif
    PyObject *data = PyBytes_FromStringAndSize(w->msg.data, w->msg.len);
    if (data == NULL) return ERROR;
    PyObject *hobj = PyObject_CallOneArg(w->h, data);
    Py_DECREF(data);
    if (hobj == NULL) return ERROR;
    PyObject *digest = PyObject_CallMethod(hobj, "digest", NULL);
    Py_DECREF(hobj);
    if (digest == NULL) return ERROR;
    if (!PyBytes_Check(digest) || PyBytes_GET_SIZE(digest) != 32) {
        Py_DECREF(digest);
        return FALLBACK;
    }
    memcpy(out, PyBytes_AS_STRING(digest), 32);
    Py_DECREF(digest);
    return OK;
}

/* Start msg with salt ‖ uint32_be(len(path)) ‖ path; the caller appends JCS(value), then finish_leaf. */
static int begin_leaf(Walk *w) {
    unsigned char salt[32];
    int r = salt_of(w, salt);
    if (r != OK) return r;
    w->msg.len = 0;
    if (buf_reserve(&w->msg, 36 + w->path.len) < 0) return ERROR;
    memcpy(w->msg.data, salt, 32);
    put_u32(w->msg.data + 32, w->path.len);
    if (w->path.len > 0) memcpy(w->msg.data + 36, w->path.data, (size_t)w->path.len); /* (data NULL when empty) */
    w->msg.len = 36 + w->path.len;
    return OK;
}

static int finish_leaf(Walk *w) {
    unsigned char digest[32] = {0};
    if (w->count == w->offsets_cap) {
        Py_ssize_t cap = w->offsets_cap ? w->offsets_cap * 2 : 32;
        Py_ssize_t *offsets = PyMem_Realloc(w->offsets, (size_t)cap * sizeof(Py_ssize_t));
        if (offsets == NULL) {
            PyErr_NoMemory();
            return ERROR;
        }
        w->offsets = offsets;
        Py_ssize_t *starts = PyMem_Realloc(w->starts, (size_t)cap * sizeof(Py_ssize_t));
        if (starts == NULL) {
            PyErr_NoMemory();
            return ERROR;
        }
        w->starts = starts;
        w->offsets_cap = cap;
    }
#ifdef HAVE_SHA_NI_CODE
    if (w->native) { /* hashed with the others after the walk, two at a time (leaf_digests) */
        w->starts[w->count] = w->pending.len;
        if (sha256_pad_into(&w->pending, (const unsigned char *)w->msg.data, (size_t)w->msg.len) < 0)
            return ERROR;
    } else
#endif
    {
        int r = digest_msg(w, digest);
        if (r != OK) return r;
    }
    w->offsets[w->count++] = w->entries.len;
    /* the entry is msg[32:36+len(path)] ‖ digest (native: written by leaf_digests) */
    if (buf_put(&w->entries, w->msg.data + 32, 4 + w->path.len) < 0) return ERROR;
    if (buf_put(&w->entries, digest, 32) < 0) return ERROR;
    return OK;
}

#ifdef HAVE_SHA_NI_CODE
/* The digests of the leaves the walk left pending (sha256_lanes), into their entries' last 32 bytes. */
static int leaf_digests(Walk *w) {
    unsigned char small[32 * 64];
    unsigned char *digests = w->count <= 64 ? small : PyMem_Malloc((size_t)w->count * 32);
    if (digests == NULL) {
        PyErr_NoMemory();
        return ERROR;
    }
    sha256_lanes((const unsigned char *)w->pending.data, w->starts, w->count, w->pending.len, digests);
    for (Py_ssize_t i = 0; i < w->count; i++) {
        Py_ssize_t end = i + 1 < w->count ? w->offsets[i + 1] : w->entries.len;
        memcpy(w->entries.data + end - 32, digests + 32 * i, 32);
    }
    if (digests != small) PyMem_Free(digests);
    return OK;
}
#endif

static int leaf_raw(Walk *w, const char *jcs, Py_ssize_t n) {
    int r = begin_leaf(w);
    if (r != OK) return r;
    if (buf_put(&w->msg, jcs, n) < 0) return ERROR;
    return finish_leaf(w);
}

/* Eight bytes at a time: a high bit set in each byte of x that is zero (and, past the first such
 * byte, maybe in others: enough to stop and look byte by byte), none where no byte is zero. */
#define ONES 0x0101010101010101ULL
static inline uint64_t zero_bytes(uint64_t x) { return (x - ONES) & ~x & (ONES * 0x80); }

/* Whether any of the eight bytes at s is a '"' or a '\\' (or, with controls, below 0x20). */
static inline int has_quote_or_backslash(const char *s, int controls) {
    uint64_t v;
    memcpy(&v, s, 8);
    uint64_t found = zero_bytes(v ^ (ONES * '"')) | zero_bytes(v ^ (ONES * '\\'));
    if (controls) found |= (v - ONES * 0x20) & ~v & (ONES * 0x80);
    return found != 0;
}

/* JCS of a string (RFC 8785 §3.2.2.2, as json.encoder.encode_basestring writes it). */
static int put_jcs_string(Buf *b, PyObject *text) {
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(text, &n);
    if (s == NULL) { /* a lone surrogate: the reference names it */
        PyErr_Clear();
        return FALLBACK;
    }
    if (buf_reserve(b, n * 6 + 2) < 0) return ERROR;
    char *out = b->data + b->len;
    static const char hex[] = "0123456789abcdef";
    *out++ = '"';
    Py_ssize_t i = 0;
    for (; i + 8 <= n && !has_quote_or_backslash(s + i, 1); i += 8) { /* while none needs an escape */
        memcpy(out, s + i, 8);
        out += 8;
    }
    for (; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            *out++ = (char)c;
            continue;
        }
        *out++ = '\\';
        switch (c) {
        case '"': *out++ = '"'; break;
        case '\\': *out++ = '\\'; break;
        case '\b': *out++ = 'b'; break;
        case '\f': *out++ = 'f'; break;
        case '\n': *out++ = 'n'; break;
        case '\r': *out++ = 'r'; break;
        case '\t': *out++ = 't'; break;
        default:
            *out++ = 'u';
            *out++ = '0';
            *out++ = '0';
            *out++ = hex[c >> 4];
            *out++ = hex[c & 15];
        }
    }
    *out++ = '"';
    b->len = out - b->data;
    return OK;
}

static int walk(Walk *w, PyObject *value, int depth);

/* The decimal digits of an integer in the IEEE-754 safe range (RFC 8785 §3.2.2.3) into digits;
 * FALLBACK for one beyond ±(2^53−1) (the reference names it). */
static int safe_integer(PyObject *value, char digits[24], int *n) {
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (v == -1 && PyErr_Occurred()) return ERROR;
    if (overflow || v > MAX_SAFE_INTEGER || v < -MAX_SAFE_INTEGER) return FALLBACK;
    *n = snprintf(digits, 24, "%lld", v);
    return OK;
}

/* ---- RFC 8785 (JCS) of the envelope ---------------------------------------------------------
 * Objects' members sorted by name: JCS sorts by UTF-16 code units, which is code-point order
 * unless a name holds a character above U+FFFF — such a name is left to the reference. */
typedef struct {
    PyObject *key;
    PyObject *value;
} Member;

static int compare_members(const void *a, const void *b) {
    return PyUnicode_Compare(((const Member *)a)->key, ((const Member *)b)->key);
}

static int put_jcs(Buf *b, PyObject *value, int depth);

/* Members of `object` in JCS order, written as an object; `document`: leave out proof and
 * credentialSubject (the envelope of FORMAT.md §3.1). */
static int put_jcs_object(Buf *b, PyObject *object, int depth, int document) {
    Py_ssize_t n = PyDict_GET_SIZE(object), pos = 0, count = 0;
    Member *members = PyMem_Malloc((size_t)(n ? n : 1) * sizeof(Member));
    if (members == NULL) {
        PyErr_NoMemory();
        return ERROR;
    }
    PyObject *key, *item;
    int r = OK;
    while (PyDict_Next(object, &pos, &key, &item)) {
        if (!PyUnicode_CheckExact(key) || PyUnicode_MAX_CHAR_VALUE(key) > 0xFFFF) {
            r = FALLBACK;
            break;
        }
        if (document && (PyUnicode_CompareWithASCIIString(key, "proof") == 0 ||
                         PyUnicode_CompareWithASCIIString(key, "credentialSubject") == 0))
            continue;
        members[count].key = key;
        members[count].value = item;
        count++;
    }
    if (r == OK) qsort(members, (size_t)count, sizeof(Member), compare_members);
    if (r == OK && buf_put(b, "{", 1) < 0) r = ERROR;
    for (Py_ssize_t i = 0; r == OK && i < count; i++) {
        if (i > 0 && buf_put(b, ",", 1) < 0) r = ERROR;
        if (r == OK) r = put_jcs_string(b, members[i].key);
        if (r == OK && buf_put(b, ":", 1) < 0) r = ERROR;
        if (r == OK) r = put_jcs(b, members[i].value, depth + 1);
    }
    if (r == OK && buf_put(b, "}", 1) < 0) r = ERROR;
    PyMem_Free(members);
    return r;
}

static int put_jcs(Buf *b, PyObject *value, int depth) {
    if (depth > MAX_DEPTH) return FALLBACK;
    if (PyUnicode_CheckExact(value)) return put_jcs_string(b, value);
    if (value == Py_True) return buf_put(b, "true", 4) < 0 ? ERROR : OK;
    if (value == Py_False) return buf_put(b, "false", 5) < 0 ? ERROR : OK;
    if (value == Py_None) return buf_put(b, "null", 4) < 0 ? ERROR : OK;
    if (PyDict_CheckExact(value)) return put_jcs_object(b, value, depth, 0);
    if (PyList_CheckExact(value)) {
        Py_ssize_t n = PyList_GET_SIZE(value);
        if (buf_put(b, "[", 1) < 0) return ERROR;
        for (Py_ssize_t i = 0; i < n; i++) {
            if (i > 0 && buf_put(b, ",", 1) < 0) return ERROR;
            int r = put_jcs(b, PyList_GET_ITEM(value, i), depth + 1);
            if (r != OK) return r;
        }
        return buf_put(b, "]", 1) < 0 ? ERROR : OK;
    }
    if (PyLong_CheckExact(value)) {
        char digits[24];
        int k, r = safe_integer(value, digits, &k);
        if (r != OK) return r;
        return buf_put(b, digits, k) < 0 ? ERROR : OK;
    }
    return FALLBACK; /* a float (JCS writes it, a credential never holds one) or a non-JSON type */
}

/* Append "/" ‖ token (RFC 6901: "~" → "~0", "/" → "~1") to the path. */
static int push_key(Walk *w, PyObject *key) {
    if (!PyUnicode_CheckExact(key)) return FALLBACK;
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(key, &n);
    if (s == NULL) {
        PyErr_Clear();
        return FALLBACK;
    }
    if (buf_reserve(&w->path, 2 * n + 1) < 0) return ERROR;
    char *out = w->path.data + w->path.len;
    *out++ = '/';
    for (Py_ssize_t i = 0; i < n; i++) {
        if (s[i] == '~') {
            *out++ = '~';
            *out++ = '0';
        } else if (s[i] == '/') {
            *out++ = '~';
            *out++ = '1';
        } else {
            *out++ = s[i];
        }
    }
    w->path.len = out - w->path.data;
    return OK;
}

static int walk_dict(Walk *w, PyObject *value, int depth) {
    if (PyDict_GET_SIZE(value) == 0) return leaf_raw(w, "{}", 2);
    Py_ssize_t pos = 0, mark = w->path.len;
    PyObject *key, *item;
    while (PyDict_Next(value, &pos, &key, &item)) {
        /* held while in use: H (or a salts key's __eq__) is Python code that could change the document */
        Py_INCREF(key);
        Py_INCREF(item);
        int r = push_key(w, key);
        if (r == OK) r = walk(w, item, depth + 1);
        Py_DECREF(key);
        Py_DECREF(item);
        w->path.len = mark;
        if (r != OK) return r;
    }
    return OK;
}

static int walk_list(Walk *w, PyObject *value, int depth) {
    Py_ssize_t mark = w->path.len;
    if (PyList_GET_SIZE(value) == 0) return leaf_raw(w, "[]", 2);
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(value); i++) { /* (the size read again: see walk_dict) */
        char index[24];
        int k = snprintf(index, sizeof index, "/%zd", i);
        if (buf_put(&w->path, index, k) < 0) return ERROR;
        PyObject *item = PyList_GET_ITEM(value, i);
        Py_INCREF(item);
        int r = walk(w, item, depth + 1);
        Py_DECREF(item);
        w->path.len = mark;
        if (r != OK) return r;
    }
    return OK;
}

static int walk(Walk *w, PyObject *value, int depth) {
    if (depth > MAX_DEPTH) return FALLBACK;
    if (PyUnicode_CheckExact(value)) {
        int r = begin_leaf(w);
        if (r == OK) r = put_jcs_string(&w->msg, value);
        return r == OK ? finish_leaf(w) : r;
    }
    if (value == Py_True) return leaf_raw(w, "true", 4);
    if (value == Py_False) return leaf_raw(w, "false", 5);
    if (value == Py_None) return leaf_raw(w, "null", 4);
    if (PyDict_CheckExact(value)) return walk_dict(w, value, depth);
    if (PyList_CheckExact(value)) return walk_list(w, value, depth);
    if (PyLong_CheckExact(value)) {
        char digits[24];
        int k, r = safe_integer(value, digits, &k);
        return r == OK ? leaf_raw(w, digits, k) : r;
    }
    return FALLBACK; /* a float, or a type JSON cannot hold: the reference names it */
}

static int compare_entries(const void *a, const void *b) {
    const Py_ssize_t *x = a, *y = b; /* [offset, length] pairs */
    Py_ssize_t n = x[1] < y[1] ? x[1] : y[1];
    int c = memcmp((const void *)x[0], (const void *)y[0], (size_t)n);
    if (c != 0) return c;
    return (x[1] > y[1]) - (x[1] < y[1]);
}

static PyObject *target_hash(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "target_hash(h, salts, envelope_jcs, subject) takes 4 arguments");
        return NULL;
    }
    PyObject *h = args[0], *salts = args[1], *envelope = args[2], *subject = args[3];
    if (!(PyDict_CheckExact(salts) || PyBytes_CheckExact(salts)) ||
        !(PyBytes_Check(envelope) || PyDict_CheckExact(envelope))) {
        PyErr_SetString(PyExc_TypeError,
                        "target_hash: salts must be a dict or bytes, envelope_jcs bytes or the document");
        return NULL;
    }
    Walk w;
    Shake stream;
    memset(&w, 0, sizeof w);
    w.h = h;
    w.salts = salts;
    if (PyBytes_CheckExact(salts)) {
        shake256_begin(&stream, (const unsigned char *)PyBytes_AS_STRING(salts), (size_t)PyBytes_GET_SIZE(salts));
        w.stream = &stream;
    }
    PyObject *result = NULL;
    w.native = native_sha256 && h == hashlib_sha256;
    int r;
    if (PyBytes_Check(envelope)) { /* the envelope leaf (path ""), written by the caller */
        r = leaf_raw(&w, PyBytes_AS_STRING(envelope), PyBytes_GET_SIZE(envelope));
    } else { /* the document: its envelope written here, behind the salt */
        r = begin_leaf(&w);
        if (r == OK) r = put_jcs_object(&w.msg, envelope, 0, 1);
        if (r == OK) r = finish_leaf(&w);
    }
    if (r == OK) {
        static const char subject_path[] = "/credentialSubject";
        if (buf_put(&w.path, subject_path, sizeof subject_path - 1) < 0)
            r = ERROR;
        else
            r = walk(&w, subject, 0);
    }
    if (r == OK && w.stream == NULL && w.count != PyDict_GET_SIZE(salts))
        r = FALLBACK; /* a salt for no leaf, or the reverse */
#ifdef HAVE_SHA_NI_CODE
    if (r == OK && w.native) r = leaf_digests(&w);
#endif
    if (r == OK) {
        Py_ssize_t *pairs = PyMem_Malloc((size_t)(w.count ? w.count : 1) * 2 * sizeof(Py_ssize_t));
        if (pairs == NULL) {
            PyErr_NoMemory();
            r = ERROR;
        } else {
            for (Py_ssize_t i = 0; i < w.count; i++) {
                Py_ssize_t end = i + 1 < w.count ? w.offsets[i + 1] : w.entries.len;
                pairs[2 * i] = (Py_ssize_t)(w.entries.data + w.offsets[i]);
                pairs[2 * i + 1] = end - w.offsets[i];
            }
            qsort(pairs, (size_t)w.count, 2 * sizeof(Py_ssize_t), compare_entries);
            w.msg.len = 0;
            for (Py_ssize_t i = 0; r == OK && i < w.count; i++)
                if (buf_put(&w.msg, (const void *)pairs[2 * i], pairs[2 * i + 1]) < 0) r = ERROR;
            PyMem_Free(pairs);
            unsigned char digest[32];
            if (r == OK) r = digest_msg(&w, digest);
            if (r == OK) result = PyBytes_FromStringAndSize((const char *)digest, 32);
        }
    }
    PyMem_Free(w.path.data);
    PyMem_Free(w.msg.data);
    PyMem_Free(w.entries.data);
    PyMem_Free(w.offsets);
    PyMem_Free(w.starts);
    PyMem_Free(w.pending.data);
    if (r == ERROR) return NULL;
    if (r == FALLBACK) Py_RETURN_NONE;
    return result;
}


/* ---- proof: the plain case of verifier/_proof.py's parse_proof --------------------------------
 * parse_proof(proof, ParsedProof, proof_type) builds the same ParsedProof as the Python function for a proof
 * with every member well formed and nothing redacted, and returns None for anything else (the
 * Python function then decides and names the problem). Stricter, never looser: hex must be exactly
 * "0x" + lower-case digits of the expected length. */
static PyObject *S_type, *S_suite, *S_salts, *S_redacted, *S_target, *S_subject, *S_subject_salt, *S_root,
    *S_path, *S_ctype, *S_count, *S_issuer, *S_key_version, *S_signature, *S_anchor, *S_anchor_proof,
    *S_package, *S_chain, *S_registry, *S_tx, *S_block, *S_secp, *S_sm2;

/* bytes of lower-case 0x-hex text of exactly `size` bytes, else NULL without an error set */
static PyObject *hex_bytes(PyObject *text, Py_ssize_t size) {
    if (text == NULL || !PyUnicode_CheckExact(text) || !PyUnicode_IS_COMPACT_ASCII(text) ||
        PyUnicode_GET_LENGTH(text) != 2 + 2 * size)
        return NULL;
    const unsigned char *s = (const unsigned char *)PyUnicode_DATA(text);
    if (s[0] != '0' || s[1] != 'x') return NULL;
    unsigned char raw[65];
    if (unhex(s + 2, size, raw) < 0) return NULL;
    return PyBytes_FromStringAndSize((const char *)raw, size);
}

static int uint_in(PyObject *value, unsigned bits) {
    if (value == NULL || !PyLong_CheckExact(value)) return 0;
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (v == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    if (overflow > 0 && bits == 64) { /* up to 2^64 − 1 */
        unsigned long long u = PyLong_AsUnsignedLongLong(value);
        if (u == (unsigned long long)-1 && PyErr_Occurred()) {
            PyErr_Clear();
            return 0;
        }
        return 1;
    }
    if (overflow || v < 0) return 0;
    return bits >= 63 || v < (1LL << bits);
}

/* Whether every key of `dict` is an exact str: then a lookup by a str runs no Python code (an
 * object of another type could run __eq__ and change the dict under the borrowed values). */
static int str_keys(PyObject *dict) {
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    while (PyDict_Next(dict, &pos, &key, &value))
        if (!PyUnicode_CheckExact(key)) return 0;
    return 1;
}

/* proof[name] (borrowed) or NULL; counts a member found */
static PyObject *member(PyObject *dict, PyObject *name, Py_ssize_t *found) {
    PyObject *v = PyDict_GetItemWithError(dict, name);
    if (v != NULL) (*found)++;
    return v;
}

static PyObject *parse_proof(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 3 || !PyUnicode_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "parse_proof(proof, ParsedProof, proof_type: str) takes 3 arguments");
        return NULL;
    }
    PyObject *proof = args[0], *cls = args[1], *proof_type = args[2];
    if (!PyDict_CheckExact(proof) || !str_keys(proof)) Py_RETURN_NONE;
    Py_ssize_t found = 0, anchor_found = 0;
    PyObject *type = member(proof, S_type, &found), *suite = member(proof, S_suite, &found),
             *salts = member(proof, S_salts, &found), *redacted = member(proof, S_redacted, &found),
             *target = member(proof, S_target, &found), *subject = member(proof, S_subject, &found),
             *subject_salt = member(proof, S_subject_salt, &found), *root = member(proof, S_root, &found),
             *path = member(proof, S_path, &found), *ctype = member(proof, S_ctype, &found),
             *count = member(proof, S_count, &found), *issuer = member(proof, S_issuer, &found),
             *key_version = member(proof, S_key_version, &found),
             *signature = member(proof, S_signature, &found), *anchor = member(proof, S_anchor, &found),
             *anchor_proof = member(proof, S_anchor_proof, &found),
             *package = member(proof, S_package, &found);
    if (PyErr_Occurred()) return NULL;
    if (found != PyDict_GET_SIZE(proof)) Py_RETURN_NONE; /* a member the format does not define */
    if (type == NULL || !PyUnicode_CheckExact(type) || PyUnicode_Compare(type, proof_type) != 0)
        Py_RETURN_NONE;
    if (suite == NULL || !PyUnicode_CheckExact(suite)) Py_RETURN_NONE;
    Py_ssize_t sig_size;
    if (PyUnicode_Compare(suite, S_secp) == 0)
        sig_size = 65;
    else if (PyUnicode_Compare(suite, S_sm2) == 0)
        sig_size = 64;
    else
        Py_RETURN_NONE;
    if (salts == NULL || !PyDict_CheckExact(salts)) Py_RETURN_NONE;
    if (redacted != NULL && (!PyDict_CheckExact(redacted) || PyDict_GET_SIZE(redacted) != 0)) Py_RETURN_NONE;
    if (path == NULL || !PyList_CheckExact(path) || PyList_GET_SIZE(path) > 64) Py_RETURN_NONE;
    if (anchor == NULL || !PyDict_CheckExact(anchor) || !str_keys(anchor)) Py_RETURN_NONE;
    PyObject *chain = member(anchor, S_chain, &anchor_found), *registry = member(anchor, S_registry, &anchor_found),
             *tx = member(anchor, S_tx, &anchor_found), *block = member(anchor, S_block, &anchor_found);
    if (PyErr_Occurred()) return NULL;
    if (anchor_found != PyDict_GET_SIZE(anchor)) Py_RETURN_NONE;
    if ((anchor_proof != NULL && anchor_proof != Py_None && !PyDict_CheckExact(anchor_proof)) ||
        (package != NULL && package != Py_None && !PyDict_CheckExact(package)))
        Py_RETURN_NONE;
    if (!uint_in(ctype, 16) || !uint_in(count, 32) || !uint_in(issuer, 32) || !uint_in(key_version, 16) ||
        !uint_in(chain, 64) || !uint_in(block, 64))
        Py_RETURN_NONE;
    PyObject *fields[19] = {NULL};
    PyObject *result = NULL;
    Py_ssize_t n = PyList_GET_SIZE(path);
    fields[6] = PyTuple_New(n);
    if (fields[6] == NULL) return NULL;
    int ok = 1;
    for (Py_ssize_t i = 0; i < n && ok; i++) {
        PyObject *sibling = hex_bytes(PyList_GET_ITEM(path, i), 32);
        if (sibling == NULL) ok = 0;
        else PyTuple_SET_ITEM(fields[6], i, sibling);
    }
    PyObject *registry_raw = ok ? hex_bytes(registry, 20) : NULL, *tx_raw = ok ? hex_bytes(tx, 32) : NULL;
    ok = ok && registry_raw != NULL && tx_raw != NULL;
    Py_XDECREF(registry_raw);
    Py_XDECREF(tx_raw);
    if (ok) {
        fields[3] = hex_bytes(target, 32);
        fields[4] = hex_bytes(subject, 32);
        fields[5] = hex_bytes(root, 32);
        fields[11] = hex_bytes(signature, sig_size);
        if (subject_salt == NULL || subject_salt == Py_None) {
            fields[18] = Py_NewRef(Py_None);
        } else {
            fields[18] = hex_bytes(subject_salt, 32);
        }
        ok = fields[3] && fields[4] && fields[5] && fields[11] && fields[18];
    }
    if (ok && !PyErr_Occurred()) {
        fields[0] = Py_NewRef(suite);
        fields[1] = Py_NewRef(salts);
        fields[2] = redacted != NULL ? Py_NewRef(redacted) : PyDict_New();
        fields[7] = Py_NewRef(ctype);
        fields[8] = Py_NewRef(count);
        fields[9] = Py_NewRef(issuer);
        fields[10] = Py_NewRef(key_version);
        fields[12] = Py_NewRef(chain);
        fields[13] = Py_NewRef(registry);
        fields[14] = Py_NewRef(tx);
        fields[15] = Py_NewRef(block);
        fields[16] = Py_NewRef(anchor_proof != NULL ? anchor_proof : Py_None);
        fields[17] = Py_NewRef(package != NULL ? package : Py_None);
        if (fields[2] != NULL) result = PyObject_Vectorcall(cls, fields, 19, NULL);
    }
    for (int i = 0; i < 19; i++) Py_XDECREF(fields[i]);
    if (result == NULL && PyErr_Occurred()) return NULL;
    if (result == NULL) Py_RETURN_NONE;
    return result;
}


/* ---- JSON: are the member names of every object distinct? -------------------------------------
 * keys_unique(data) answers True only when it is sure: every object's member names, compared as
 * written, differ and none holds a backslash (an escape could spell one name two ways), and no
 * run of digits is longer than 18 (orjson reads an integer beyond 64 bits as a float, json as an
 * int). Anything else — a repeated name, an escape in a name, a long number, text it cannot
 * follow — gives False, and the caller
 * takes the reference parser (json with a duplicate check). It is a scan, not a parser: the
 * caller parses with orjson, which refuses what is not JSON. */
typedef struct {
    const char *start;
    Py_ssize_t len;
} Span;

static int compare_spans(const void *a, const void *b) {
    const Span *x = a, *y = b;
    Py_ssize_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->start, y->start, (size_t)n);
    return c != 0 ? c : (x->len > y->len) - (x->len < y->len);
}

#define MAX_JSON_DEPTH 512

static PyObject *keys_unique(PyObject *self, PyObject *arg) {
    (void)self;
    if (!PyBytes_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "keys_unique(data: bytes)");
        return NULL;
    }
    const char *s = PyBytes_AS_STRING(arg), *end = s + PyBytes_GET_SIZE(arg);
    /* the names seen, per open object: a stack of spans, each object's from its mark */
    Span *names = NULL;
    Py_ssize_t n_names = 0, cap = 0;
    Py_ssize_t marks[MAX_JSON_DEPTH];
    char kinds[MAX_JSON_DEPTH]; /* '{' or '[' */
    int depth = 0, expect_key = 0, answer = 1;
    while (s < end && answer) {
        char c = *s;
        if (c == '"') {
            const char *start = ++s;
            int escaped = 0;
            for (;;) { /* to the closing quote: eight bytes at a time while none is '"' or '\\' */
                while (s + 8 <= end && !has_quote_or_backslash(s, 0)) s += 8;
                while (s < end && *s != '"' && *s != '\\') s++;
                if (s < end && *s == '\\') {
                    escaped = 1;
                    s += 2; /* the escaped character, whatever it is */
                    continue;
                }
                break;
            }
            if (s >= end) {
                answer = 0;
                break;
            }
            if (expect_key) {
                if (escaped) {
                    answer = 0;
                    break;
                }
                if (n_names == cap) {
                    cap = cap ? cap * 2 : 64;
                    Span *grown = PyMem_Realloc(names, (size_t)cap * sizeof(Span));
                    if (grown == NULL) {
                        PyMem_Free(names);
                        return PyErr_NoMemory();
                    }
                    names = grown;
                }
                names[n_names].start = start;
                names[n_names].len = s - start;
                n_names++;
                expect_key = 0;
            }
            s++;
            continue;
        }
        if (c == '{' || c == '[') {
            if (depth == MAX_JSON_DEPTH) {
                answer = 0;
                break;
            }
            kinds[depth] = c;
            marks[depth++] = n_names;
            expect_key = c == '{';
        } else if (c == '}' || c == ']') {
            if (depth == 0 || kinds[depth - 1] != (c == '}' ? '{' : '[')) {
                answer = 0;
                break;
            }
            Py_ssize_t mark = marks[--depth], k = n_names - mark;
            if (c == '}' && k > 1) {
                if (k <= 24) { /* a credential's objects are small: insertion sort */
                    for (Py_ssize_t i = mark + 1; i < n_names; i++) {
                        Span key = names[i];
                        Py_ssize_t j = i;
                        for (; j > mark && compare_spans(&names[j - 1], &key) > 0; j--) names[j] = names[j - 1];
                        names[j] = key;
                    }
                } else {
                    qsort(names + mark, (size_t)k, sizeof(Span), compare_spans);
                }
                for (Py_ssize_t i = mark + 1; i < n_names; i++)
                    if (compare_spans(&names[i - 1], &names[i]) == 0) answer = 0;
            }
            n_names = mark;
            expect_key = 0;
        } else if (c == ',') {
            expect_key = depth > 0 && kinds[depth - 1] == '{';
        } else if (c >= '0' && c <= '9') { /* orjson reads an integer beyond 64 bits as a float */
            const char *digits = s;
            while (s < end && *s >= '0' && *s <= '9') s++;
            if (s - digits > 18) answer = 0;
            continue;
        }
        s++;
    }
    PyMem_Free(names);
    if (answer && depth == 0) Py_RETURN_TRUE;
    Py_RETURN_FALSE;
}


/* ---- ISO 7064 MOD 37,36 (the check character of an e-licence's identifier) ---------------------
 * The running value p taken through a character of value v (0–9, A–Z as 0–35) becomes
 * (((p or 36) · 2) mod 37 + v) mod 36: tabled at import (two divisions a character otherwise). */
static unsigned char MOD37_36_NEXT[36][36];

static void mod37_36_table(void) {
    for (int p = 0; p < 36; p++)
        for (int v = 0; v < 36; v++) MOD37_36_NEXT[p][v] = (unsigned char)((((p ? p : 36) * 2) % 37 + v) % 36);
}

/* p after the character c, one of 0-9 A-Z (the caller checked). */
static inline long mod37_36_step(long p, unsigned char c) {
    return MOD37_36_NEXT[p][c <= '9' ? c - '0' : c - 'A' + 10];
}

/* mod37_36_run(p, text): verifier/licence_id.py's _run — p taken through each character of text;
 * -1 if a character is not in the alphabet. */
static PyObject *mod37_36_run(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 2 || !PyLong_CheckExact(args[0]) || !PyUnicode_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "mod37_36_run(p: int, text: str)");
        return NULL;
    }
    long p = PyLong_AsLong(args[0]);
    if (p == -1 && PyErr_Occurred()) return NULL;
    if (p < 0 || p > 35) {
        PyErr_SetString(PyExc_ValueError, "mod37_36_run: p is 0–35");
        return NULL;
    }
    if (!PyUnicode_IS_ASCII(args[1])) return PyLong_FromLong(-1);
    const unsigned char *t = PyUnicode_1BYTE_DATA(args[1]);
    Py_ssize_t n = PyUnicode_GET_LENGTH(args[1]);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!((t[i] >= '0' && t[i] <= '9') || (t[i] >= 'A' && t[i] <= 'Z'))) return PyLong_FromLong(-1);
        p = mod37_36_step(p, t[i]);
    }
    return PyLong_FromLong(p);
}

/* ---- Keccak-256 (Ethereum's: the original padding 0x01, not SHA-3's 0x06) ---------------------
 * Keccak-f[1600] after the Keccak team's readable-and-compact reference (public domain), lanes read
 * little-endian byte by byte (any host). keccak256() is the digest the Merkle tree takes three times
 * per credential and once per node; called from here (merkle_root, merkle_tree) it costs no Python
 * call. verifier/_internal/keccak.py uses it first when it agrees with the known digests, and
 * tests/verifier/test_keccak.py holds it to eth_hash on every length around the rate. */
static const uint64_t KECCAK_RC[24] = {
    0x0000000000000001ULL, 0x0000000000008082ULL, 0x800000000000808aULL, 0x8000000080008000ULL,
    0x000000000000808bULL, 0x0000000080000001ULL, 0x8000000080008081ULL, 0x8000000000008009ULL,
    0x000000000000008aULL, 0x0000000000000088ULL, 0x0000000080008009ULL, 0x000000008000000aULL,
    0x000000008000808bULL, 0x800000000000008bULL, 0x8000000000008089ULL, 0x8000000000008003ULL,
    0x8000000000008002ULL, 0x8000000000000080ULL, 0x000000000000800aULL, 0x800000008000000aULL,
    0x8000000080008081ULL, 0x8000000000008080ULL, 0x0000000080000001ULL, 0x8000000080008008ULL};
#define ROTL64(x, n) (((x) << (n)) | ((x) >> (64 - (n))))

/* unrolled: lane A[x + 5y]; ρ's offsets and π's moves written out (B[y + 5((2x + 3y) mod 5)]) */
static void keccak_f1600(uint64_t A[25]) {
    uint64_t B[25], C[5], D[5];
    for (int round = 0; round < 24; round++) {
        C[0] = A[0] ^ A[5] ^ A[10] ^ A[15] ^ A[20]; /* θ */
        C[1] = A[1] ^ A[6] ^ A[11] ^ A[16] ^ A[21]; /* θ */
        C[2] = A[2] ^ A[7] ^ A[12] ^ A[17] ^ A[22]; /* θ */
        C[3] = A[3] ^ A[8] ^ A[13] ^ A[18] ^ A[23]; /* θ */
        C[4] = A[4] ^ A[9] ^ A[14] ^ A[19] ^ A[24]; /* θ */
        D[0] = C[4] ^ ROTL64(C[1], 1);
        D[1] = C[0] ^ ROTL64(C[2], 1);
        D[2] = C[1] ^ ROTL64(C[3], 1);
        D[3] = C[2] ^ ROTL64(C[4], 1);
        D[4] = C[3] ^ ROTL64(C[0], 1);
        B[0] = A[0] ^ D[0]; /* ρ and π */
        B[10] = ROTL64(A[1] ^ D[1], 1);
        B[20] = ROTL64(A[2] ^ D[2], 62);
        B[5] = ROTL64(A[3] ^ D[3], 28);
        B[15] = ROTL64(A[4] ^ D[4], 27);
        B[16] = ROTL64(A[5] ^ D[0], 36);
        B[1] = ROTL64(A[6] ^ D[1], 44);
        B[11] = ROTL64(A[7] ^ D[2], 6);
        B[21] = ROTL64(A[8] ^ D[3], 55);
        B[6] = ROTL64(A[9] ^ D[4], 20);
        B[7] = ROTL64(A[10] ^ D[0], 3);
        B[17] = ROTL64(A[11] ^ D[1], 10);
        B[2] = ROTL64(A[12] ^ D[2], 43);
        B[12] = ROTL64(A[13] ^ D[3], 25);
        B[22] = ROTL64(A[14] ^ D[4], 39);
        B[23] = ROTL64(A[15] ^ D[0], 41);
        B[8] = ROTL64(A[16] ^ D[1], 45);
        B[18] = ROTL64(A[17] ^ D[2], 15);
        B[3] = ROTL64(A[18] ^ D[3], 21);
        B[13] = ROTL64(A[19] ^ D[4], 8);
        B[14] = ROTL64(A[20] ^ D[0], 18);
        B[24] = ROTL64(A[21] ^ D[1], 2);
        B[9] = ROTL64(A[22] ^ D[2], 61);
        B[19] = ROTL64(A[23] ^ D[3], 56);
        B[4] = ROTL64(A[24] ^ D[4], 14);
        A[0] = B[0] ^ (~B[1] & B[2]); /* χ */
        A[1] = B[1] ^ (~B[2] & B[3]);
        A[2] = B[2] ^ (~B[3] & B[4]);
        A[3] = B[3] ^ (~B[4] & B[0]);
        A[4] = B[4] ^ (~B[0] & B[1]);
        A[5] = B[5] ^ (~B[6] & B[7]);
        A[6] = B[6] ^ (~B[7] & B[8]);
        A[7] = B[7] ^ (~B[8] & B[9]);
        A[8] = B[8] ^ (~B[9] & B[5]);
        A[9] = B[9] ^ (~B[5] & B[6]);
        A[10] = B[10] ^ (~B[11] & B[12]);
        A[11] = B[11] ^ (~B[12] & B[13]);
        A[12] = B[12] ^ (~B[13] & B[14]);
        A[13] = B[13] ^ (~B[14] & B[10]);
        A[14] = B[14] ^ (~B[10] & B[11]);
        A[15] = B[15] ^ (~B[16] & B[17]);
        A[16] = B[16] ^ (~B[17] & B[18]);
        A[17] = B[17] ^ (~B[18] & B[19]);
        A[18] = B[18] ^ (~B[19] & B[15]);
        A[19] = B[19] ^ (~B[15] & B[16]);
        A[20] = B[20] ^ (~B[21] & B[22]);
        A[21] = B[21] ^ (~B[22] & B[23]);
        A[22] = B[22] ^ (~B[23] & B[24]);
        A[23] = B[23] ^ (~B[24] & B[20]);
        A[24] = B[24] ^ (~B[20] & B[21]);
        A[0] ^= KECCAK_RC[round]; /* ι */
    }
}

static void keccak_absorb_block(uint64_t st[25], const unsigned char *block) {
    for (int i = 0; i < KECCAK256_RATE / 8; i++) {
        uint64_t lane = 0;
        for (int k = 7; k >= 0; k--) lane = (lane << 8) | block[8 * i + k];
        st[i] ^= lane;
    }
    keccak_f1600(st);
}

/* st (zeroed here) after absorbing all of in, padded with the domain bits (0x01 Keccak, 0x1F SHAKE)
 * and 10*1 */
static void keccak_absorb(uint64_t st[25], const unsigned char *in, size_t len, unsigned char domain) {
    unsigned char last[KECCAK256_RATE];
    memset(st, 0, 25 * sizeof st[0]);
    for (; len >= KECCAK256_RATE; in += KECCAK256_RATE, len -= KECCAK256_RATE) keccak_absorb_block(st, in);
    memset(last, 0, sizeof last);
    if (len) memcpy(last, in, len);
    last[len] ^= domain;
    last[KECCAK256_RATE - 1] ^= 0x80;
    keccak_absorb_block(st, last);
}

/* the first n bytes of the state (n a multiple of 8, at most the rate), lanes little-endian */
static void keccak_lanes_out(const uint64_t st[25], unsigned char *out, int n) {
    for (int i = 0; i < n / 8; i++)
        for (int k = 0; k < 8; k++) out[8 * i + k] = (unsigned char)(st[i] >> (8 * k));
}

static void keccak256(const unsigned char *in, size_t len, unsigned char out[32]) {
    uint64_t st[25];
    keccak_absorb(st, in, len, 0x01);
    keccak_lanes_out(st, out, 32);
}

static PyObject *keccak256_function = NULL; /* this module's keccak256: merkle_root hashes natively for it */

static PyObject *py_keccak256(PyObject *self, PyObject *arg) {
    (void)self;
    unsigned char out[32];
    if (PyBytes_CheckExact(arg)) {
        keccak256((const unsigned char *)PyBytes_AS_STRING(arg), (size_t)PyBytes_GET_SIZE(arg), out);
    } else {
        Py_buffer view;
        if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
        keccak256((const unsigned char *)view.buf, (size_t)view.len, out);
        PyBuffer_Release(&view);
    }
    return PyBytes_FromStringAndSize((const char *)out, 32);
}

static int compare_nodes(const void *a, const void *b) { return memcmp(a, b, 32); }

/* merkle_tree(leaves): the OZ StandardMerkleTree array (verifier/_internal/merkle.py's
 * tree_of_leaves, joined) over the 32-byte leaves concatenated in `leaves`: sorted ascending, laid
 * from the end of the array backwards, each internal node keccak256(lower ‖ higher) of its children. */
static PyObject *merkle_tree(PyObject *self, PyObject *arg) {
    (void)self;
    if (!PyBytes_CheckExact(arg)) {
        PyErr_SetString(PyExc_TypeError, "merkle_tree: the leaves are bytes");
        return NULL;
    }
    if (PyBytes_GET_SIZE(arg) == 0 || PyBytes_GET_SIZE(arg) % 32) {
        PyErr_SetString(PyExc_ValueError, "merkle_tree: the leaves are a non-empty multiple of 32 bytes");
        return NULL;
    }
    Py_ssize_t n = PyBytes_GET_SIZE(arg) / 32;
    if (n > (PY_SSIZE_T_MAX / 64)) return PyErr_NoMemory();
    PyObject *tree = PyBytes_FromStringAndSize(NULL, (2 * n - 1) * 32);
    if (tree == NULL) return NULL;
    unsigned char *t = (unsigned char *)PyBytes_AS_STRING(tree);
    unsigned char *leaves = t + (n - 1) * 32; /* the last n nodes: sorted, then reversed */
    memcpy(leaves, PyBytes_AS_STRING(arg), (size_t)n * 32);
    /* From here on only the new tree, which nothing else sees yet: other threads run meanwhile (the
     * service's event loop keeps serving while the pipeline's thread builds a batch's tree: 10,000
     * leaves take ~6 ms) */
    Py_BEGIN_ALLOW_THREADS
    qsort(leaves, (size_t)n, 32, compare_nodes);
    for (Py_ssize_t i = 0, j = n - 1; i < j; i++, j--) {
        unsigned char tmp[32];
        memcpy(tmp, leaves + 32 * i, 32);
        memcpy(leaves + 32 * i, leaves + 32 * j, 32);
        memcpy(leaves + 32 * j, tmp, 32);
    }
    unsigned char pair[64];
    for (Py_ssize_t i = n - 2; i >= 0; i--) {
        const unsigned char *a = t + 32 * (2 * i + 1), *b = t + 32 * (2 * i + 2);
        int lower = memcmp(a, b, 32) < 0;
        memcpy(pair, lower ? a : b, 32);
        memcpy(pair + 32, lower ? b : a, 32);
        keccak256(pair, 64, t + 32 * i);
    }
    Py_END_ALLOW_THREADS
    return tree;
}

/* ---- the Merkle path: the plain case of Verifier._integrity's loop -----------------------------
 * merkle_root(leaf, path, nodes, keccak, limit): from leaf up the path, each parent
 * keccak(lower ‖ higher) of the node and its sibling (OZ Hashes.commutativeKeccak256), looked up in
 * the cache `nodes` (pair → parent) first and stored there after (cleared first when it holds more
 * than `limit`), as the Python loop does. None unless leaf and every sibling are 32-byte bytes in a
 * tuple and keccak gives 32-byte bytes (the Python loop, the reference, then runs). */
static PyObject *merkle_root(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 5 || !PyDict_CheckExact(args[2]) || !PyLong_CheckExact(args[4])) {
        PyErr_SetString(PyExc_TypeError, "merkle_root(leaf, path, nodes: dict, keccak, limit: int)");
        return NULL;
    }
    PyObject *node = args[0], *path = args[1], *nodes = args[2], *keccak = args[3];
    Py_ssize_t limit = PyLong_AsSsize_t(args[4]);
    if (limit == -1 && PyErr_Occurred()) return NULL;
    if (!PyBytes_CheckExact(node) || PyBytes_GET_SIZE(node) != 32 || !PyTuple_CheckExact(path))
        Py_RETURN_NONE;
    Py_INCREF(node);
    Py_ssize_t n = PyTuple_GET_SIZE(path);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *sibling = PyTuple_GET_ITEM(path, i);
        if (!PyBytes_CheckExact(sibling) || PyBytes_GET_SIZE(sibling) != 32) {
            Py_DECREF(node);
            Py_RETURN_NONE;
        }
        const char *a = PyBytes_AS_STRING(node), *b = PyBytes_AS_STRING(sibling);
        int lower = memcmp(a, b, 32) < 0;
        PyObject *pair = PyBytes_FromStringAndSize(NULL, 64);
        if (pair == NULL) {
            Py_DECREF(node);
            return NULL;
        }
        memcpy(PyBytes_AS_STRING(pair), lower ? a : b, 32);
        memcpy(PyBytes_AS_STRING(pair) + 32, lower ? b : a, 32);
        PyObject *parent = PyDict_GetItemWithError(nodes, pair); /* borrowed */
        if (parent != NULL) { /* a cached parent could be anything a caller stored there */
            if (!PyBytes_CheckExact(parent) || PyBytes_GET_SIZE(parent) != 32) {
                Py_DECREF(pair);
                Py_DECREF(node);
                Py_RETURN_NONE;
            }
            Py_INCREF(parent);
        } else if (PyErr_Occurred()) {
            Py_DECREF(pair);
            Py_DECREF(node);
            return NULL;
        } else {
            if (PyDict_GET_SIZE(nodes) > limit) PyDict_Clear(nodes);
            if (keccak == keccak256_function) {
                parent = PyBytes_FromStringAndSize(NULL, 32);
                if (parent != NULL)
                    keccak256((const unsigned char *)PyBytes_AS_STRING(pair), 64,
                              (unsigned char *)PyBytes_AS_STRING(parent));
            } else {
                parent = PyObject_CallOneArg(keccak, pair);
            }
            if (parent == NULL || !PyBytes_CheckExact(parent) || PyBytes_GET_SIZE(parent) != 32 ||
                PyDict_SetItem(nodes, pair, parent) < 0) {
                int failed = parent == NULL || PyErr_Occurred() != NULL;
                Py_XDECREF(parent);
                Py_DECREF(pair);
                Py_DECREF(node);
                if (failed) return NULL;
                Py_RETURN_NONE;
            }
        }
        Py_DECREF(pair);
        Py_DECREF(node);
        node = parent;
    }
    return node;
}

static PyObject *py_sha256(PyObject *self, PyObject *arg) {
    (void)self;
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
#ifdef HAVE_SHA_NI_CODE
    if (native_sha256) {
        unsigned char out[32];
        sha256((const unsigned char *)view.buf, (size_t)view.len, out);
        PyBuffer_Release(&view);
        return PyBytes_FromStringAndSize((const char *)out, 32);
    }
#endif
    PyBuffer_Release(&view);
    Py_RETURN_NONE;
}

/* sha256_many(messages) -> list[bytes] | None: the SHA-256 of each, by sha256_lanes, as target_hash
 * hashes a credential's leaves. For the tests. */
static PyObject *py_sha256_many(PyObject *self, PyObject *messages) {
    (void)self;
    if (!PyList_CheckExact(messages)) {
        PyErr_SetString(PyExc_TypeError, "sha256_many(messages) takes a list of bytes");
        return NULL;
    }
    Py_ssize_t count = PyList_GET_SIZE(messages);
    for (Py_ssize_t i = 0; i < count; i++)
        if (!PyBytes_Check(PyList_GET_ITEM(messages, i))) {
            PyErr_SetString(PyExc_TypeError, "sha256_many(messages) takes a list of bytes");
            return NULL;
        }
#ifdef HAVE_SHA_NI_CODE
    if (native_sha256) {
        Buf padded = {0};
        Py_ssize_t *starts = PyMem_Malloc((size_t)(count ? count : 1) * sizeof(Py_ssize_t));
        unsigned char *digests = PyMem_Malloc((size_t)(count ? count : 1) * 32);
        PyObject *out = NULL;
        if (starts == NULL || digests == NULL) {
            PyErr_NoMemory();
            goto done;
        }
        for (Py_ssize_t i = 0; i < count; i++) {
            PyObject *m = PyList_GET_ITEM(messages, i);
            starts[i] = padded.len;
            if (sha256_pad_into(&padded, (const unsigned char *)PyBytes_AS_STRING(m), (size_t)PyBytes_GET_SIZE(m)) < 0)
                goto done;
        }
        sha256_lanes((const unsigned char *)padded.data, starts, count, padded.len, digests);
        out = PyList_New(count);
        for (Py_ssize_t i = 0; out != NULL && i < count; i++) {
            PyObject *d = PyBytes_FromStringAndSize((const char *)digests + 32 * i, 32);
            if (d == NULL) Py_CLEAR(out);
            else PyList_SET_ITEM(out, i, d);
        }
    done:
        PyMem_Free(padded.data);
        PyMem_Free(starts);
        PyMem_Free(digests);
        return out;
    }
#endif
    Py_RETURN_NONE;
}

/* licence_key(identifier) -> int | None
 *
 * verifier.licence_id's key of an e-licence's national identifier: the first 8 bytes of the
 * SHA-256 of its UTF-8, as a signed big-endian 64-bit integer (the reference:
 * verifier.licence_id.reference_licence_key). None where this build has no SHA-256 of its own;
 * text that is not UTF-8 (a lone surrogate) raises UnicodeEncodeError, as str.encode does. */
static PyObject *py_licence_key(PyObject *self, PyObject *arg) {
    (void)self;
    if (!PyUnicode_Check(arg)) {
        PyErr_Format(PyExc_TypeError, "a licence identifier is text, not %.100s", Py_TYPE(arg)->tp_name);
        return NULL;
    }
#ifdef HAVE_SHA_NI_CODE
    if (native_sha256) {
        Py_ssize_t n;
        const char *text = PyUnicode_AsUTF8AndSize(arg, &n);
        if (text == NULL) return NULL;
        unsigned char out[32];
        sha256((const unsigned char *)text, (size_t)n, out);
        uint64_t v = 0;
        for (int i = 0; i < 8; i++) v = (v << 8) | out[i];
        int64_t key;
        memcpy(&key, &v, sizeof key); /* the same bits, read as two's complement */
        return PyLong_FromLongLong((long long)key);
    }
#endif
    Py_RETURN_NONE;
}

/* subject_leaf(key_block, label, identifier, target_hash) -> (subjectHash, leaf) | None
 *
 * An enterprise holder's subject half and its credential's Merkle leaf, as verifier/_holder.py's
 * subject_hash_and_leaf computes them by reference (FORMAT.md §1):
 *     subjectSalt = HMAC-SHA256(key, label ‖ utf8(identifier))       key_block: the key as RFC 2104's
 *     subjectHash = keccak256(subjectSalt ‖ utf8(identifier))        64-byte block (hashed if longer,
 *     leaf        = keccak256(keccak256(targetHash ‖ subjectHash))   zero-padded)
 * None where this build has no SHA-256 of its own, for arguments of another type or size, or an
 * identifier that is not UTF-8 (a lone surrogate): the reference then decides. */
#define SUBJECT_TEXT_MAX 512
static PyObject *subject_leaf(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "subject_leaf(key_block, label, identifier, target_hash)");
        return NULL;
    }
#ifdef HAVE_SHA_NI_CODE
    PyObject *block = args[0], *label = args[1], *identifier = args[2], *target = args[3];
    if (!native_sha256 || !PyBytes_CheckExact(block) || PyBytes_GET_SIZE(block) != 64 ||
        !PyBytes_CheckExact(label) || !PyUnicode_CheckExact(identifier) || !PyBytes_CheckExact(target) ||
        PyBytes_GET_SIZE(target) != 32)
        Py_RETURN_NONE;
    Py_ssize_t n;
    const char *text = PyUnicode_AsUTF8AndSize(identifier, &n);
    if (text == NULL) { /* a lone surrogate: the reference's encode names it */
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    Py_ssize_t label_n = PyBytes_GET_SIZE(label);
    if (label_n > SUBJECT_TEXT_MAX || n > SUBJECT_TEXT_MAX) Py_RETURN_NONE;
    const unsigned char *key = (const unsigned char *)PyBytes_AS_STRING(block);
    unsigned char buf[64 + 2 * SUBJECT_TEXT_MAX], inner[32], salt[32], out[64], twice[32];
    for (int i = 0; i < 64; i++) buf[i] = key[i] ^ 0x36;
    memcpy(buf + 64, PyBytes_AS_STRING(label), (size_t)label_n);
    memcpy(buf + 64 + label_n, text, (size_t)n);
    sha256(buf, (size_t)(64 + label_n + n), inner);
    for (int i = 0; i < 64; i++) buf[i] = key[i] ^ 0x5c;
    memcpy(buf + 64, inner, 32);
    sha256(buf, 96, salt);
    memcpy(buf, salt, 32);
    memcpy(buf + 32, text, (size_t)n);
    memcpy(out, PyBytes_AS_STRING(target), 32);
    keccak256(buf, (size_t)(32 + n), out + 32); /* subjectHash, after targetHash */
    keccak256(out, 64, twice);
    keccak256(twice, 32, buf);
    return Py_BuildValue("(y#y#)", out + 32, (Py_ssize_t)32, buf, (Py_ssize_t)32);
#else
    (void)args;
    Py_RETURN_NONE;
#endif
}

static PyObject *py_shake256(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    Py_buffer view;
    if (nargs != 2 || !PyLong_CheckExact(args[1])) {
        PyErr_SetString(PyExc_TypeError, "shake256(data, n)");
        return NULL;
    }
    Py_ssize_t n = PyLong_AsSsize_t(args[1]);
    if (n < 0) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "shake256: n is not negative");
        return NULL;
    }
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) return NULL;
    PyObject *out = PyBytes_FromStringAndSize(NULL, n);
    if (out != NULL) {
        Shake x;
        shake256_begin(&x, (const unsigned char *)view.buf, (size_t)view.len);
        shake256_read(&x, (unsigned char *)PyBytes_AS_STRING(out), (size_t)n);
    }
    PyBuffer_Release(&view);
    return out;
}

/* -- the national codes (verifier/uscc.py and verifier/licence_id.py are the references) ----------- */

/* One more than a character's value in the unified social credit code's alphabet
 * 0-9 A-H J-N P Q R T U W X Y (GB 32100-2015), 0 for any other byte. */
static const unsigned char USCC1[256] = {
    ['0'] = 1,  ['1'] = 2,  ['2'] = 3,  ['3'] = 4,  ['4'] = 5,  ['5'] = 6,  ['6'] = 7,  ['7'] = 8,
    ['8'] = 9,  ['9'] = 10, ['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16,
    ['G'] = 17, ['H'] = 18, ['J'] = 19, ['K'] = 20, ['L'] = 21, ['M'] = 22, ['N'] = 23, ['P'] = 24,
    ['Q'] = 25, ['R'] = 26, ['T'] = 27, ['U'] = 28, ['W'] = 29, ['X'] = 30, ['Y'] = 31};

/* Whether the n bytes at s are a unified social credit code with a right check character:
 * C18 = 31 − (Σ value(C_i)·3^(i−1) mod 31), 31 written as 0. */
static int uscc_ok(const unsigned char *s, Py_ssize_t n) {
    static const unsigned W[17] = {1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28};
    if (n != 18) return 0;
    unsigned total = 0, bad = 0;
    for (int i = 0; i < 17; i++) {
        unsigned v = USCC1[s[i]];
        bad |= v == 0;
        total += (v - 1) * W[i];
    }
    unsigned last = USCC1[s[17]];
    return !bad && last != 0 && last - 1 == (31 - total % 31) % 31;
}

static PyObject *uscc_valid(PyObject *self, PyObject *code) {
    (void)self;
    if (!PyUnicode_CheckExact(code) || !PyUnicode_IS_ASCII(code)) Py_RETURN_FALSE;
    return PyBool_FromLong(uscc_ok(PyUnicode_1BYTE_DATA(code), PyUnicode_GET_LENGTH(code)));
}

/* Whether text is a 证照标识 of the form 1.2.156.3005.2.<type 1–40>.<issuer 1–40>.<serial 1–64>.<3 digits>.<check>
 * (digits and capital letters), its issuing body a valid credit code and its check character right. */
static PyObject *licence_identifier_valid(PyObject *self, PyObject *text) {
    (void)self;
    static const char root[] = "1.2.156.3005.2.";
    static const Py_ssize_t most[5] = {40, 40, 64, 3, 1}, least[5] = {1, 1, 1, 3, 1};
    if (!PyUnicode_CheckExact(text) || !PyUnicode_IS_ASCII(text)) Py_RETURN_FALSE;
    const unsigned char *s = PyUnicode_1BYTE_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text), at = sizeof root - 1;
    if (n < at || memcmp(s, root, (size_t)at) != 0) Py_RETURN_FALSE;
    long p = 18;
    for (int part = 0; part < 5; part++) {
        Py_ssize_t start = at;
        for (; at < n && s[at] != '.'; at++) {
            unsigned char c = s[at];
            int digit = c >= '0' && c <= '9', letter = c >= 'A' && c <= 'Z';
            if (!(digit || (letter && part != 3))) Py_RETURN_FALSE;
            p = mod37_36_step(p, c);
        }
        Py_ssize_t len = at - start;
        if (len < least[part] || len > most[part]) Py_RETURN_FALSE;
        if (part == 1 && !uscc_ok(s + start, len)) Py_RETURN_FALSE;
        if (part < 4) {
            if (at == n) Py_RETURN_FALSE;
            at++; /* the '.' */
        }
    }
    return PyBool_FromLong(at == n && p == 1);
}

static PyMethodDef methods[] = {
    {"keccak256", py_keccak256, METH_O,
     "keccak256(data) -> bytes: Ethereum's Keccak-256 of a bytes-like object, by this module's own\n"
     "code (verifier/_internal/keccak.py uses it when it gives the known digests)."},
    {"merkle_tree", merkle_tree, METH_O,
     "merkle_tree(leaves: bytes) -> bytes\n\n"
     "The OZ StandardMerkleTree array over the 32-byte leaves concatenated in leaves, 32 bytes a\n"
     "node (b''.join(verifier._internal.merkle.tree_of_leaves(...)), the reference)."},
    {"merkle_root", (PyCFunction)(void (*)(void))merkle_root, METH_FASTCALL,
     "merkle_root(leaf, path, nodes, keccak, limit) -> bytes | None\n\n"
     "The root a Merkle path leads to from leaf (OZ commutative keccak pairs), through the cache\n"
     "nodes (pair -> parent; cleared when it holds more than limit); None unless leaf and every\n"
     "sibling are 32-byte bytes in a tuple (verifier/_verify.py's loop, the reference, then runs)."},
    {"mod37_36_run", (PyCFunction)(void (*)(void))mod37_36_run, METH_FASTCALL,
     "mod37_36_run(p, text) -> int: ISO 7064 MOD 37,36's running value after text (-1: a character\n"
     "outside 0-9A-Z); verifier/licence_id.py's _run."},
    {"uscc_valid", uscc_valid, METH_O,
     "uscc_valid(code) -> bool: whether code is a str holding a unified social credit code with a\n"
     "right check character (verifier/uscc.py's reference_is_valid_uscc)."},
    {"licence_identifier_valid", licence_identifier_valid, METH_O,
     "licence_identifier_valid(text) -> bool: whether text is a str holding a well-formed 证照标识\n"
     "naming a valid credit code, with a right check character (verifier/licence_id.py's\n"
     "reference_is_valid_licence_identifier)."},
    {"keys_unique", keys_unique, METH_O,
     "keys_unique(data: bytes) -> bool\n\n"
     "True only if every JSON object in data has distinct member names, none written with an escape,\n"
     "and no number has more than 18 digits in a row (False: the reference parser decides)."},
    {"parse_proof", (PyCFunction)(void (*)(void))parse_proof, METH_FASTCALL,
     "parse_proof(proof, ParsedProof, proof_type) -> ParsedProof | None\n\n"
     "verifier._proof.parse_proof for a well-formed proof with nothing redacted; None for anything\n"
     "else (the Python function, the reference, then decides)."},
    {"subject_leaf", (PyCFunction)(void (*)(void))subject_leaf, METH_FASTCALL,
     "subject_leaf(key_block, label, identifier, target_hash) -> (bytes, bytes) | None\n\n"
     "An enterprise holder's subjectHash (its subjectSalt HMAC-SHA256(key, label + identifier)) and\n"
     "the credential's Merkle leaf; None where this build has no SHA-256 of its own or for arguments\n"
     "it does not take (verifier/_holder.py's subject_hash_and_leaf, the reference, then decides)."},
    {"shake256", (PyCFunction)(void (*)(void))py_shake256, METH_FASTCALL,
     "shake256(data, n) -> bytes: the first n bytes of SHAKE256(data), by this module's own code\n"
     "(the stream target_hash draws seeded salts from). For the tests, which hold it to hashlib."},
    {"licence_key", py_licence_key, METH_O,
     "licence_key(identifier) -> int | None: the first 8 bytes of SHA-256(utf8(identifier)) as a\n"
     "signed big-endian int64 (verifier.licence_id.reference_licence_key); None where this\n"
     "build has no SHA-256 of its own."},
    {"sha256_many", py_sha256_many, METH_O,
     "sha256_many(messages) -> list[bytes] | None: SHA-256 of each, two lanes side by side, by this\n"
     "module's own code (as target_hash hashes leaves; None where it has none). For the tests."},
    {"sha256", py_sha256, METH_O,
     "sha256(data) -> bytes | None: SHA-256 by this module's own code (None where it has none).\n"
     "For the tests, which hold it to hashlib."},
    {"target_hash", (PyCFunction)(void (*)(void))target_hash, METH_FASTCALL,
     "target_hash(h, salts, envelope_jcs, subject) -> bytes | None\n\n"
     "targetHash (FORMAT.md §3.3) of a credential whose envelope leaf's canonical bytes are\n"
     "envelope_jcs (or, given the document itself, of its members other than proof and\n"
     "credentialSubject, written here) and whose credentialSubject is subject; salts: path → hex,\n"
     "or bytes, the input of the SHAKE256 stream of the issuer's seeded salts (§3.2: its label and\n"
     "seed), read 32 bytes a leaf in leaf order. Nothing redacted. None: not a case this computes\n"
     "(the pure-Python path, the reference, then decides)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "verifier._internal._leaves",
    "The leaf walk of FORMAT.md §3 in C (an accelerator; disclosure.py is the reference).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__leaves(void) {
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    mod37_36_table();
    PyObject *hashlib = PyImport_ImportModule("hashlib");
    if (hashlib == NULL) goto fail;
    hashlib_sha256 = PyObject_GetAttrString(hashlib, "sha256");
    static const char *names[] = {"type", "suite", "salts", "redactedDigests", "targetHash", "subjectHash",
                                  "subjectSalt", "merkleRoot", "merkleProof", "credentialType", "batchCount",
                                  "issuerId", "keyVersion", "signature", "anchor", "anchorProof",
                                  "proofPackage", "chainId", "anchorRegistry", "txHash", "blockNumber",
                                  "secp256k1", "sm2-sm3"};
    PyObject **slots[] = {&S_type, &S_suite, &S_salts, &S_redacted, &S_target, &S_subject,
                          &S_subject_salt, &S_root, &S_path, &S_ctype, &S_count, &S_issuer,
                          &S_key_version, &S_signature, &S_anchor, &S_anchor_proof, &S_package, &S_chain,
                          &S_registry, &S_tx, &S_block, &S_secp, &S_sm2};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        *slots[i] = PyUnicode_InternFromString(names[i]);
        if (*slots[i] == NULL) goto fail;
    }
    Py_DECREF(hashlib);
    if (hashlib_sha256 == NULL) goto fail;
#ifdef HAVE_SHA_NI_CODE
    if (cpu_has_sha_ni()) { /* self-test: two lengths that pad into one and into two blocks */
        static const unsigned char abc[] = "abc";
        static const unsigned char abc_digest[32] = {
            0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
            0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
        static const unsigned char two[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
        static const unsigned char two_digest[32] = {
            0x24, 0x8d, 0x6a, 0x61, 0xd2, 0x06, 0x38, 0xb8, 0xe5, 0xc0, 0x26, 0x93, 0x0c, 0x3e, 0x60, 0x39,
            0xa3, 0x3c, 0xe4, 0x59, 0x64, 0xff, 0x21, 0x67, 0xf6, 0xec, 0xed, 0xd4, 0x19, 0xdb, 0x06, 0xc1};
        unsigned char out1[32], out2[32], lanes[64], padded[192];
        sha256(abc, 3, out1);
        sha256(two, sizeof two - 1, out2);
        /* the lanes: two blocks beside one, then the rest of the first alone */
        Py_ssize_t starts[2] = {0, 64 * (Py_ssize_t)sha256_tail(two, sizeof two - 1, padded)};
        Py_ssize_t end = starts[1] + 64 * (Py_ssize_t)sha256_tail(abc, 3, padded + starts[1]);
        sha256_lanes(padded, starts, 2, end, lanes);
        native_sha256 = memcmp(out1, abc_digest, 32) == 0 && memcmp(out2, two_digest, 32) == 0 &&
                        memcmp(lanes, two_digest, 32) == 0 && memcmp(lanes + 32, abc_digest, 32) == 0;
    }
#endif
    if (PyModule_AddIntConstant(m, "native_sha256", native_sha256) < 0) goto fail;
    keccak256_function = PyObject_GetAttrString(m, "keccak256");
    if (keccak256_function == NULL) goto fail;
    return m;
fail:
    Py_DECREF(m);
    return NULL;
}
