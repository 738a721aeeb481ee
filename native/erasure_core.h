/* GF(2^8) matrix-times-fragments, the C core of native/erasure.pyx.
 *
 * Field: GF(2^8) with primitive polynomial 0x11d and generator 2, the field reedsolo
 * uses. Every erasure-code operation (encode, rebuild) is dst = M @ src over the field,
 * with M small (rows x cols) and each src/dst a row of len bytes.
 *
 * The multiply by a constant c is vectorised four ways, chosen at RUN time by what
 * the CPU supports, so one build runs on any x86-64 or AArch64 machine:
 *   EC_PATH_GFNI   x86 GFNI + AVX2: c*x is linear over GF(2), so one GF2P8AFFINEQB
 *                  with c's 8x8 bit matrix multiplies 32 bytes. (GF2P8MULB itself is
 *                  hard-wired to the AES polynomial 0x11b, so it cannot be used.)
 *   EC_PATH_AVX2   split nibble tables: c*x = lo[x & 15] ^ hi[x >> 4], two VPSHUFB
 *                  lookups per 32 bytes;
 *   EC_PATH_SSSE3  the same with PSHUFB on 16 bytes;
 *   EC_PATH_NEON   the same with TBL on 16 bytes (AArch64, always present there);
 *   EC_PATH_SCALAR a 256 x 256 product table, one byte at a time: the portable fallback.
 * Each source block is loaded once and accumulated into up to EC_GROUP output rows
 * held in registers, so a pass reads the sources once per group of outputs.
 *
 * Tables are prepared once per matrix (per loss pattern for decoding) by ec_prepare:
 * 32 bytes (lo, hi nibble products) and one 64-bit affine matrix per coefficient.
 */
#ifndef DSQLBENCH_ERASURE_CORE_H
#define DSQLBENCH_ERASURE_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) || defined(_M_X64)
#define EC_X86 1
#include <immintrin.h>
#elif defined(__aarch64__)
#define EC_ARM64 1
#include <arm_neon.h>
#endif

enum { EC_PATH_SCALAR = 0, EC_PATH_SSSE3 = 1, EC_PATH_AVX2 = 2, EC_PATH_GFNI = 3, EC_PATH_NEON = 4, EC_PATHS = 5 };
#define EC_GROUP 4 /* output rows accumulated per pass (registers, not memory) */

static uint8_t ec_mul_table[256][256];

/* Build the product table from exp/log over 0x11d, generator 2. Deterministic. */
static void ec_init_tables(void)
{
    uint8_t exp[512], log[256];
    unsigned x = 1;
    for (int i = 0; i < 255; i++) {
        exp[i] = exp[i + 255] = (uint8_t)x;
        log[x] = (uint8_t)i;
        x <<= 1;
        if (x & 0x100) x ^= 0x11d;
    }
    for (int a = 0; a < 256; a++)
        for (int b = 0; b < 256; b++)
            ec_mul_table[a][b] = (a && b) ? exp[log[a] + log[b]] : 0;
}

/* GF2P8AFFINEQB computes bit i of each result byte as parity(A.byte[7 - i] & x), so
 * byte 7 - i of A holds row i of the bit matrix of "multiply by c": bit j of that row
 * is bit i of c * 2^j. */
static uint64_t ec_affine_matrix(uint8_t c)
{
    uint64_t matrix = 0;
    for (int i = 0; i < 8; i++) {
        uint64_t row = 0;
        for (int j = 0; j < 8; j++) row |= (uint64_t)((ec_mul_table[c][1u << j] >> i) & 1) << j;
        matrix |= row << (8 * (7 - i));
    }
    return matrix;
}

/* Per coefficient: 32 bytes of nibble tables and one affine matrix. */
static void ec_prepare(const uint8_t *coeffs, size_t count, uint8_t *nibbles, uint64_t *affine)
{
    for (size_t e = 0; e < count; e++) {
        uint8_t c = coeffs[e];
        for (int x = 0; x < 16; x++) {
            nibbles[32 * e + x] = ec_mul_table[c][x];
            nibbles[32 * e + 16 + x] = ec_mul_table[c][x << 4];
        }
        affine[e] = ec_affine_matrix(c);
    }
}

/* ---------------------------------------------------------------- scalar ---- */

/* dst[r] = sum_c coeffs[r][c] * src[c] over [from, to), one row at a time, in
 * blocks that stay in L1. Also the tail of every vector path. */
static void ec_apply_scalar(const uint8_t *coeffs, int rows, int cols, const uint8_t *const *src,
                            uint8_t *const *dst, size_t from, size_t to)
{
    enum { BLOCK = 4096 };
    for (size_t lo = from; lo < to; lo += BLOCK) {
        size_t hi = lo + BLOCK < to ? lo + BLOCK : to;
        for (int r = 0; r < rows; r++) {
            uint8_t *out = dst[r];
            memset(out + lo, 0, hi - lo);
            for (int c = 0; c < cols; c++) {
                const uint8_t *table = ec_mul_table[coeffs[r * cols + c]];
                const uint8_t *in = src[c];
                if (table == ec_mul_table[0]) continue;
                for (size_t i = lo; i < hi; i++) out[i] ^= table[in[i]];
            }
        }
    }
}

/* ------------------------------------------------------------------ x86 ---- */
#ifdef EC_X86

/* One group of g <= EC_GROUP output rows, 32 bytes at a time. always_inline with a
 * constant g lets the compiler keep the accumulators in registers. */
static inline __attribute__((always_inline, target("avx2"))) size_t
ec_group_avx2(int g, const uint8_t *nibbles, int cols, const uint8_t *const *src,
              uint8_t *const *dst, uint8_t *const *copy, size_t len)
{
    const __m256i mask = _mm256_set1_epi8(0x0f);
    size_t i = 0;
    /* 64 bytes a step: each coefficient's tables are loaded once for two vectors. */
    for (; i + 64 <= len; i += 64) {
        __m256i acc0[EC_GROUP], acc1[EC_GROUP];
        for (int r = 0; r < g; r++) acc0[r] = acc1[r] = _mm256_setzero_si256();
        for (int c = 0; c < cols; c++) {
            __m256i x0 = _mm256_loadu_si256((const __m256i *)(src[c] + i));
            __m256i x1 = _mm256_loadu_si256((const __m256i *)(src[c] + i + 32));
            if (copy && copy[c]) {
                _mm256_storeu_si256((__m256i *)(copy[c] + i), x0);
                _mm256_storeu_si256((__m256i *)(copy[c] + i + 32), x1);
            }
            __m256i lo0 = _mm256_and_si256(x0, mask), hi0 = _mm256_and_si256(_mm256_srli_epi64(x0, 4), mask);
            __m256i lo1 = _mm256_and_si256(x1, mask), hi1 = _mm256_and_si256(_mm256_srli_epi64(x1, 4), mask);
            for (int r = 0; r < g; r++) {
                const uint8_t *t = nibbles + 32 * ((size_t)r * cols + c);
                __m256i tlo = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)t));
                __m256i thi = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(t + 16)));
                acc0[r] = _mm256_xor_si256(acc0[r], _mm256_xor_si256(_mm256_shuffle_epi8(tlo, lo0),
                                                                     _mm256_shuffle_epi8(thi, hi0)));
                acc1[r] = _mm256_xor_si256(acc1[r], _mm256_xor_si256(_mm256_shuffle_epi8(tlo, lo1),
                                                                     _mm256_shuffle_epi8(thi, hi1)));
            }
        }
        for (int r = 0; r < g; r++) {
            _mm256_storeu_si256((__m256i *)(dst[r] + i), acc0[r]);
            _mm256_storeu_si256((__m256i *)(dst[r] + i + 32), acc1[r]);
        }
    }
    for (; i + 32 <= len; i += 32) {
        __m256i acc[EC_GROUP];
        for (int r = 0; r < g; r++) acc[r] = _mm256_setzero_si256();
        for (int c = 0; c < cols; c++) {
            __m256i x = _mm256_loadu_si256((const __m256i *)(src[c] + i));
            if (copy && copy[c]) _mm256_storeu_si256((__m256i *)(copy[c] + i), x);
            __m256i lo = _mm256_and_si256(x, mask);
            __m256i hi = _mm256_and_si256(_mm256_srli_epi64(x, 4), mask);
            for (int r = 0; r < g; r++) {
                const uint8_t *t = nibbles + 32 * ((size_t)r * cols + c);
                __m256i tlo = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)t));
                __m256i thi = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(t + 16)));
                acc[r] = _mm256_xor_si256(acc[r], _mm256_xor_si256(_mm256_shuffle_epi8(tlo, lo),
                                                                   _mm256_shuffle_epi8(thi, hi)));
            }
        }
        for (int r = 0; r < g; r++) _mm256_storeu_si256((__m256i *)(dst[r] + i), acc[r]);
    }
    return i;
}

static inline __attribute__((always_inline, target("ssse3"))) size_t
ec_group_ssse3(int g, const uint8_t *nibbles, int cols, const uint8_t *const *src,
               uint8_t *const *dst, uint8_t *const *copy, size_t len)
{
    const __m128i mask = _mm_set1_epi8(0x0f);
    size_t i = 0;
    for (; i + 16 <= len; i += 16) {
        __m128i acc[EC_GROUP];
        for (int r = 0; r < g; r++) acc[r] = _mm_setzero_si128();
        for (int c = 0; c < cols; c++) {
            __m128i x = _mm_loadu_si128((const __m128i *)(src[c] + i));
            if (copy && copy[c]) _mm_storeu_si128((__m128i *)(copy[c] + i), x);
            __m128i lo = _mm_and_si128(x, mask);
            __m128i hi = _mm_and_si128(_mm_srli_epi64(x, 4), mask);
            for (int r = 0; r < g; r++) {
                const uint8_t *t = nibbles + 32 * ((size_t)r * cols + c);
                __m128i tlo = _mm_loadu_si128((const __m128i *)t);
                __m128i thi = _mm_loadu_si128((const __m128i *)(t + 16));
                acc[r] = _mm_xor_si128(acc[r], _mm_xor_si128(_mm_shuffle_epi8(tlo, lo), _mm_shuffle_epi8(thi, hi)));
            }
        }
        for (int r = 0; r < g; r++) _mm_storeu_si128((__m128i *)(dst[r] + i), acc[r]);
    }
    return i;
}

static inline __attribute__((always_inline, target("gfni,avx2"))) size_t
ec_group_gfni(int g, const uint64_t *affine, int cols, const uint8_t *const *src,
              uint8_t *const *dst, uint8_t *const *copy, size_t len)
{
    size_t i = 0;
    for (; i + 32 <= len; i += 32) {
        __m256i acc[EC_GROUP];
        for (int r = 0; r < g; r++) acc[r] = _mm256_setzero_si256();
        for (int c = 0; c < cols; c++) {
            __m256i x = _mm256_loadu_si256((const __m256i *)(src[c] + i));
            if (copy && copy[c]) _mm256_storeu_si256((__m256i *)(copy[c] + i), x);
            for (int r = 0; r < g; r++) {
                __m256i a = _mm256_set1_epi64x((long long)affine[(size_t)r * cols + c]);
                acc[r] = _mm256_xor_si256(acc[r], _mm256_gf2p8affine_epi64_epi8(x, a, 0));
            }
        }
        for (int r = 0; r < g; r++) _mm256_storeu_si256((__m256i *)(dst[r] + i), acc[r]);
    }
    return i;
}

/* One instance per group size, so each has constant g. */
#define EC_X86_GROUPS(name, tables_t, body)                                                       \
    static __attribute__((noinline)) size_t name(int g, tables_t tables, int cols,               \
                                                 const uint8_t *const *src, uint8_t *const *dst, \
                                                 uint8_t *const *copy, size_t len)               \
    {                                                                                            \
        switch (g) {                                                                             \
        case 1: return body(1, tables, cols, src, dst, copy, len);                               \
        case 2: return body(2, tables, cols, src, dst, copy, len);                               \
        case 3: return body(3, tables, cols, src, dst, copy, len);                               \
        default: return body(4, tables, cols, src, dst, copy, len);                              \
        }                                                                                        \
    }
__attribute__((target("avx2"))) EC_X86_GROUPS(ec_groups_avx2, const uint8_t *, ec_group_avx2)
__attribute__((target("ssse3"))) EC_X86_GROUPS(ec_groups_ssse3, const uint8_t *, ec_group_ssse3)
__attribute__((target("gfni,avx2"))) EC_X86_GROUPS(ec_groups_gfni, const uint64_t *, ec_group_gfni)

#endif /* EC_X86 */

/* ---------------------------------------------------------------- arm64 ---- */
#ifdef EC_ARM64

static inline __attribute__((always_inline)) size_t
ec_group_neon(int g, const uint8_t *nibbles, int cols, const uint8_t *const *src,
              uint8_t *const *dst, uint8_t *const *copy, size_t len)
{
    const uint8x16_t mask = vdupq_n_u8(0x0f);
    size_t i = 0;
    for (; i + 16 <= len; i += 16) {
        uint8x16_t acc[EC_GROUP];
        for (int r = 0; r < g; r++) acc[r] = vdupq_n_u8(0);
        for (int c = 0; c < cols; c++) {
            uint8x16_t x = vld1q_u8(src[c] + i);
            if (copy && copy[c]) vst1q_u8(copy[c] + i, x);
            uint8x16_t lo = vandq_u8(x, mask);
            uint8x16_t hi = vshrq_n_u8(x, 4);
            for (int r = 0; r < g; r++) {
                const uint8_t *t = nibbles + 32 * ((size_t)r * cols + c);
                acc[r] = veorq_u8(acc[r], veorq_u8(vqtbl1q_u8(vld1q_u8(t), lo), vqtbl1q_u8(vld1q_u8(t + 16), hi)));
            }
        }
        for (int r = 0; r < g; r++) vst1q_u8(dst[r] + i, acc[r]);
    }
    return i;
}

static __attribute__((noinline)) size_t ec_groups_neon(int g, const uint8_t *nibbles, int cols,
                                                       const uint8_t *const *src, uint8_t *const *dst,
                                                       uint8_t *const *copy, size_t len)
{
    switch (g) {
    case 1: return ec_group_neon(1, nibbles, cols, src, dst, copy, len);
    case 2: return ec_group_neon(2, nibbles, cols, src, dst, copy, len);
    case 3: return ec_group_neon(3, nibbles, cols, src, dst, copy, len);
    default: return ec_group_neon(4, nibbles, cols, src, dst, copy, len);
    }
}

#endif /* EC_ARM64 */

/* ------------------------------------------------------------- dispatch ---- */

/* Which paths this CPU can run (bit per EC_PATH_*); the scalar path always can. */
static unsigned ec_supported_paths(void)
{
    unsigned paths = 1u << EC_PATH_SCALAR;
#ifdef EC_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("ssse3")) paths |= 1u << EC_PATH_SSSE3;
    if (__builtin_cpu_supports("avx2")) paths |= 1u << EC_PATH_AVX2;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("gfni")) paths |= 1u << EC_PATH_GFNI;
#endif
#ifdef EC_ARM64
    paths |= 1u << EC_PATH_NEON;
#endif
    return paths;
}

static int ec_best_path(unsigned paths)
{
    static const int preference[] = {EC_PATH_GFNI, EC_PATH_AVX2, EC_PATH_NEON, EC_PATH_SSSE3, EC_PATH_SCALAR};
    for (size_t i = 0; i < sizeof preference / sizeof preference[0]; i++)
        if (paths & (1u << preference[i])) return preference[i];
    return EC_PATH_SCALAR;
}

/* dst[r] = sum_c coeffs[r][c] * src[c] for r < rows, over len bytes, on path. When
 * copy is not NULL, every non-NULL copy[c] also receives src[c]: decoding copies the
 * data fragments that arrived while it streams through them anyway, instead of in a
 * second pass. The caller guarantees that path is supported, and that no dst or copy
 * row overlaps a src row. */
static void ec_apply(int path, const uint8_t *coeffs, const uint8_t *nibbles, const uint64_t *affine,
                     int rows, int cols, const uint8_t *const *src, uint8_t *const *dst,
                     uint8_t *const *copy, size_t len)
{
    if (rows == 0) {
        for (int c = 0; copy && c < cols; c++)
            if (copy[c]) memcpy(copy[c], src[c], len);
        return;
    }
    for (int r0 = 0; r0 < rows; r0 += EC_GROUP) {
        int g = rows - r0 < EC_GROUP ? rows - r0 : EC_GROUP;
        uint8_t *const *group_copy = r0 == 0 ? copy : NULL; /* copy once, in the first pass */
        size_t done = 0;
        (void)nibbles; (void)affine; (void)group_copy;
#ifdef EC_X86
        if (path == EC_PATH_GFNI)
            done = ec_groups_gfni(g, affine + (size_t)r0 * cols, cols, src, dst + r0, group_copy, len);
        else if (path == EC_PATH_AVX2)
            done = ec_groups_avx2(g, nibbles + 32 * (size_t)r0 * cols, cols, src, dst + r0, group_copy, len);
        else if (path == EC_PATH_SSSE3)
            done = ec_groups_ssse3(g, nibbles + 32 * (size_t)r0 * cols, cols, src, dst + r0, group_copy, len);
#endif
#ifdef EC_ARM64
        if (path == EC_PATH_NEON)
            done = ec_groups_neon(g, nibbles + 32 * (size_t)r0 * cols, cols, src, dst + r0, group_copy, len);
#endif
        for (int c = 0; group_copy && c < cols; c++)
            if (group_copy[c] && done < len) memcpy(group_copy[c] + done, src[c] + done, len - done);
        if (done < len) ec_apply_scalar(coeffs + (size_t)r0 * cols, g, cols, src, dst + r0, done, len);
    }
}

#endif
