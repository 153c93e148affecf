/*
 * Pooling one text: the per-element segment sum in token order, then the reference family's finish.
 *
 * The arithmetic is exactly that of staticst.pooling (the numpy oracle), operation by operation:
 *   - sums start at +0.0 and add rows (converted to the accumulator, times the token's weight) in token
 *     order; the accumulator is float32 for float32 / float16 tables (and float32 weights), float64 for
 *     int8 tables without weights and whenever a float64 operand is involved;
 *   - model2vec: mean = sum / count in float32 when that equals numpy's float64 division rounded (float32
 *     accumulator, count < 2**24), else the float64 quotient rounded; stored in the table's dtype (float16
 *     tables: rounded to float16); normalise x / (||x|| + 1e-32) in float32;
 *   - sentence-transformers: mean = sum / count in the accumulator; x / max(||x||, 1e-12);
 *   - ||x|| is sqrt of numpy's pairwise sum of the float32 squares (8 accumulators, blocks of 128).
 * Element order never depends on vector width, so results are the same on every CPU.
 */
#include "kernel.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__) && !defined(ST_NO_CLONES)
#define ST_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#define ST_X86_DISPATCH 1
#else
#define ST_CLONES
#define ST_X86_DISPATCH 0
#endif

/* Eight floats as one GCC vector: element-wise operations, the same IEEE result per lane as scalar code. */
typedef float st_v8 __attribute__((vector_size(32)));

float st_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            exp = 127 - 15 + 1;
            while (!(man & 0x400u)) {
                man <<= 1;
                exp--;
            }
            man &= 0x3ffu;
            bits = sign | (exp << 23) | (man << 13);
        }
    } else if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t st_f32_to_f16(float value) {
    /* IEEE round to nearest, ties to even (what numpy's astype(float16) does) */
    uint32_t f;
    memcpy(&f, &value, 4);
    uint16_t sign = (uint16_t)((f >> 16) & 0x8000u);
    int32_t e = (int32_t)((f >> 23) & 0xffu) - 127;
    uint32_t man = f & 0x007fffffu;
    if (e == 128) /* Inf or NaN (a NaN stays a NaN) */
        return (uint16_t)(sign | 0x7c00u | (man ? (0x200u | (man >> 13)) : 0u));
    if (e >= 16) return (uint16_t)(sign | 0x7c00u); /* overflow */
    if (e >= -14) {                                  /* a normal half (a carry may round it up to Inf) */
        uint32_t m = man >> 13, rest = man & 0x1fffu;
        if (rest > 0x1000u || (rest == 0x1000u && (m & 1u))) m++;
        return (uint16_t)(sign + ((uint32_t)(e + 15) << 10) + m);
    }
    uint32_t shift = (uint32_t)(13 + (-14 - e)); /* a subnormal half, or zero */
    if (shift >= 32) return sign;
    uint32_t full = man | 0x00800000u;
    uint32_t m = full >> shift, rest = full & ((1u << shift) - 1u), half = 1u << (shift - 1);
    if (rest > half || (rest == half && (m & 1u))) m++;
    return (uint16_t)(sign + m);
}

static inline float round_f16(float x) { return st_f16_to_f32(st_f32_to_f16(x)); }

static float f16_table[65536]; /* every half as a float (exact), filled once by st_pool_init */

#if ST_X86_DISPATCH
static int use_f16c;
#endif

void st_pool_init(void) {
    for (uint32_t h = 0; h < 65536u; h++) f16_table[h] = st_f16_to_f32((uint16_t)h);
#if ST_X86_DISPATCH
    __builtin_cpu_init();
    use_f16c = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c") && !getenv("STATICST_KERNEL_NO_SIMD");
#endif
}

float st_pairwise_f32(const float *a, Py_ssize_t n) {
    if (n < 8) {
        float res = 0.0f;
        for (Py_ssize_t i = 0; i < n; i++) res += a[i];
        return res;
    }
    if (n <= 128) { /* numpy's 8 accumulators: lane j sums a[j], a[j + 8], ... in order (one vector add per 8) */
        st_v8 r;
        memcpy(&r, a, sizeof r);
        Py_ssize_t i;
        for (i = 8; i < n - (n % 8); i += 8) {
            st_v8 v;
            memcpy(&v, a + i, sizeof v);
            r += v;
        }
        float res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) res += a[i];
        return res;
    }
    Py_ssize_t n2 = n / 2;
    n2 -= n2 % 8;
    return st_pairwise_f32(a, n2) + st_pairwise_f32(a + n2, n - n2);
}

/* st_pairwise_f32 of the squares x[i] * x[i], without writing them out: the same products, added in the same
 * order (numpy's np.sum(x * x) on a float32 row). */
static float pairwise_sq_f32(const float *x, Py_ssize_t n) {
    if (n < 8) {
        float res = 0.0f;
        for (Py_ssize_t i = 0; i < n; i++) res += x[i] * x[i];
        return res;
    }
    if (n <= 128) {
        st_v8 r;
        memcpy(&r, x, sizeof r);
        r = r * r;
        Py_ssize_t i;
        for (i = 8; i < n - (n % 8); i += 8) {
            st_v8 v;
            memcpy(&v, x + i, sizeof v);
            v = v * v;
            r += v;
        }
        float res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) res += x[i] * x[i];
        return res;
    }
    Py_ssize_t n2 = n / 2;
    n2 -= n2 % 8;
    return pairwise_sq_f32(x, n2) + pairwise_sq_f32(x + n2, n - n2);
}

/* ------------------------------------------------------------------ segment sums */

ST_CLONES static void add_f32(float *restrict acc, const float *restrict row, Py_ssize_t dim) {
    for (Py_ssize_t d = 0; d < dim; d++) acc[d] += row[d];
}

ST_CLONES static void add_f32_w(float *restrict acc, const float *restrict row, float w, Py_ssize_t dim) {
    for (Py_ssize_t d = 0; d < dim; d++) acc[d] += row[d] * w;
}

ST_CLONES static void add_i8_f32w(float *restrict acc, const int8_t *restrict row, float w, Py_ssize_t dim) {
    for (Py_ssize_t d = 0; d < dim; d++) acc[d] += (float)row[d] * w;
}

ST_CLONES static void add_i8_f64(double *restrict acc, const int8_t *restrict row, Py_ssize_t dim) {
    for (Py_ssize_t d = 0; d < dim; d++) acc[d] += (double)row[d];
}

static void add_f16_lut(float *restrict acc, const uint16_t *restrict row, Py_ssize_t dim, int has_w, float w) {
    if (has_w)
        for (Py_ssize_t d = 0; d < dim; d++) acc[d] += f16_table[row[d]] * w;
    else
        for (Py_ssize_t d = 0; d < dim; d++) acc[d] += f16_table[row[d]];
}

#if ST_X86_DISPATCH
#include <immintrin.h>
/* float16 -> float32 by F16C, 8 at a time: exact, so the same sums as the table lookup above */
__attribute__((target("avx2,f16c"))) static void add_f16_f16c(float *restrict acc, const uint16_t *restrict row,
                                                               Py_ssize_t dim, int has_w, float w) {
    Py_ssize_t d = 0;
    __m256 vw = _mm256_set1_ps(w);
    for (; d + 8 <= dim; d += 8) {
        __m256 x = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(row + d)));
        if (has_w) x = _mm256_mul_ps(x, vw);
        _mm256_storeu_ps(acc + d, _mm256_add_ps(_mm256_loadu_ps(acc + d), x));
    }
    for (; d < dim; d++) acc[d] += has_w ? f16_table[row[d]] * w : f16_table[row[d]];
}
#endif

#if ST_X86_DISPATCH
/* x -> float16 (round to nearest even) -> float32, 8 at a time */
__attribute__((target("avx2,f16c"))) static void round_f16_f16c(float *x, Py_ssize_t dim) {
    Py_ssize_t d = 0;
    for (; d + 8 <= dim; d += 8)
        _mm256_storeu_ps(x + d, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(x + d), _MM_FROUND_TO_NEAREST_INT)));
    for (; d < dim; d++) x[d] = round_f16(x[d]);
}
#endif

void st_round_f16_row(float *x, Py_ssize_t dim) {
#if ST_X86_DISPATCH
    if (use_f16c) {
        round_f16_f16c(x, dim);
        return;
    }
#endif
    for (Py_ssize_t d = 0; d < dim; d++) x[d] = round_f16(x[d]);
}

static void add_f16_f32(float *restrict acc, const uint16_t *restrict row, Py_ssize_t dim, int has_w, float w) {
#if ST_X86_DISPATCH
    if (use_f16c) {
        add_f16_f16c(acc, row, dim, has_w, w);
        return;
    }
#endif
    add_f16_lut(acc, row, dim, has_w, w);
}

static double row_weight(const st_pool *p, int32_t id) {
    return p->weights_dtype == ST_F64 ? ((const double *)p->weights)[id] : (double)((const float *)p->weights)[id];
}

/* The common case (float32 table, no weights), 64 dimensions at a time: the running sums of a block stay in
 * registers over all the text's tokens. Each element is still 0 + row_0 + row_1 + ... in token order. */
#define ST_BLOCK 64

static inline st_v8 load8(const float *p) {
    st_v8 v;
    memcpy(&v, p, sizeof v); /* unaligned load */
    return v;
}

/* resume: the sums go on from acc (a long text is summed in segments); else they start at +0.0 */
ST_CLONES static void sums_f32_blocked(float *restrict acc, const float *restrict table, const int32_t *restrict ids,
                                       const int64_t *restrict mapping, Py_ssize_t n, Py_ssize_t dim, int resume) {
    Py_ssize_t d0 = 0;
    for (; d0 + ST_BLOCK <= dim; d0 += ST_BLOCK) {
        st_v8 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, a4 = {0}, a5 = {0}, a6 = {0}, a7 = {0};
        if (resume) {
            a0 = load8(acc + d0);
            a1 = load8(acc + d0 + 8);
            a2 = load8(acc + d0 + 16);
            a3 = load8(acc + d0 + 24);
            a4 = load8(acc + d0 + 32);
            a5 = load8(acc + d0 + 40);
            a6 = load8(acc + d0 + 48);
            a7 = load8(acc + d0 + 56);
        }
        for (Py_ssize_t t = 0; t < n; t++) {
            int64_t row = mapping ? mapping[ids[t]] : ids[t];
            const float *r = table + (size_t)row * (size_t)dim + d0;
            a0 += load8(r);
            a1 += load8(r + 8);
            a2 += load8(r + 16);
            a3 += load8(r + 24);
            a4 += load8(r + 32);
            a5 += load8(r + 40);
            a6 += load8(r + 48);
            a7 += load8(r + 56);
        }
        memcpy(acc + d0, &a0, 32);
        memcpy(acc + d0 + 8, &a1, 32);
        memcpy(acc + d0 + 16, &a2, 32);
        memcpy(acc + d0 + 24, &a3, 32);
        memcpy(acc + d0 + 32, &a4, 32);
        memcpy(acc + d0 + 40, &a5, 32);
        memcpy(acc + d0 + 48, &a6, 32);
        memcpy(acc + d0 + 56, &a7, 32);
    }
    if (d0 < dim) {
        if (!resume)
            for (Py_ssize_t d = d0; d < dim; d++) acc[d] = 0.0f;
        for (Py_ssize_t t = 0; t < n; t++) {
            int64_t row = mapping ? mapping[ids[t]] : ids[t];
            const float *restrict r = table + (size_t)row * (size_t)dim;
            for (Py_ssize_t d = d0; d < dim; d++) acc[d] += r[d];
        }
    }
}

static void sums_f32(const st_pool *p, const int32_t *ids, Py_ssize_t n, float *acc, int resume) {
    Py_ssize_t dim = p->dim;
    if (p->dtype == ST_F32 && !p->weights) {
        sums_f32_blocked(acc, (const float *)p->table, ids, p->mapping, n, dim, resume);
        return;
    }
    if (!resume) memset(acc, 0, (size_t)dim * sizeof(float));
    const int has_w = p->weights != NULL;
    for (Py_ssize_t t = 0; t < n; t++) {
        int32_t id = ids[t];
        int64_t row = p->mapping ? p->mapping[id] : id;
        float w = has_w ? ((const float *)p->weights)[id] : 1.0f; /* float32 weights: acc is float32 */
        switch (p->dtype) {
        case ST_F32: {
            const float *r = (const float *)p->table + (size_t)row * (size_t)dim;
            if (has_w)
                add_f32_w(acc, r, w, dim);
            else
                add_f32(acc, r, dim);
            break;
        }
        case ST_F16:
            add_f16_f32(acc, (const uint16_t *)p->table + (size_t)row * (size_t)dim, dim, has_w, w);
            break;
        case ST_I8: /* float32 accumulator only with float32 weights */
            add_i8_f32w(acc, (const int8_t *)p->table + (size_t)row * (size_t)dim, w, dim);
            break;
        }
    }
}

static void sums_f64(const st_pool *p, const int32_t *ids, Py_ssize_t n, double *acc, int resume) {
    Py_ssize_t dim = p->dim;
    if (!resume) memset(acc, 0, (size_t)dim * sizeof(double));
    const int has_w = p->weights != NULL;
    for (Py_ssize_t t = 0; t < n; t++) {
        int32_t id = ids[t];
        int64_t row = p->mapping ? p->mapping[id] : id;
        size_t base = (size_t)row * (size_t)dim;
        if (p->dtype == ST_I8 && !has_w) {
            add_i8_f64(acc, (const int8_t *)p->table + base, dim);
            continue;
        }
        double w = has_w ? row_weight(p, id) : 1.0;
        for (Py_ssize_t d = 0; d < dim; d++) {
            double x;
            switch (p->dtype) {
            case ST_F64: x = ((const double *)p->table)[base + d]; break;
            case ST_F32: x = (double)((const float *)p->table)[base + d]; break;
            case ST_F16: x = (double)f16_table[((const uint16_t *)p->table)[base + d]]; break;
            default: x = (double)((const int8_t *)p->table)[base + d]; break;
            }
            acc[d] += has_w ? x * w : x;
        }
    }
}

/* ------------------------------------------------------------------ finish */

/* The finish's element-wise steps, one loop each, compiled per CPU family (AVX-512, AVX2, baseline) like the
 * sums: a division or a product per element is the same IEEE operation in a vector lane as in scalar code
 * (no contraction: -ffp-contract=off), so the bytes never depend on the CPU. */
ST_CLONES static void div_f32(float *restrict out, const float *restrict in, float c, Py_ssize_t dim) {
    for (Py_ssize_t d = 0; d < dim; d++) out[d] = in[d] / c;
}

ST_CLONES static void div_f32_inplace(float *x, float c, Py_ssize_t dim) {
    for (Py_ssize_t d = 0; d < dim; d++) x[d] = x[d] / c;
}

/* 0, or 1 when the norm overflowed (the vector would silently become zeros) */
static int l2_normalize(float *x, Py_ssize_t dim, int arithmetic) {
    float norm = sqrtf(pairwise_sq_f32(x, dim));
    if (!isfinite(norm)) return 1;
    float div = arithmetic == ST_ARITH_MODEL2VEC ? norm + 1e-32f : (norm < 1e-12f ? 1e-12f : norm);
    div_f32_inplace(x, div, dim);
    return 0;
}

ST_CLONES static int all_finite(const float *x, Py_ssize_t dim) {
    uint32_t bad = 0; /* an exponent of all ones is Inf or NaN: integer operations, so the loop vectorizes */
    for (Py_ssize_t d = 0; d < dim; d++) {
        uint32_t bits;
        memcpy(&bits, x + d, 4);
        bad |= (bits & 0x7f800000u) == 0x7f800000u;
    }
    return !bad;
}

/* Ids summed between two looks for Ctrl-C (a few ms of work): the sums go on from where they stopped, so the
 * additions and their order are those of one pass. */
#define ST_POOL_SEGMENT ((Py_ssize_t)1 << 18)

int st_pool_text(const st_pool *p, const int32_t *ids, Py_ssize_t n, float *out, double *scratch) {
    return st_pool_text_poll(p, ids, n, out, scratch, NULL);
}

int st_pool_text_poll(const st_pool *p, const int32_t *ids, Py_ssize_t n, float *out, double *scratch, st_interrupt *it) {
    Py_ssize_t dim = p->dim;
    double denom = (double)n;
    if (p->weight_sum && p->weights) {
        denom = 0.0;
        for (Py_ssize_t t = 0; t < n; t++) denom += row_weight(p, ids[t]);
    }
    double safe = denom == 0.0 ? 1.0 : denom;
    const int f16_out = p->arithmetic == ST_ARITH_MODEL2VEC && p->dtype == ST_F16; /* model2vec stores float16 means */
    if (!p->acc64) {
        float *acc = (float *)scratch;
        for (Py_ssize_t t = 0; t < n || t == 0; t += ST_POOL_SEGMENT) {
            if (t && it && st_interrupt_poll(it)) return 2;
            sums_f32(p, ids + t, n - t < ST_POOL_SEGMENT ? n - t : ST_POOL_SEGMENT, acc, t > 0);
        }
        if (p->arithmetic == ST_ARITH_MODEL2VEC) {
            if (!p->weight_sum && safe < 16777216.0) {
                div_f32(out, acc, (float)safe, dim);
            } else {
                for (Py_ssize_t d = 0; d < dim; d++) out[d] = (float)((double)acc[d] / safe);
            }
        } else {
            div_f32(out, acc, (float)safe, dim);
        }
    } else {
        double *acc = scratch;
        for (Py_ssize_t t = 0; t < n || t == 0; t += ST_POOL_SEGMENT) {
            if (t && it && st_interrupt_poll(it)) return 2;
            sums_f64(p, ids + t, n - t < ST_POOL_SEGMENT ? n - t : ST_POOL_SEGMENT, acc, t > 0);
        }
        for (Py_ssize_t d = 0; d < dim; d++) out[d] = (float)(acc[d] / safe);
    }
    if (f16_out) st_round_f16_row(out, dim);
    if (p->normalize) {
        /* an Inf or NaN element makes the sum of squares, so the norm, Inf or NaN: l2_normalize's check is
         * all_finite's too, and the row is read once less */
        if (l2_normalize(out, dim, p->arithmetic)) return 1;
        if (f16_out) st_round_f16_row(out, dim);
        return 0;
    }
    return all_finite(out, dim) ? 0 : 1;
}
