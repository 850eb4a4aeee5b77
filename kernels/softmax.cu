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

#include "rows.cuh"

namespace gnp {

// log(s) for a row sum s of exp(x - m) whose terms other than the maximum's
// 1 add to t (t = s - 1 without the rounding of s when s < 2, exactly one
// term being 1 then): log1p(t) below 2, where log(s) would lose the relative
// precision of a result near 0 (logsumexp([0, -40]) = 4.2e-18), log(s)
// otherwise.
template <typename T>
__device__ __forceinline__ T log_of_terms(T s, T t) {
    return s < T(2) ? log1p_t(t) : log_t(s);
}

// Adds to a thread's s and t (see log_of_terms) the terms exp(x_j - m) of
// its uncached elements j = tail, tail + width, ... < kr, in double
// (plus_wide); logsumexp and log_softmax.
template <typename S>
__device__ __forceinline__ void add_uncached_terms(const S* __restrict__ xr, i64 tail, i64 kr, int width,
                                                   typename Storage<S>::T m, typename Storage<S>::T& s,
                                                   typename Storage<S>::T& t) {
    typedef typename Storage<S>::T T;
    double w = 0.0, wt = 0.0;
    for (i64 j = tail; j < kr; j += width) {
        const T d = Storage<S>::load(xr[j]) - m, e = exp_t(d);
        w += e;
        wt += d < T(0) ? e : T(0);
    }
    s = plus_wide(s, w);
    t = plus_wide(t, wt);
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
        add_uncached_terms<S>(xr, tail, kr, g.width, m, s, t);
        s = row_reduce(s, SumOp(), T(0), lanes);
        t = row_reduce(t, SumOp(), T(0), lanes);
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
        add_uncached_terms<S>(xr, tail, kr, g.width, m, s, t);
        s = row_reduce(s, SumOp(), T(0), lanes);
        t = row_reduce(t, SumOp(), T(0), lanes);

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
