// CUDA kernels of the softmax family: logsumexp, softmax, log_softmax and
// their backward passes.  Twin of softmax.py, with its semantics: the row
// maximum propagates NaN, so a NaN row gives NaN; an all -inf row has
// logsumexp -inf and softmax NaN; a row holding +inf has logsumexp +inf and
// softmax/log_softmax NaN.
//
// Layout: C-contiguous (rows, k) arrays of float, double or __half, 64-bit
// indexing.  Each kernel is a template on its storage type S; it computes in
// Storage<S>::T, which is S itself for float and double and float for __half:
// half data is loaded and stored as __half (converted with __half2float and
// __float2half_rn) and everything in between, the reductions included, runs
// in float, exactly as the float instantiation does on the same values.  So a
// half result is the float result on the half-rounded input, rounded once.
//
// Launch geometry (chosen by cuda.py, which must agree with the constants
// below), the `lanes` argument:
//
// * lanes in {1, 2, 4, ..., 32}: rows of up to 1024 elements, blocks of 256
//   threads, `lanes` threads per row (a power of two, at most a warp, that
//   gives a short row a few elements per thread), so a warp holds 32 / lanes
//   rows and a row of 16 elements does not leave 16 lanes idle;
// * lanes == 0: longer rows, one block of ROW_BLOCK threads per row.
//
// Rows are taken in a grid-stride loop.  Reductions are xor butterflies with
// __shfl_xor_sync (every lane ends with the same value, since floating-point
// addition and the NaN-propagating maximum are commutative), plus one
// shared-memory step across the warps of a block in block-per-row mode.  Every
// kernel reads its input once from global memory where the row fits the
// per-thread register cache (CACHE elements per thread: the whole row up to
// 1024 floats with a warp, 16384 floats with a block) and re-reads only the
// part beyond it.  No fast-math: -inf masking relies on IEEE inf/NaN.

#ifndef GUMBEL_NP_SOFTMAX_CU
#define GUMBEL_NP_SOFTMAX_CU

#include <cuda_fp16.h>

#include "philox.cuh"

// Threads of a block-per-row launch; warp-per-row launches use 256.  Must
// match ROW_BLOCK and WARP_BLOCK in cuda.py.
#define GNP_ROW_BLOCK 512
#define GNP_BOUNDS __launch_bounds__(GNP_ROW_BLOCK)

namespace gnp {

constexpr int WARP = 32;

// Per-dtype constants and math.  CACHE is the number of row elements each
// thread keeps in registers (a compile-time size, so the array lives in
// registers: every index into it is a constant after unrolling).
template <typename T>
struct Num;

template <>
struct Num<float> {
    static constexpr int CACHE = 32;
    __device__ static float inf() { return __int_as_float(0x7f800000); }
    __device__ static float nan() { return __int_as_float(0x7fffffff); }
};

template <>
struct Num<double> {
    static constexpr int CACHE = 16;
    __device__ static double inf() { return __longlong_as_double(0x7ff0000000000000ll); }
    __device__ static double nan() { return __longlong_as_double(0x7fffffffffffffffll); }
};

// Storage type S -> compute type T, and the conversions of loads and stores.
template <typename S>
struct Storage {
    typedef S T;
    __device__ static T load(S x) { return x; }
    __device__ static S store(T x) { return x; }
};

template <>
struct Storage<__half> {
    typedef float T;
    __device__ static float load(__half x) { return __half2float(x); }
    __device__ static __half store(float x) { return __float2half_rn(x); }
};

__device__ __forceinline__ float exp_t(float x) { return expf(x); }
__device__ __forceinline__ double exp_t(double x) { return exp(x); }
__device__ __forceinline__ float log_t(float x) { return logf(x); }
__device__ __forceinline__ double log_t(double x) { return log(x); }
__device__ __forceinline__ float log1p_t(float x) { return log1pf(x); }
__device__ __forceinline__ double log1p_t(double x) { return log1p(x); }

// Row sums: a thread adds the terms it caches (at most CACHE) in T and the
// terms beyond its cache, on rows longer than the cache holds (a thread adds
// up to k / GNP_ROW_BLOCK of them), in double; the reduction across the
// threads runs in T.  So a float sum over 2**28 terms stays within about
// (CACHE + 10) ulp of its exact value, as the CPU's blocked sums do, instead
// of drifting by k / GNP_ROW_BLOCK ulp.
template <typename T>
__device__ __forceinline__ T plus_wide(T s, double w) {
    return static_cast<T>(static_cast<double>(s) + w);
}

// log(s) for a row sum s of exp(x - m) whose terms other than the maximum's
// 1 add to t (t = s - 1 without the rounding of s when s < 2, exactly one
// term being 1 then): log1p(t) below 2, where log(s) would lose the relative
// precision of a result near 0 (logsumexp([0, -40]) = 4.2e-18), log(s)
// otherwise.
template <typename T>
__device__ __forceinline__ T log_of_terms(T s, T t) {
    return s < T(2) ? log1p_t(t) : log_t(s);
}

template <typename T>
__device__ __forceinline__ bool is_nan(T x) {
    return x != x;
}

template <typename T>
__device__ __forceinline__ bool is_inf(T x) {
    return x == Num<T>::inf() || x == -Num<T>::inf();
}

// IEEE 754-2019 maximum, as llvm.maximum on the CPU: NaN if either is NaN,
// +0 over -0.  Commutative, so butterfly reductions agree on every lane.
template <typename T>
__device__ __forceinline__ T max_nan(T a, T b) {
    if (a != a || b != b) return a + b;
    if (a == b) return a == T(0) ? a + b : a;
    return a > b ? a : b;
}

struct MaxOp {
    template <typename T>
    __device__ T operator()(T a, T b) const { return max_nan(a, b); }
};

struct SumOp {
    template <typename T>
    __device__ T operator()(T a, T b) const { return a + b; }
};

// (value, index) for arg-max reductions.  Order: NaN first, then larger
// value, then lower index; a total order, so the reduction is commutative and
// ties go to the lowest index.
template <typename T>
struct ArgMax {
    T v;
    i64 i;
};

struct ArgMaxOp {
    template <typename T>
    __device__ ArgMax<T> operator()(ArgMax<T> a, ArgMax<T> b) const {
        const bool an = a.v != a.v, bn = b.v != b.v;
        if (an != bn) return an ? a : b;
        if (!an && a.v != b.v) return a.v > b.v ? a : b;
        return a.i <= b.i ? a : b;
    }
};

__device__ __forceinline__ float shfl_xor(float v, int o) {
    return __shfl_xor_sync(0xffffffffu, v, o);
}
__device__ __forceinline__ double shfl_xor(double v, int o) {
    return __shfl_xor_sync(0xffffffffu, v, o);
}
__device__ __forceinline__ i64 shfl_xor(i64 v, int o) {
    return __shfl_xor_sync(0xffffffffu, v, o);
}
template <typename T>
__device__ __forceinline__ ArgMax<T> shfl_xor(ArgMax<T> a, int o) {
    ArgMax<T> b;
    b.v = shfl_xor(a.v, o);
    b.i = shfl_xor(a.i, o);
    return b;
}

// Reduce v over the threads of a row.  Every thread of the warp (lanes > 0) or
// of the block (lanes == 0) must call it, whether its row is valid or not.
template <typename V, typename Op>
__device__ __forceinline__ V row_reduce(V v, Op op, V identity, int lanes) {
    const int width = lanes > 0 ? lanes : WARP;
    for (int o = width >> 1; o > 0; o >>= 1) v = op(v, shfl_xor(v, o));
    if (lanes == 0) {
        __shared__ V partial[WARP];
        const int warp = threadIdx.x / WARP, lane = threadIdx.x % WARP;
        __syncthreads();  // the previous reduction's reads are done
        if (lane == 0) partial[warp] = v;
        __syncthreads();
        v = lane < static_cast<int>(blockDim.x / WARP) ? partial[lane] : identity;
        for (int o = WARP >> 1; o > 0; o >>= 1) v = op(v, shfl_xor(v, o));
    }
    return v;
}

// Which rows (work items) this thread works on, and its place in the row.
struct Rows {
    int width;  // threads per row
    int rank;   // this thread's index among them
    i64 first;  // first item of this thread's warp (or block) ...
    i64 step;   // ... and the stride of the grid-stride loop
    int sub;    // this thread's row within its warp: item = first + sub
};

__device__ __forceinline__ Rows rows_of(int lanes) {
    Rows g;
    if (lanes > 0) {
        const int per_warp = WARP / lanes;
        const i64 warps = static_cast<i64>(gridDim.x) * (blockDim.x / WARP);
        g.width = lanes;
        g.rank = threadIdx.x % lanes;
        const i64 warp = static_cast<i64>(blockIdx.x) * (blockDim.x / WARP) + threadIdx.x / WARP;
        g.first = warp * per_warp;
        g.step = warps * per_warp;
        g.sub = (threadIdx.x % WARP) / lanes;
    } else {
        g.width = blockDim.x;
        g.rank = threadIdx.x;
        g.first = blockIdx.x;
        g.step = gridDim.x;
        g.sub = 0;
    }
    return g;
}

// Cache slots in use when `units` units are spread over `width` threads.
template <int N>
__device__ __forceinline__ int slots(i64 units, int width) {
    const i64 per = (units + width - 1) / width;
    return per < N ? static_cast<int>(per) : N;
}

// softmax (scale == nullptr) or scale[r] * softmax, the VJP of logsumexp.
template <typename S>
__device__ __forceinline__ void softmax_rows(const S* __restrict__ x, const S* __restrict__ scale,
                                             S* __restrict__ out, i64 rows, i64 k, int lanes) {
    typedef typename Storage<S>::T T;
    typedef Storage<S> St;
    constexpr int N = Num<T>::CACHE;
    const Rows g = rows_of(lanes);
    for (i64 r0 = g.first; r0 < rows; r0 += g.step) {
        const i64 r = r0 + g.sub;
        const i64 kr = r < rows ? k : 0;  // an idle thread still joins the reductions
        const S* xr = x + r * k;
        S* outr = out + r * k;
        const int n = slots<N>(kr, g.width);
        const i64 tail = g.rank + static_cast<i64>(N) * g.width;
        T c[N];
#pragma unroll
        for (int i = 0; i < N; ++i) {
            if (i >= n) break;
            const i64 j = g.rank + static_cast<i64>(i) * g.width;
            c[i] = j < kr ? St::load(xr[j]) : -Num<T>::inf();
        }
        T m = -Num<T>::inf();
#pragma unroll
        for (int i = 0; i < N; ++i) {
            if (i >= n) break;
            m = max_nan(m, c[i]);
        }
        for (i64 j = tail; j < kr; j += g.width) m = max_nan(m, St::load(xr[j]));
        m = row_reduce(m, MaxOp(), -Num<T>::inf(), lanes);

        T s = T(0);
#pragma unroll
        for (int i = 0; i < N; ++i) {
            if (i >= n) break;
            if (g.rank + static_cast<i64>(i) * g.width < kr) {
                c[i] = exp_t(c[i] - m);
                s += c[i];
            }
        }
        double w = 0.0;
        for (i64 j = tail; j < kr; j += g.width) w += exp_t(St::load(xr[j]) - m);
        s = row_reduce(plus_wide(s, w), SumOp(), T(0), lanes);

        const T f = (scale != nullptr && kr > 0 ? St::load(scale[r]) : T(1)) / s;
#pragma unroll
        for (int i = 0; i < N; ++i) {
            if (i >= n) break;
            const i64 j = g.rank + static_cast<i64>(i) * g.width;
            if (j < kr) outr[j] = St::store(c[i] * f);
        }
        for (i64 j = tail; j < kr; j += g.width) {
            outr[j] = St::store(exp_t(St::load(xr[j]) - m) * f);
        }
    }
}

}  // namespace gnp

// out[r] = log(sum(exp(x[r]))) = m + log(sum(exp(x - m))), or m when m is
// +-inf (the shifted sum is NaN then).
template <typename S>
__global__ void GNP_BOUNDS logsumexp_fwd(const S* __restrict__ x, S* __restrict__ out,
                                         gnp::i64 rows, gnp::i64 k, int lanes) {
    using namespace gnp;
    typedef typename Storage<S>::T T;
    typedef Storage<S> St;
    // Four slots fewer than the other kernels: the registers of the two
    // double tail sums (plus_wide) and of t, which would otherwise spill.
    constexpr int N = Num<T>::CACHE - 4;
    const Rows g = rows_of(lanes);
    for (i64 r0 = g.first; r0 < rows; r0 += g.step) {
        const i64 r = r0 + g.sub;
        const i64 kr = r < rows ? k : 0;
        const S* xr = x + r * k;
        const int n = slots<N>(kr, g.width);
        const i64 tail = g.rank + static_cast<i64>(N) * g.width;
        T c[N];
#pragma unroll
        for (int i = 0; i < N; ++i) {
            if (i >= n) break;
            const i64 j = g.rank + static_cast<i64>(i) * g.width;
            c[i] = j < kr ? St::load(xr[j]) : -Num<T>::inf();
        }
        T m = -Num<T>::inf();
#pragma unroll
        for (int i = 0; i < N; ++i) {
            if (i >= n) break;
            m = max_nan(m, c[i]);
        }
        for (i64 j = tail; j < kr; j += g.width) m = max_nan(m, St::load(xr[j]));
        m = row_reduce(m, MaxOp(), -Num<T>::inf(), lanes);

        // s = sum of the terms, t = sum of those below the maximum's.
        T s = T(0), t = T(0);
#pragma unroll
        for (int i = 0; i < N; ++i) {
            if (i >= n) break;
            if (g.rank + static_cast<i64>(i) * g.width < kr) {
                const T d = c[i] - m, e = exp_t(d);
                s += e;
                t += d < T(0) ? e : T(0);
            }
        }
        double w = 0.0, wt = 0.0;
        for (i64 j = tail; j < kr; j += g.width) {
            const T d = St::load(xr[j]) - m, e = exp_t(d);
            w += e;
            wt += d < T(0) ? e : T(0);
        }
        s = row_reduce(plus_wide(s, w), SumOp(), T(0), lanes);
        t = row_reduce(plus_wide(t, wt), SumOp(), T(0), lanes);
        if (r < rows && g.rank == 0) out[r] = St::store(is_inf(m) ? m : m + log_of_terms(s, t));
    }
}

// out = exp(x - m) * (1 / sum(exp(x - m))) per row.
template <typename S>
__global__ void GNP_BOUNDS softmax_fwd(const S* __restrict__ x, S* __restrict__ out,
                                       gnp::i64 rows, gnp::i64 k, int lanes) {
    gnp::softmax_rows<S>(x, nullptr, out, rows, k, lanes);
}

// out = (x - m) - log(sum(exp(x - m))) per row.
template <typename S>
__global__ void GNP_BOUNDS log_softmax_fwd(const S* __restrict__ x, S* __restrict__ out,
                                           gnp::i64 rows, gnp::i64 k, int lanes) {
    using namespace gnp;
    typedef typename Storage<S>::T T;
    typedef Storage<S> St;
    constexpr int N = Num<T>::CACHE;
    const Rows g = rows_of(lanes);
    for (i64 r0 = g.first; r0 < rows; r0 += g.step) {
        const i64 r = r0 + g.sub;
        const i64 kr = r < rows ? k : 0;
        const S* xr = x + r * k;
        S* outr = out + r * k;
        const int n = slots<N>(kr, g.width);
        const i64 tail = g.rank + static_cast<i64>(N) * g.width;
        T c[N];
#pragma unroll
        for (int i = 0; i < N; ++i) {
            if (i >= n) break;
            const i64 j = g.rank + static_cast<i64>(i) * g.width;
            c[i] = j < kr ? St::load(xr[j]) : -Num<T>::inf();
        }
        T m = -Num<T>::inf();
#pragma unroll
        for (int i = 0; i < N; ++i) {
            if (i >= n) break;
            m = max_nan(m, c[i]);
        }
        for (i64 j = tail; j < kr; j += g.width) m = max_nan(m, St::load(xr[j]));
        m = row_reduce(m, MaxOp(), -Num<T>::inf(), lanes);

        T s = T(0), t = T(0);
#pragma unroll
        for (int i = 0; i < N; ++i) {
            if (i >= n) break;
            if (g.rank + static_cast<i64>(i) * g.width < kr) {
                c[i] = c[i] - m;
                const T e = exp_t(c[i]);
                s += e;
                t += c[i] < T(0) ? e : T(0);
            }
        }
        double w = 0.0, wt = 0.0;
        for (i64 j = tail; j < kr; j += g.width) {
            const T d = St::load(xr[j]) - m, e = exp_t(d);
            w += e;
            wt += d < T(0) ? e : T(0);
        }
        s = row_reduce(plus_wide(s, w), SumOp(), T(0), lanes);
        t = row_reduce(plus_wide(t, wt), SumOp(), T(0), lanes);

        const T ls = log_of_terms(s, t);
#pragma unroll
        for (int i = 0; i < N; ++i) {
            if (i >= n) break;
            const i64 j = g.rank + static_cast<i64>(i) * g.width;
            if (j < kr) outr[j] = St::store(c[i] - ls);
        }
        for (i64 j = tail; j < kr; j += g.width) {
            outr[j] = St::store((St::load(xr[j]) - m) - ls);
        }
    }
}

// out = g[r] * softmax(x), the VJP of logsumexp (g has one value per row).
template <typename S>
__global__ void GNP_BOUNDS logsumexp_bwd(const S* __restrict__ g, const S* __restrict__ x,
                                         S* __restrict__ out, gnp::i64 rows, gnp::i64 k,
                                         int lanes) {
    gnp::softmax_rows<S>(x, g, out, rows, k, lanes);
}

// out = y * (g - <g, y>) per row.
template <typename S>
__global__ void GNP_BOUNDS softmax_bwd(const S* __restrict__ g, const S* __restrict__ y,
                                       S* __restrict__ out, gnp::i64 rows, gnp::i64 k,
                                       int lanes) {
    using namespace gnp;
    typedef typename Storage<S>::T T;
    typedef Storage<S> St;
    constexpr int N = Num<T>::CACHE / 2;  // two cached arrays
    const Rows rg = rows_of(lanes);
    for (i64 r0 = rg.first; r0 < rows; r0 += rg.step) {
        const i64 r = r0 + rg.sub;
        const i64 kr = r < rows ? k : 0;
        const S* gr = g + r * k;
        const S* yr = y + r * k;
        S* outr = out + r * k;
        const int n = slots<N>(kr, rg.width);
        const i64 tail = rg.rank + static_cast<i64>(N) * rg.width;
        T cg[N], cy[N];
#pragma unroll
        for (int i = 0; i < N; ++i) {
            if (i >= n) break;
            const i64 j = rg.rank + static_cast<i64>(i) * rg.width;
            cg[i] = j < kr ? St::load(gr[j]) : T(0);
            cy[i] = j < kr ? St::load(yr[j]) : T(0);
        }
        T d = T(0);
#pragma unroll
        for (int i = 0; i < N; ++i) {
            if (i >= n) break;
            if (rg.rank + static_cast<i64>(i) * rg.width < kr) d += cg[i] * cy[i];
        }
        double w = 0.0;
        for (i64 j = tail; j < kr; j += rg.width) w += St::load(gr[j]) * St::load(yr[j]);
        d = row_reduce(plus_wide(d, w), SumOp(), T(0), lanes);
#pragma unroll
        for (int i = 0; i < N; ++i) {
            if (i >= n) break;
            const i64 j = rg.rank + static_cast<i64>(i) * rg.width;
            if (j < kr) outr[j] = St::store(cy[i] * (cg[i] - d));
        }
        for (i64 j = tail; j < kr; j += rg.width) {
            outr[j] = St::store(St::load(yr[j]) * (St::load(gr[j]) - d));
        }
    }
}

// out = g - exp(y) * sum(g) per row.
template <typename S>
__global__ void GNP_BOUNDS log_softmax_bwd(const S* __restrict__ g, const S* __restrict__ y,
                                           S* __restrict__ out, gnp::i64 rows, gnp::i64 k,
                                           int lanes) {
    using namespace gnp;
    typedef typename Storage<S>::T T;
    typedef Storage<S> St;
    constexpr int N = Num<T>::CACHE;
    const Rows rg = rows_of(lanes);
    for (i64 r0 = rg.first; r0 < rows; r0 += rg.step) {
        const i64 r = r0 + rg.sub;
        const i64 kr = r < rows ? k : 0;
        const S* gr = g + r * k;
        const S* yr = y + r * k;
        S* outr = out + r * k;
        const int n = slots<N>(kr, rg.width);
        const i64 tail = rg.rank + static_cast<i64>(N) * rg.width;
        T cg[N];
#pragma unroll
        for (int i = 0; i < N; ++i) {
            if (i >= n) break;
            const i64 j = rg.rank + static_cast<i64>(i) * rg.width;
            cg[i] = j < kr ? St::load(gr[j]) : T(0);
        }
        T s = T(0);
#pragma unroll
        for (int i = 0; i < N; ++i) {
            if (i >= n) break;
            s += cg[i];
        }
        double w = 0.0;
        for (i64 j = tail; j < kr; j += rg.width) w += St::load(gr[j]);
        s = row_reduce(plus_wide(s, w), SumOp(), T(0), lanes);
#pragma unroll
        for (int i = 0; i < N; ++i) {
            if (i >= n) break;
            const i64 j = rg.rank + static_cast<i64>(i) * rg.width;
            if (j < kr) outr[j] = St::store(cg[i] - exp_t(St::load(yr[j])) * s);
        }
        for (i64 j = tail; j < kr; j += rg.width) {
            outr[j] = St::store(St::load(gr[j]) - exp_t(St::load(yr[j])) * s);
        }
    }
}

#endif  // GUMBEL_NP_SOFTMAX_CU
