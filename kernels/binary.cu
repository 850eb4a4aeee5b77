// CUDA kernels of the binary (two-class) family: logistic noise, Bernoulli
// draws, the binary Concrete (Gumbel-sigmoid) sample and the hard-concrete
// gate with their backward passes, and the hard concrete's expected L0 norm.
// Twin of binary.py, with its semantics.
//
// Every kernel is element-wise and flat: one thread per Philox block
// ("quad": 4 float32 or 2 float64 elements of a row) over the whole (rows, k)
// array, grid-stride, as gumbel_fwd.  The last axis indexes the stream as
// the category axis does for the Gumbel family: element j of the row with id
// rid at draw d takes the uniform of counter (j / W, d + LOGISTIC_DOMAIN, rid),
// the logistic stream domain (philox.cuh), so under one key the logistic and
// the Gumbel noise are independent.  Logistic noise is log(u) - log1p(-u),
// evaluated as log(u / (1 - u)) as in binary.py: 1 - u is exact for these
// uniforms, so the quotient is rounded once; the accurate logf/log (never the
// fast intrinsics: the tails come from u near 0 and 1).  The scaled logit is
// (x + L) * (1 / tau), the reciprocal of each element's temperature.
//
// The kernels are templates on the storage type S computing in T =
// Storage<S>::T; __half data computes in float and draws the float32 stream.
// Temperatures (one, or one per element) and their gradients are arrays of T.

#ifndef GUMBEL_NP_BINARY_CU
#define GUMBEL_NP_BINARY_CU

#include "philox.cuh"
#include "rows.cuh"

namespace gnp {

// The gate argument of binary_concrete_fwd/_bwd (_ops.GATE_*, same numbers):
// the soft sample, its hard side y > 1/2 (ties to 0), or the hard-concrete
// gate clip(y (hi - lo) + lo, 0, 1).
enum : int { GATE_SOFT = 0, GATE_HARD = 1, GATE_CLIP = 2 };

// The logistic stream domain, in the draw word's top 4 bits
// (_ops.LOGISTIC_DOMAIN << 28).  An enumerator: nvcc warns of a constexpr
// variable that a translation unit does not use.
enum : u32 { LOGISTIC_DOMAIN = 1u << 28 };

template <typename T>
__device__ __forceinline__ T logistic_of(const Philox4& p, int w) {
    const T u = Noise<T>::uniform(p, w);
    return log_t(u / (T(1) - u));
}

// 1 / (1 + exp(-s)) without overflow, from e = exp(-|s|) and q = 1 / (1 +
// e): q for s >= 0, e q below; NaN for NaN.
template <typename T>
__device__ __forceinline__ T sigmoid_t(T s) {
    const T e = exp_t(-(s < T(0) ? -s : s));
    const T q = T(1) / (T(1) + e);
    return s >= T(0) ? q : e * q;
}

// The element range of quad t of a (rows, k) array: row r, first element j0,
// and the number of its elements (W, or fewer at the end of a row).
struct Quad {
    i64 r, j0;
    int n;
};

template <int W>
__device__ __forceinline__ Quad quad_of(i64 t, i64 k) {
    const i64 nq = (k + W - 1) / W;
    Quad q;
    q.r = t / nq;
    q.j0 = (t - q.r * nq) * W;
    const i64 left = k - q.j0;
    q.n = left < W ? static_cast<int>(left) : W;
    return q;
}

__device__ __forceinline__ i64 flat_first() {
    return static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x;
}

__device__ __forceinline__ i64 flat_stride() { return static_cast<i64>(gridDim.x) * blockDim.x; }

}  // namespace gnp

// Standard logistic noise: out[r, j] = L(key, rid, j, draw), rid = row_ids[r]
// (or r when row_ids is null).
template <typename S>
__global__ void GNP_BOUNDS logistic_fwd(S* __restrict__ out, gnp::i64 rows, gnp::i64 k, gnp::u32 k0,
                                        gnp::u32 k1, const gnp::i64* __restrict__ row_ids,
                                        gnp::u32 draw) {
    using namespace gnp;
    typedef typename Storage<S>::T T;
    constexpr int W = Noise<T>::W;
    const i64 total = rows * ((k + W - 1) / W);
    for (i64 t = flat_first(); t < total; t += flat_stride()) {
        const Quad q = quad_of<W>(t, k);
        const Philox4 p = stream_block(k0, k1, row_id(row_ids, q.r),
                                       static_cast<u64>(q.j0 / W), draw + LOGISTIC_DOMAIN);
        S* o = out + q.r * k + q.j0;
#pragma unroll
        for (int w = 0; w < W; ++w) {
            if (w < q.n) o[w] = Storage<S>::store(logistic_of<T>(p, w));
        }
    }
}

// Bernoulli draws: out[(r k + j) nsamples + d] = logits[r, j] + L(j, draw d)
// > 0 for d < nsamples; a NaN logit gives false and sets *status = 1 (a
// benign race: every writer writes 1).  One thread per (quad, draw).
template <typename S>
__global__ void GNP_BOUNDS bernoulli_fwd(const S* __restrict__ logits, bool* __restrict__ out,
                                         gnp::i64* __restrict__ status, gnp::i64 rows, gnp::i64 k,
                                         gnp::i64 nsamples, gnp::u32 k0, gnp::u32 k1,
                                         const gnp::i64* __restrict__ row_ids) {
    using namespace gnp;
    typedef typename Storage<S>::T T;
    constexpr int W = Noise<T>::W;
    const i64 total = rows * ((k + W - 1) / W) * nsamples;
    for (i64 t = flat_first(); t < total; t += flat_stride()) {
        const i64 d = t % nsamples;
        const Quad q = quad_of<W>(t / nsamples, k);
        const Philox4 p = stream_block(k0, k1, row_id(row_ids, q.r),
                                       static_cast<u64>(q.j0 / W),
                                       static_cast<u32>(d) + LOGISTIC_DOMAIN);
        const S* x = logits + q.r * k + q.j0;
        bool* o = out + (q.r * k + q.j0) * nsamples + d;
        bool nan = false;
#pragma unroll
        for (int w = 0; w < W; ++w) {
            if (w < q.n) {
                const T xv = Storage<S>::load(x[w]);
                nan = nan || is_nan(xv);
                o[w * nsamples] = xv + logistic_of<T>(p, w) > T(0);
            }
        }
        if (nan && d == 0 && status != nullptr) *status = 1;
    }
}

// The binary Concrete sample: y = sigmoid((logits + L) * (1 / tau)), L drawn (draw
// 0, noise_mode NOISE_DRAW), read from noise (NOISE_ARRAY) or 0 (NOISE_NONE);
// tau = taus[i * taus_stride] (taus_stride 0: one temperature).  gate
// GATE_SOFT: out = y; GATE_HARD: out = (y > 1/2) (NaN for NaN); GATE_CLIP:
// out = clip(y (hi - lo) + lo, 0, 1); in the last two y goes to out_soft
// unless it is null.
template <typename S>
__global__ void GNP_BOUNDS binary_concrete_fwd(
    const S* __restrict__ logits, S* __restrict__ out, gnp::i64 rows, gnp::i64 k, gnp::u32 k0,
    gnp::u32 k1, const gnp::i64* __restrict__ row_ids,
    const typename gnp::Storage<S>::T* __restrict__ taus, gnp::i64 taus_stride, int noise_mode,
    const S* __restrict__ noise, S* __restrict__ out_soft, int gate, double lo, double hi) {
    using namespace gnp;
    typedef typename Storage<S>::T T;
    typedef Storage<S> St;
    constexpr int W = Noise<T>::W;
    const T wd = static_cast<T>(hi - lo);
    const T b = static_cast<T>(lo);
    const i64 total = rows * ((k + W - 1) / W);
    for (i64 t = flat_first(); t < total; t += flat_stride()) {
        const Quad q = quad_of<W>(t, k);
        Philox4 p = {{0u, 0u, 0u, 0u}};
        if (noise_mode == NOISE_DRAW) {
            p = stream_block(k0, k1, row_id(row_ids, q.r), static_cast<u64>(q.j0 / W),
                             LOGISTIC_DOMAIN);
        }
        const i64 e0 = q.r * k + q.j0;
#pragma unroll
        for (int w = 0; w < W; ++w) {
            if (w >= q.n) continue;
            const i64 e = e0 + w;
            const T x = St::load(logits[e]);
            const T z = noise_mode == NOISE_DRAW    ? x + logistic_of<T>(p, w)
                        : noise_mode == NOISE_ARRAY ? x + St::load(noise[e])
                                                    : x;
            const T y = sigmoid_t(z * (T(1) / taus[e * taus_stride]));
            if (gate == GATE_SOFT) {
                out[e] = St::store(y);
                continue;
            }
            if (out_soft != nullptr) out_soft[e] = St::store(y);
            if (gate == GATE_HARD) {
                out[e] = St::store(is_nan(y) ? y : (y > T(0.5) ? T(1) : T(0)));
            } else {
                const T v = y * wd + b;
                out[e] = St::store(v < T(0) ? T(0) : (v > T(1) ? T(1) : v));
            }
        }
    }
}

// VJP of y = sigmoid(s), s = (logits + L) / tau, from y: out = g y (1 - y) /
// tau, times (hi - lo) inside the gate's open interval 0 < y (hi - lo) + lo
// < 1 and 0 outside it when gate is GATE_CLIP; when dtaus is not null, dtaus
// = -out s with s = log(y) - log(1 - y) (0 where y (1 - y) is 0).
template <typename S>
__global__ void GNP_BOUNDS binary_concrete_bwd(const S* __restrict__ g, const S* __restrict__ y,
                                               const typename gnp::Storage<S>::T* __restrict__ taus,
                                               gnp::i64 taus_stride, S* __restrict__ out,
                                               typename gnp::Storage<S>::T* __restrict__ dtaus,
                                               gnp::i64 rows, gnp::i64 k, int gate, double lo,
                                               double hi) {
    using namespace gnp;
    typedef typename Storage<S>::T T;
    typedef Storage<S> St;
    constexpr int W = Noise<T>::W;
    const T wd = static_cast<T>(hi - lo);
    const T b = static_cast<T>(lo);
    const bool clip = gate == GATE_CLIP;
    const i64 total = rows * ((k + W - 1) / W);
    for (i64 t = flat_first(); t < total; t += flat_stride()) {
        const Quad q = quad_of<W>(t, k);
        const i64 e0 = q.r * k + q.j0;
#pragma unroll
        for (int w = 0; w < W; ++w) {
            if (w >= q.n) continue;
            const i64 e = e0 + w;
            const T yi = St::load(y[e]);
            const T v = yi * wd + b;
            const T c = clip ? ((v > T(0) && v < T(1)) ? wd : T(0)) : T(1);
            const T d = yi * (T(1) - yi);
            const T o = St::load(g[e]) * c * d / taus[e * taus_stride];
            out[e] = St::store(o);
            if (dtaus != nullptr) {
                const T s = log_t(yi) - log_t(T(1) - yi);
                dtaus[e] = d == T(0) ? T(0) : -(o * s);
            }
        }
    }
}

// P(gate != 0) = sigmoid(logits - tau log(-lo / hi)).
template <typename S>
__global__ void GNP_BOUNDS hard_concrete_l0_fwd(const S* __restrict__ logits, S* __restrict__ out,
                                                gnp::i64 rows, gnp::i64 k,
                                                const typename gnp::Storage<S>::T* __restrict__ taus,
                                                gnp::i64 taus_stride, double lo, double hi) {
    using namespace gnp;
    typedef typename Storage<S>::T T;
    typedef Storage<S> St;
    constexpr int W = Noise<T>::W;
    const T c = static_cast<T>(log(-lo / hi));
    const i64 total = rows * ((k + W - 1) / W);
    for (i64 t = flat_first(); t < total; t += flat_stride()) {
        const Quad q = quad_of<W>(t, k);
        const i64 e0 = q.r * k + q.j0;
#pragma unroll
        for (int w = 0; w < W; ++w) {
            if (w >= q.n) continue;
            const i64 e = e0 + w;
            out[e] = St::store(sigmoid_t(St::load(logits[e]) - taus[e * taus_stride] * c));
        }
    }
}

// VJP of hard_concrete_l0_fwd: with a = logits - tau c, c = log(-lo / hi),
// out = g e / (1 + e)^2, e = exp(-|a|) (p (1 - p) without cancellation), and
// dtaus = -c out when dtaus is not null.
template <typename S>
__global__ void GNP_BOUNDS hard_concrete_l0_bwd(const S* __restrict__ g, const S* __restrict__ logits,
                                                const typename gnp::Storage<S>::T* __restrict__ taus,
                                                gnp::i64 taus_stride, S* __restrict__ out,
                                                typename gnp::Storage<S>::T* __restrict__ dtaus,
                                                gnp::i64 rows, gnp::i64 k, double lo, double hi) {
    using namespace gnp;
    typedef typename Storage<S>::T T;
    typedef Storage<S> St;
    constexpr int W = Noise<T>::W;
    const T c = static_cast<T>(log(-lo / hi));
    const i64 total = rows * ((k + W - 1) / W);
    for (i64 t = flat_first(); t < total; t += flat_stride()) {
        const Quad q = quad_of<W>(t, k);
        const i64 e0 = q.r * k + q.j0;
#pragma unroll
        for (int w = 0; w < W; ++w) {
            if (w >= q.n) continue;
            const i64 e = e0 + w;
            const T a = St::load(logits[e]) - taus[e * taus_stride] * c;
            const T ex = exp_t(-(a < T(0) ? -a : a));
            const T o = St::load(g[e]) * (ex / ((T(1) + ex) * (T(1) + ex)));
            out[e] = St::store(o);
            if (dtaus != nullptr) dtaus[e] = -(c * o);
        }
    }
}

#endif  // GUMBEL_NP_BINARY_CU
