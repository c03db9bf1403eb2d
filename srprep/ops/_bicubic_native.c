/*
 * Compiled kernel for srprep.ops.imresize: MATLAB-exact bicubic downscaling by an integer factor, both
 * conventions, both 1-D passes fused per output row. Two entry points:
 *   resize_u8  - uint8 images, dyadic weights (x2, x4): exact integer arithmetic (below);
 *   resize_seq - everything else with one weight row at a constant stride (x3; float input at any integer
 *                factor): MATLAB's own double arithmetic, taps in order, no FMA (further down).
 *
 * resize_u8, why it is exact: the caller passes the weight rows multiplied by 2**e (integers, see AxisPlan.dyadic_exp)
 * and has checked that every product and partial sum of the rows pass (and of the columns pass of the
 * uint8 convention) is an integer below 2**24, so float32 arithmetic is exact in any order (vector lanes,
 * FMA or not). The columns pass of the im2double convention sums those exact integers in float64, again
 * exactly (checked: below 2**52). Rounding is then decided on exact values:
 *
 *   mode 0 (uint8 convention): after each pass  q = floor((S + 2**(e-1)) / 2**e), saturated to 0..255,
 *           which is MATLAB's round-half-away-from-zero of S / 2**e on the non-negative side (negative
 *           sums saturate to 0 either way).
 *   mode 1 (im2double, float out): out = (S / 2**E) / 255 in float64, E = e1 + e2 (the level value, as the
 *           numpy path returns it).
 *   mode 2 (im2double, uint8 out = imwrite): out = floor(S / 2**E + 1/2), saturated.
 *   modes 1, 2 also report every output whose exact level is a tie k + 1/2: there MATLAB's float64 noise
 *           decides the rounding, and the caller recomputes those few outputs in MATLAB's order.
 *
 * Geometry (from MATLAB's contributions(), computed by the caller): output row i reads input rows
 * fold(c0_1 + s1*i + t), t = 0..K1-1, with weight k1[t]; output column j reads input columns
 * fold(c0_2 + s2*j + t) with weight k2[t]; fold() is MATLAB's mirror index [1:n, n:-1:1]. Rows first.
 *
 * The columns pass is computed in polyphase form: the pass-1 row is split into s2 phase rows
 * ph_p[m] = row[fold(c0_2 + p + s2*m)] (whole pixels, all channels), so that every tap becomes a
 * contiguous multiply-add over all (column, channel) values of the output row.
 *
 * The GIL is released during the work; the caller runs disjoint output-row ranges on several threads.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && __GNUC__ >= 11
#define SR_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define SR_CLONES
#endif

#define CHUNK 1024 /* values per accumulator block (stays in L1) */

static inline Py_ssize_t fold(Py_ssize_t u, Py_ssize_t n) {
    Py_ssize_t period = 2 * n;
    Py_ssize_t m = u % period;
    if (m < 0) m += period;
    return m < n ? m : period - 1 - m;
}

/* The nonzero taps of a weight row spread over its span (zeros are gaps between MATLAB's kept taps, never added):
 * their positions and weights, in order. Returns how many. */
#define DEFINE_NONZERO_TAPS(NAME, T)                                                                          \
    static int NAME(const T *k, int K, int *taps, T *w) {                                                     \
        int n = 0;                                                                                            \
        for (int t = 0; t < K; t++)                                                                           \
            if (k[t] != 0) {                                                                                  \
                taps[n] = t;                                                                                  \
                w[n++] = k[t];                                                                                \
            }                                                                                                 \
        return n;                                                                                             \
    }

DEFINE_NONZERO_TAPS(nonzero_taps_f32, float)
DEFINE_NONZERO_TAPS(nonzero_taps_f64, double)

/* The (mirror-folded) input rows that output row i of the rows pass reads: fold(c0 + s*i + taps[k]). */
static void input_rows(const int *taps, int K, Py_ssize_t c0, int s, Py_ssize_t i, Py_ssize_t H, Py_ssize_t *rows) {
    for (int k = 0; k < K; k++) rows[k] = fold(c0 + (Py_ssize_t)s * i + taps[k], H);
}

/* acc[x] = sum_t w[t] * rows[t][x], x < n; exact (see top). Taps go 8 (then 4, 1) at a time so that the
 * accumulator block is loaded and stored once per 8 taps. */
SR_CLONES static void rows_sum(const uint8_t *const *rows, const float *w, int K, Py_ssize_t n, float *acc) {
    for (Py_ssize_t x0 = 0; x0 < n; x0 += CHUNK) {
        Py_ssize_t len = n - x0 < CHUNK ? n - x0 : CHUNK;
        float *a = acc + x0;
        for (Py_ssize_t x = 0; x < len; x++) a[x] = 0.0f;
        int t = 0;
        for (; t + 8 <= K; t += 8) {
            const uint8_t *r0 = rows[t] + x0, *r1 = rows[t + 1] + x0, *r2 = rows[t + 2] + x0, *r3 = rows[t + 3] + x0;
            const uint8_t *r4 = rows[t + 4] + x0, *r5 = rows[t + 5] + x0, *r6 = rows[t + 6] + x0, *r7 = rows[t + 7] + x0;
            float w0 = w[t], w1 = w[t + 1], w2 = w[t + 2], w3 = w[t + 3];
            float w4 = w[t + 4], w5 = w[t + 5], w6 = w[t + 6], w7 = w[t + 7];
            for (Py_ssize_t x = 0; x < len; x++)
                a[x] += ((w0 * (float)r0[x] + w1 * (float)r1[x]) + (w2 * (float)r2[x] + w3 * (float)r3[x])) +
                        ((w4 * (float)r4[x] + w5 * (float)r5[x]) + (w6 * (float)r6[x] + w7 * (float)r7[x]));
        }
        for (; t + 4 <= K; t += 4) {
            const uint8_t *r0 = rows[t] + x0, *r1 = rows[t + 1] + x0, *r2 = rows[t + 2] + x0, *r3 = rows[t + 3] + x0;
            float w0 = w[t], w1 = w[t + 1], w2 = w[t + 2], w3 = w[t + 3];
            for (Py_ssize_t x = 0; x < len; x++)
                a[x] += (w0 * (float)r0[x] + w1 * (float)r1[x]) + (w2 * (float)r2[x] + w3 * (float)r3[x]);
        }
        for (; t < K; t++) {
            const uint8_t *r0 = rows[t] + x0;
            float w0 = w[t];
            for (Py_ssize_t x = 0; x < len; x++) a[x] += w0 * (float)r0[x];
        }
    }
}

/* In place: a[x] = saturate(floor((a[x] + h) * inv)) as float (the uint8 value of pass 1). */
SR_CLONES static void round_f32(float *a, Py_ssize_t n, float h, float inv) {
    for (Py_ssize_t x = 0; x < n; x++) {
        int v = (int)((a[x] + h) * inv); /* truncation: == floor for v >= 0; negative values saturate to 0 */
        v = v < 0 ? 0 : v;               /* integer clamps: GCC vectorizes these (float selects it does not) */
        a[x] = (float)(v > 255 ? 255 : v);
    }
}

/* out[x] = saturate(floor((a[x] + h) * inv)); a + h is an exact integer below 2**24, inv a power of two. */
SR_CLONES static void round_f32_u8(const float *a, Py_ssize_t n, float h, float inv, uint8_t *out) {
    for (Py_ssize_t x = 0; x < n; x++) {
        int v = (int)((a[x] + h) * inv);
        v = v < 0 ? 0 : v;
        out[x] = (uint8_t)(v > 255 ? 255 : v);
    }
}

/* Columns pass: a[x] = sum_{p,q} kq[p][q] * ph[p][q*C + x], x < n, summed in ACC (float for the uint8
 * convention, double for im2double: both exact, see top). One body, two accumulator types. */
#define DEFINE_COLS_SUM(NAME, ACC)                                                                             \
    SR_CLONES static void NAME(const float *ph, Py_ssize_t plen, const float *kq, int S, int Q, Py_ssize_t C,   \
                               Py_ssize_t n, ACC *acc) {                                                       \
        for (Py_ssize_t x0 = 0; x0 < n; x0 += CHUNK) {                                                         \
            Py_ssize_t len = n - x0 < CHUNK ? n - x0 : CHUNK;                                                  \
            ACC *a = acc + x0;                                                                                 \
            for (Py_ssize_t x = 0; x < len; x++) a[x] = 0;                                                     \
            for (int p = 0; p < S; p++) {                                                                      \
                for (int q = 0; q < Q; q++) {                                                                  \
                    ACC w = (ACC)kq[p * Q + q];                                                                \
                    if (w == 0) continue;                                                                      \
                    const float *s = ph + p * plen + q * C + x0;                                               \
                    for (Py_ssize_t x = 0; x < len; x++) a[x] += w * (ACC)s[x];                                \
                }                                                                                              \
            }                                                                                                  \
        }                                                                                                      \
    }

DEFINE_COLS_SUM(cols_sum_f32, float)
DEFINE_COLS_SUM(cols_sum_f64, double)

/* Whether lev is exactly k + 1/2: t = lev + 1/2 is exact (lev has at most 24 fraction bits and |lev| < 2**20)
 * and is an integer iff (t + 1.5*2**52) - 1.5*2**52 == t (adding the constant rounds t to an integer; the
 * file is compiled without -ffast-math, so this is not simplified away). Vectorizes without SSE4.1. */
static inline int is_tie(double lev) {
    const double big = 6755399441055744.0; /* 1.5 * 2**52 */
    double t = lev + 0.5;
    return ((t + big) - big) == t;
}

/* Level values lev = S * invE: mode 1 -> out64 = lev / 255, mode 2 -> out8 = saturate(floor(lev + 1/2)).
 * Returns the number of ties (lev - floor(lev) == 1/2) among the n values. */
SR_CLONES static Py_ssize_t finish_levels(double *a, Py_ssize_t n, double invE, int mode, double *out64,
                                          uint8_t *out8) {
    Py_ssize_t ties = 0;
    for (Py_ssize_t x = 0; x < n; x++) {
        double lev = a[x] * invE;
        a[x] = lev;
        ties += is_tie(lev);
    }
    if (mode == 1) {
        for (Py_ssize_t x = 0; x < n; x++) out64[x] = a[x] / 255.0;
    } else {
        for (Py_ssize_t x = 0; x < n; x++) {
            int v = (int)(a[x] + 0.5);
            v = v < 0 ? 0 : v;
            out8[x] = (uint8_t)(v > 255 ? 255 : v);
        }
    }
    return ties;
}

/* Phase rows of one pass-1 row (W pixels of C values of type T) for the columns pass:
 * ph[p*plen + m*C + c] = row[fold(c0 + p + S*m)*C + c], m < M. */
#define DEFINE_BUILD_PHASES(NAME, T) \
static void NAME(const T *row, Py_ssize_t W, Py_ssize_t C, Py_ssize_t c0, int S, Py_ssize_t M,                    \
                         Py_ssize_t plen, T *ph) {                                                                \
    for (int p = 0; p < S; p++) {                                                                                 \
        T *dst = ph + p * plen;                                                                                   \
        /* interior: m with 0 <= c0 + p + S*m < W */                                                              \
        Py_ssize_t first = c0 + p, m_lo = 0, m_hi;                                                                \
        while (m_lo < M && first + (Py_ssize_t)S * m_lo < 0) m_lo++;                                              \
        m_hi = m_lo;                                                                                              \
        if (first + (Py_ssize_t)S * m_lo < W) m_hi = (W - 1 - first) / S + 1;                                     \
        if (m_hi > M) m_hi = M;                                                                                   \
        if (m_hi < m_lo) m_hi = m_lo;                                                                             \
        for (Py_ssize_t m = 0; m < m_lo; m++)                                                                     \
            for (Py_ssize_t c = 0; c < C; c++) dst[m * C + c] = row[fold(first + (Py_ssize_t)S * m, W) * C + c];  \
        if (C == 3) {                                                                                             \
            const T *src = row + (first + (Py_ssize_t)S * m_lo) * 3;                                              \
            T *d = dst + m_lo * 3;                                                                                \
            const Py_ssize_t step = (Py_ssize_t)S * 3;                                                            \
            for (Py_ssize_t m = m_lo; m < m_hi; m++, src += step, d += 3) {                                       \
                d[0] = src[0];                                                                                    \
                d[1] = src[1];                                                                                    \
                d[2] = src[2];                                                                                    \
            }                                                                                                     \
        } else if (C == 1) {                                                                                      \
            const T *src = row + first + (Py_ssize_t)S * m_lo;                                                    \
            for (Py_ssize_t m = m_lo; m < m_hi; m++) dst[m] = src[(m - m_lo) * S];                                \
        } else {                                                                                                  \
            for (Py_ssize_t m = m_lo; m < m_hi; m++)                                                              \
                memcpy(dst + m * C, row + (first + (Py_ssize_t)S * m) * C, sizeof(T) * (size_t)C);                \
        }                                                                                                         \
        for (Py_ssize_t m = m_hi; m < M; m++)                                                                     \
            for (Py_ssize_t c = 0; c < C; c++) dst[m * C + c] = row[fold(first + (Py_ssize_t)S * m, W) * C + c];  \
    }                                                                                                             \
}

DEFINE_BUILD_PHASES(build_phases, float)
DEFINE_BUILD_PHASES(build_phases_f64, double)

typedef struct {
    const uint8_t *src;
    Py_ssize_t H, W, C, Ho, Wo;
    const float *k1; /* K1 integer weights of the rows pass */
    int K1, s1, e1;
    Py_ssize_t c01;
    const float *k2;
    int K2, s2, e2;
    Py_ssize_t c02;
    int mode;
    void *dst;
    int64_t *ties; /* capacity: (i1 - i0) * Wo * C */
} job_t;

/* Output rows [i0, i1). Returns the number of ties written, or -1 when out of memory. */
static Py_ssize_t run_rows(const job_t *j, Py_ssize_t i0, Py_ssize_t i1) {
    const Py_ssize_t rowlen = j->W * j->C, outlen = j->Wo * j->C;
    const int S = j->s2, Q = (j->K2 + j->s2 - 1) / j->s2;
    const Py_ssize_t M = j->Wo + Q - 1, plen = M * j->C + 16;
    Py_ssize_t nties = 0;

    float *acc1 = malloc(sizeof(float) * (size_t)rowlen);
    float *ph = malloc(sizeof(float) * (size_t)(plen * S));
    float *acc2 = malloc(sizeof(float) * (size_t)outlen);
    double *acc64 = malloc(sizeof(double) * (size_t)outlen);
    const uint8_t **rows = malloc(sizeof(uint8_t *) * (size_t)j->K1);
    Py_ssize_t *ridx = malloc(sizeof(Py_ssize_t) * (size_t)j->K1);
    int *taps1 = malloc(sizeof(int) * (size_t)j->K1);
    float *w1 = malloc(sizeof(float) * (size_t)j->K1);
    float *kq = calloc((size_t)(S * Q), sizeof(float));
    if (!acc1 || !ph || !acc2 || !acc64 || !rows || !ridx || !taps1 || !w1 || !kq) {
        nties = -1;
        goto done;
    }
    const int K1 = nonzero_taps_f32(j->k1, j->K1, taps1, w1);
    for (int t = 0; t < j->K2; t++) kq[(t % S) * Q + t / S] = j->k2[t];
    const float h1 = ldexpf(1.0f, j->e1 - 1), inv1 = ldexpf(1.0f, -j->e1);
    const float h2 = ldexpf(1.0f, j->e2 - 1), inv2 = ldexpf(1.0f, -j->e2);
    const double invE = ldexp(1.0, -(j->e1 + j->e2));

    for (Py_ssize_t i = i0; i < i1; i++) {
        input_rows(taps1, K1, j->c01, j->s1, i, j->H, ridx);
        for (int k = 0; k < K1; k++) rows[k] = j->src + ridx[k] * rowlen;
        rows_sum(rows, w1, K1, rowlen, acc1);
        if (j->mode == 0) {
            uint8_t *out = (uint8_t *)j->dst + i * outlen;
            round_f32(acc1, rowlen, h1, inv1);
            build_phases(acc1, j->W, j->C, j->c02, S, M, plen, ph);
            cols_sum_f32(ph, plen, kq, S, Q, j->C, outlen, acc2);
            round_f32_u8(acc2, outlen, h2, inv2, out);
        } else {
            build_phases(acc1, j->W, j->C, j->c02, S, M, plen, ph);
            cols_sum_f64(ph, plen, kq, S, Q, j->C, outlen, acc64);
            double *o64 = j->mode == 1 ? (double *)j->dst + i * outlen : NULL;
            uint8_t *o8 = j->mode == 2 ? (uint8_t *)j->dst + i * outlen : NULL;
            Py_ssize_t n = finish_levels(acc64, outlen, invE, j->mode, o64, o8);
            if (n) {
                for (Py_ssize_t x = 0; x < outlen; x++) {
                    if (is_tie(acc64[x])) j->ties[nties++] = (int64_t)(i * outlen + x);
                }
            }
        }
    }
done:
    free(acc1); free(ph); free(acc2); free(acc64); free(rows); free(ridx); free(taps1); free(w1); free(kq);
    return nties;
}

PyDoc_STRVAR(resize_u8_doc,
"resize_u8(src, H, W, C, dst, Ho, Wo, k1, c0_1, s1, e1, k2, c0_2, s2, e2, mode, i0, i1, ties) -> n_ties\n\n"
"Output rows [i0, i1) of the MATLAB bicubic downscale of a C-contiguous uint8 (H, W, C) buffer. k1/k2:\n"
"float32 buffers of the integer weights (weight * 2**e). mode 0: uint8 convention into a uint8 (Ho, Wo, C)\n"
"dst; 1: im2double levels/255 into a float64 dst; 2: im2double rounded into a uint8 dst. ties: int64\n"
"buffer of at least (i1-i0)*Wo*C entries receiving the flat output indices of exact k+1/2 levels\n"
"(modes 1, 2). Internal to srprep.ops.imresize, which checks the exactness conditions.");

static PyObject *resize_u8(PyObject *self, PyObject *args) {
    Py_buffer src, dst, k1, k2, ties;
    Py_ssize_t H, W, C, Ho, Wo, c01, c02, i0, i1;
    int s1, e1, s2, e2, mode;
    if (!PyArg_ParseTuple(args, "y*nnnw*nny*niiy*niiinnw*", &src, &H, &W, &C, &dst, &Ho, &Wo, &k1, &c01, &s1, &e1,
                          &k2, &c02, &s2, &e2, &mode, &i0, &i1, &ties))
        return NULL;
    PyObject *result = NULL;
    const char *err = NULL;
    Py_ssize_t itemsize = mode == 1 ? 8 : 1;
    if (H < 1 || W < 1 || C < 1 || Ho < 1 || Wo < 1 || s1 < 1 || s2 < 1 || e1 < 0 || e2 < 0 || e1 > 30 || e2 > 30)
        err = "bad geometry";
    else if (mode < 0 || mode > 2)
        err = "mode must be 0, 1 or 2";
    else if (src.len < H * W * C)
        err = "src buffer too small";
    else if (dst.len < Ho * Wo * C * itemsize)
        err = "dst buffer too small";
    else if (k1.len % 4 || k2.len % 4 || k1.len == 0 || k2.len == 0)
        err = "weights must be non-empty float32 buffers";
    else if (i0 < 0 || i1 > Ho || i0 > i1)
        err = "bad row range";
    else if (mode != 0 && ties.len < (i1 - i0) * Wo * C * 8)
        err = "ties buffer too small";
    if (err) {
        PyErr_SetString(PyExc_ValueError, err);
        goto out;
    }
    job_t j = {src.buf, H, W, C, Ho, Wo, k1.buf, (int)(k1.len / 4), s1, e1, c01,
               k2.buf, (int)(k2.len / 4), s2, e2, c02, mode, dst.buf, ties.buf};
    Py_ssize_t n;
    Py_BEGIN_ALLOW_THREADS
    n = run_rows(&j, i0, i1);
    Py_END_ALLOW_THREADS
    if (n < 0)
        PyErr_NoMemory();
    else
        result = PyLong_FromSsize_t(n);
out:
    PyBuffer_Release(&src);
    PyBuffer_Release(&dst);
    PyBuffer_Release(&k1);
    PyBuffer_Release(&k2);
    PyBuffer_Release(&ties);
    return result;
}

/* ------------------------------------------------------------------------------------------------------------
 * MATLAB-order sums (weights that are not dyadic, e.g. x3; float input): every output is
 * sum_t w[t] * v[t] in double, taps in MATLAB's order, each product rounded before it is added (no FMA: the
 * file is compiled with -ffp-contract=off). Vector lanes only run neighbouring outputs side by side, so each
 * output gets exactly the operations MATLAB performs for it, and the tie breaking MATLAB's float noise does.
 * src kinds: 0 uint8 values, 1 uint8 / 255 (im2double), 2 float64.
 * modes: 0 uint8 convention (each pass rounded: floor(x + 1/2), saturated), 1 float64 out,
 *        2 uint8 out = MATLAB's im2uint8 of the float64 result: floor(x*255 + 1/2), saturated.
 * ---------------------------------------------------------------------------------------------------------- */

SR_CLONES static void rows_seq_u8(const uint8_t *const *rows, const double *w, int K, Py_ssize_t n, double *acc) {
    for (Py_ssize_t x0 = 0; x0 < n; x0 += CHUNK) {
        Py_ssize_t len = n - x0 < CHUNK ? n - x0 : CHUNK;
        double *a = acc + x0;
        for (int t = 0; t < K; t++) {
            const uint8_t *r = rows[t] + x0;
            const double wt = w[t];
            if (t == 0)
                for (Py_ssize_t x = 0; x < len; x++) a[x] = wt * (double)r[x];
            else
                for (Py_ssize_t x = 0; x < len; x++) a[x] = a[x] + wt * (double)r[x];
        }
    }
}

/* MATLAB's im2double of one row: double(v) / 255. */
SR_CLONES static void div255_row(const uint8_t *r, Py_ssize_t n, double *out) {
    for (Py_ssize_t x = 0; x < n; x++) out[x] = (double)r[x] / 255.0;
}

SR_CLONES static void rows_seq_f64(const double *const *rows, const double *w, int K, Py_ssize_t n, double *acc) {
    for (Py_ssize_t x0 = 0; x0 < n; x0 += CHUNK) {
        Py_ssize_t len = n - x0 < CHUNK ? n - x0 : CHUNK;
        double *a = acc + x0;
        for (int t = 0; t < K; t++) {
            const double *r = rows[t] + x0;
            const double wt = w[t];
            if (t == 0)
                for (Py_ssize_t x = 0; x < len; x++) a[x] = wt * r[x];
            else
                for (Py_ssize_t x = 0; x < len; x++) a[x] = a[x] + wt * r[x];
        }
    }
}

/* Columns pass over the phase rows, taps t = 0..K-1 in order (tap t lives in phase t % S, shifted by t / S). */
SR_CLONES static void cols_seq(const double *ph, Py_ssize_t plen, const double *w, const int *taps, int K, int S,
                               Py_ssize_t C, Py_ssize_t n, double *acc) {
    for (Py_ssize_t x0 = 0; x0 < n; x0 += CHUNK) {
        Py_ssize_t len = n - x0 < CHUNK ? n - x0 : CHUNK;
        double *a = acc + x0;
        for (int k = 0; k < K; k++) {
            const int t = taps[k];
            const double wt = w[k];
            const double *src = ph + (t % S) * plen + (t / S) * C + x0;
            if (k == 0)
                for (Py_ssize_t x = 0; x < len; x++) a[x] = wt * src[x];
            else
                for (Py_ssize_t x = 0; x < len; x++) a[x] = a[x] + wt * src[x];
        }
    }
}

/* In place: a[x] = saturate(floor(a[x] + 1/2)), MATLAB's double -> uint8 of a pass of the uint8 convention. */
SR_CLONES static void round_seq(double *a, Py_ssize_t n) {
    for (Py_ssize_t x = 0; x < n; x++) {
        double v = floor(a[x] + 0.5);
        v = v < 0.0 ? 0.0 : v;
        a[x] = v > 255.0 ? 255.0 : v;
    }
}

SR_CLONES static void to_u8_seq(const double *a, Py_ssize_t n, int times255, uint8_t *out) {
    for (Py_ssize_t x = 0; x < n; x++) {
        double v = times255 ? floor(a[x] * 255.0 + 0.5) : floor(a[x] + 0.5);
        v = v < 0.0 ? 0.0 : v;
        v = v > 255.0 ? 255.0 : v;
        out[x] = (uint8_t)(int)v;
    }
}

typedef struct {
    const void *src;
    int kind; /* 0 uint8, 1 uint8 / 255, 2 float64 */
    Py_ssize_t H, W, C, Ho, Wo;
    const double *k1;
    int K1, s1;
    Py_ssize_t c01;
    const double *k2;
    int K2, s2;
    Py_ssize_t c02;
    int mode;
    void *dst;
} seq_job_t;

/* The row of src at index r as doubles for the rows pass. kind 1 (im2double): each input row is converted to
 * v/255 once, into a small cache of rows (consecutive output rows share most of their input rows), instead of
 * one division per tap; same values either way. The cache has more slots than one output row reads, so a
 * victim that the current output row does not read (``ridx``) always exists. */
typedef struct {
    double *rows;
    Py_ssize_t *row_of; /* input row held by each slot, -1: empty */
    int slots, next;
} row_cache_t;

static const double *cached_row(row_cache_t *c, const uint8_t *src, Py_ssize_t rowlen, Py_ssize_t r,
                                const Py_ssize_t *ridx, int K) {
    for (int q = 0; q < c->slots; q++)
        if (c->row_of[q] == r) return c->rows + (size_t)q * rowlen;
    for (;;) {
        int q = c->next, used = 0;
        c->next = (c->next + 1) % c->slots;
        for (int m = 0; m < K && !used; m++) used = c->row_of[q] == ridx[m];
        if (!used) {
            c->row_of[q] = r;
            div255_row(src + r * rowlen, rowlen, c->rows + (size_t)q * rowlen);
            return c->rows + (size_t)q * rowlen;
        }
    }
}

static int run_rows_seq(const seq_job_t *j, Py_ssize_t i0, Py_ssize_t i1) {
    const Py_ssize_t rowlen = j->W * j->C, outlen = j->Wo * j->C;
    const int S = j->s2, Q = (j->K2 + j->s2 - 1) / j->s2;
    const Py_ssize_t M = j->Wo + Q - 1, plen = M * j->C + 16;
    int ok = 0;
    double *acc1 = malloc(sizeof(double) * (size_t)rowlen);
    double *ph = malloc(sizeof(double) * (size_t)(plen * S));
    double *acc2 = malloc(sizeof(double) * (size_t)outlen);
    const void **rows = malloc(sizeof(void *) * (size_t)j->K1);
    Py_ssize_t *ridx = malloc(sizeof(Py_ssize_t) * (size_t)j->K1);
    int *taps1 = malloc(sizeof(int) * (size_t)j->K1);
    double *w1 = malloc(sizeof(double) * (size_t)j->K1);
    int *taps2 = malloc(sizeof(int) * (size_t)j->K2);
    double *w2 = malloc(sizeof(double) * (size_t)j->K2);
    row_cache_t cache = {NULL, NULL, j->K1 + 1, 0};
    if (!acc1 || !ph || !acc2 || !rows || !ridx || !taps1 || !w1 || !taps2 || !w2) goto done;
    if (j->kind == 1) {
        cache.rows = malloc(sizeof(double) * (size_t)(rowlen * cache.slots));
        cache.row_of = malloc(sizeof(Py_ssize_t) * (size_t)cache.slots);
        if (!cache.rows || !cache.row_of) goto done;
        for (int q = 0; q < cache.slots; q++) cache.row_of[q] = -1;
    }
    const int K1 = nonzero_taps_f64(j->k1, j->K1, taps1, w1);
    const int K2 = nonzero_taps_f64(j->k2, j->K2, taps2, w2);
    for (Py_ssize_t i = i0; i < i1; i++) {
        input_rows(taps1, K1, j->c01, j->s1, i, j->H, ridx);
        for (int k = 0; k < K1; k++) {
            if (j->kind == 1)
                rows[k] = cached_row(&cache, j->src, rowlen, ridx[k], ridx, K1);
            else if (j->kind == 2)
                rows[k] = (const double *)j->src + ridx[k] * rowlen;
            else
                rows[k] = (const uint8_t *)j->src + ridx[k] * rowlen;
        }
        if (j->kind != 0)
            rows_seq_f64((const double *const *)rows, w1, K1, rowlen, acc1);
        else
            rows_seq_u8((const uint8_t *const *)rows, w1, K1, rowlen, acc1);
        if (j->mode == 0) round_seq(acc1, rowlen);
        build_phases_f64(acc1, j->W, j->C, j->c02, S, M, plen, ph);
        double *a2 = j->mode == 1 ? (double *)j->dst + i * outlen : acc2;
        cols_seq(ph, plen, w2, taps2, K2, S, j->C, outlen, a2);
        if (j->mode != 1) to_u8_seq(a2, outlen, j->mode == 2, (uint8_t *)j->dst + i * outlen);
    }
    ok = 1;
done:
    free(acc1); free(ph); free(acc2); free(rows); free(ridx); free(taps1); free(w1); free(taps2); free(w2);
    free(cache.rows); free(cache.row_of);
    return ok;
}

PyDoc_STRVAR(resize_seq_doc,
"resize_seq(src, kind, H, W, C, dst, Ho, Wo, k1, c0_1, s1, k2, c0_2, s2, mode, i0, i1) -> None\n\n"
"Output rows [i0, i1) of the MATLAB bicubic resize of a C-contiguous (H, W, C) buffer with MATLAB's own\n"
"double arithmetic (taps in order, no FMA). kind 0: uint8, 1: uint8 read as v/255 (im2double), 2: float64.\n"
"k1/k2: float64 buffers of the weight rows spread over their taps (zeros are gaps). mode 0: uint8 convention\n"
"(kind 0) into uint8 dst; 1: float64 dst; 2: im2uint8 of the float64 result into uint8 dst.");

static PyObject *resize_seq(PyObject *self, PyObject *args) {
    Py_buffer src, dst, k1, k2;
    Py_ssize_t H, W, C, Ho, Wo, c01, c02, i0, i1;
    int kind, s1, s2, mode;
    if (!PyArg_ParseTuple(args, "y*innnw*nny*niy*niinn", &src, &kind, &H, &W, &C, &dst, &Ho, &Wo, &k1, &c01, &s1,
                          &k2, &c02, &s2, &mode, &i0, &i1))
        return NULL;
    PyObject *result = NULL;
    const char *err = NULL;
    Py_ssize_t in_item = kind == 2 ? 8 : 1, out_item = mode == 1 ? 8 : 1;
    if (H < 1 || W < 1 || C < 1 || Ho < 1 || Wo < 1 || s1 < 1 || s2 < 1)
        err = "bad geometry";
    else if (kind < 0 || kind > 2 || mode < 0 || mode > 2 || (mode == 0 && kind != 0))
        err = "bad kind or mode";
    else if (src.len < H * W * C * in_item)
        err = "src buffer too small";
    else if (dst.len < Ho * Wo * C * out_item)
        err = "dst buffer too small";
    else if (k1.len % 8 || k2.len % 8 || k1.len == 0 || k2.len == 0)
        err = "weights must be non-empty float64 buffers";
    else if (i0 < 0 || i1 > Ho || i0 > i1)
        err = "bad row range";
    if (err) {
        PyErr_SetString(PyExc_ValueError, err);
        goto out;
    }
    seq_job_t j = {src.buf, kind, H, W, C, Ho, Wo, k1.buf, (int)(k1.len / 8), s1, c01,
                   k2.buf, (int)(k2.len / 8), s2, c02, mode, dst.buf};
    int ok;
    Py_BEGIN_ALLOW_THREADS
    ok = run_rows_seq(&j, i0, i1);
    Py_END_ALLOW_THREADS
    if (!ok)
        PyErr_NoMemory();
    else
        result = Py_NewRef(Py_None);
out:
    PyBuffer_Release(&src);
    PyBuffer_Release(&dst);
    PyBuffer_Release(&k1);
    PyBuffer_Release(&k2);
    return result;
}

static PyMethodDef methods[] = {
    {"resize_u8", resize_u8, METH_VARARGS, resize_u8_doc},
    {"resize_seq", resize_seq, METH_VARARGS, resize_seq_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_bicubic_native",
    "Compiled MATLAB-exact bicubic kernel (see srprep.ops.imresize).", -1, methods,
};

PyMODINIT_FUNC PyInit__bicubic_native(void) { return PyModule_Create(&module); }
