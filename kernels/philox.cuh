// Philox4x32-10 counter-based generator, the open-interval uniform maps and
// the Gumbel transform.  Twin of philox.py; both are checked against the
// Random123 known-answer vectors (tests/test_philox_host.py).
//
// Salmon, Moraes, Dror and Shaw, "Parallel random numbers: as easy as 1, 2,
// 3", SC'11.
//
// Stream mapping, version 1 (gumbel_np.STREAM_VERSION):
//
// * key (k0, k1): two 32-bit words derived from rng;
// * element j of the row with id rid (int64, taken as two's complement) at
//   draw index d: counter (j / W, d, rid & 0xffffffff, rid >> 32), where W = 4
//   for float32 and 2 for float64;
// * float32 uses word j % 4 of the block: u = (1 | (w >> 8)) * 2**-24;
// * float64 uses words (2i, 2i + 1) for i = j % 2:
//   x = (w[2i] << 32) | w[2i + 1], u = (1 | (x >> 11)) * 2**-53;
// * float16 data draws the float32 stream (W = 4, the float32 uniform and
//   Gumbel transform in float) and rounds the noise to half.
//
// Gumbel noise is -log(-log(u)) with the accurate logf/log (never __logf or
// --use_fast_math: the upper tail comes from u close to 1, where -log(u) is a
// few ulp of 1 and a fast log loses every significant digit).
//
// The header compiles three ways: with NVRTC (the loader in cuda.py inlines
// it), with nvcc, and as plain host C++ (g++ -std=c++17), where the 32x32-bit
// high product uses a 64-bit multiply instead of __umulhi.  It includes no
// standard header under NVRTC, which ships none.

#ifndef GUMBEL_NP_PHILOX_CUH
#define GUMBEL_NP_PHILOX_CUH

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define GNP_HD __host__ __device__ __forceinline__
#define GNP_UNROLL _Pragma("unroll")
#else
#include <math.h>
#define GNP_HD inline
#define GNP_UNROLL
#endif

namespace gnp {

typedef unsigned int u32;
typedef unsigned long long u64;
typedef long long i64;
static_assert(sizeof(u32) == 4 && sizeof(u64) == 8 && sizeof(i64) == 8,
              "gumbel_np needs 32-bit int and 64-bit long long");

constexpr u32 PHILOX_M0 = 0xD2511F53u;
constexpr u32 PHILOX_M1 = 0xCD9E8D57u;
constexpr u32 PHILOX_W0 = 0x9E3779B9u;
constexpr u32 PHILOX_W1 = 0xBB67AE85u;

struct Philox4 {
    u32 w[4];
};

GNP_HD u32 mulhi32(u32 a, u32 b) {
#ifdef __CUDA_ARCH__
    return __umulhi(a, b);
#else
    return static_cast<u32>((static_cast<u64>(a) * b) >> 32);
#endif
}

// Philox4x32 with R rounds of counter (c0..c3) under key (k0, k1).
template <int R>
GNP_HD Philox4 philox4x32_r(u32 c0, u32 c1, u32 c2, u32 c3, u32 k0, u32 k1) {
    GNP_UNROLL
    for (int i = 0; i < R; ++i) {
        const u32 hi0 = mulhi32(PHILOX_M0, c0);
        const u32 lo0 = PHILOX_M0 * c0;
        const u32 hi1 = mulhi32(PHILOX_M1, c2);
        const u32 lo1 = PHILOX_M1 * c2;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    Philox4 out = {{c0, c1, c2, c3}};
    return out;
}

// Philox4x32-10: the generator of every stream.
GNP_HD Philox4 philox4x32_10(u32 c0, u32 c1, u32 c2, u32 c3, u32 k0, u32 k1) {
    return philox4x32_r<10>(c0, c1, c2, c3, k0, k1);
}

// Block `block` of the stream of row `rid` at draw `draw` (mapping version 1).
GNP_HD Philox4 stream_block(u32 k0, u32 k1, i64 rid, u64 block, u32 draw) {
    const u64 r = static_cast<u64>(rid);
    return philox4x32_10(static_cast<u32>(block), draw, static_cast<u32>(r),
                         static_cast<u32>(r >> 32), k0, k1);
}

// Open-interval float32 uniform from one 32-bit word: [2**-24, 1 - 2**-24].
GNP_HD float uniform_f32(u32 w) {
    return static_cast<float>((w >> 8) | 1u) * 5.9604644775390625e-08f;  // 2**-24
}

// Open-interval float64 uniform from two 32-bit words (hi first):
// [2**-53, 1 - 2**-53].
GNP_HD double uniform_f64(u32 hi, u32 lo) {
    const u64 x = (static_cast<u64>(hi) << 32) | lo;
    return static_cast<double>((x >> 11) | 1ull) * 1.1102230246251565e-16;  // 2**-53
}

GNP_HD float gumbel_f32(u32 w) { return -logf(-logf(uniform_f32(w))); }

GNP_HD double gumbel_f64(u32 hi, u32 lo) { return -log(-log(uniform_f64(hi, lo))); }

// Per-dtype view of a Philox block: W elements per block, and the Gumbel
// noise of element i < W of the block.
template <typename T>
struct Noise;

template <>
struct Noise<float> {
    static constexpr int W = 4;
    GNP_HD static float uniform(const Philox4& p, int i) { return uniform_f32(p.w[i]); }
    GNP_HD static float gumbel(const Philox4& p, int i) { return gumbel_f32(p.w[i]); }
};

template <>
struct Noise<double> {
    static constexpr int W = 2;
    GNP_HD static double uniform(const Philox4& p, int i) {
        return uniform_f64(p.w[2 * i], p.w[2 * i + 1]);
    }
    GNP_HD static double gumbel(const Philox4& p, int i) {
        return gumbel_f64(p.w[2 * i], p.w[2 * i + 1]);
    }
};

// Gumbel noise of element j of row `rid` at draw `draw`, one element at a
// time (the kernels draw whole blocks; this is the reference entry point).
template <typename T>
GNP_HD T gumbel_element(u32 k0, u32 k1, i64 rid, u64 j, u32 draw) {
    const Philox4 p = stream_block(k0, k1, rid, j / Noise<T>::W, draw);
    return Noise<T>::gumbel(p, static_cast<int>(j % Noise<T>::W));
}

template <typename T>
GNP_HD T uniform_element(u32 k0, u32 k1, i64 rid, u64 j, u32 draw) {
    const Philox4 p = stream_block(k0, k1, rid, j / Noise<T>::W, draw);
    return Noise<T>::uniform(p, static_cast<int>(j % Noise<T>::W));
}

}  // namespace gnp

#endif  // GUMBEL_NP_PHILOX_CUH
