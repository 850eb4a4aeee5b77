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
//
// The passes over a row (its load and maximum, the exponential sum and the
// scaled output of softmax, the log-normaliser of logsumexp and log_softmax,
// the dot product of two rows) are those of rows.cuh, on a share of single
// elements (Share<1, N>); gumbel.cu and estimators.cu use the same ones.

#ifndef GUMBEL_NP_SOFTMAX_CU
#define GUMBEL_NP_SOFTMAX_CU

#include "rows.cuh"

namespace gnp {

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
        const Share<1, N> sh = share_of<1, N>(g, kr);
        T c[N];
        const T m = load_row_max(c, xr, sh, lanes);
        const auto term = [&](T v) { return exp_t(v - m); };
        const auto at = [&](int, int, i64 j) { return exp_t(St::load(xr[j]) - m); };
        const T s = row_term_sum(c, sh, lanes, term, NoBlock(), at);
        const T f = (scale != nullptr && kr > 0 ? St::load(scale[r]) : T(1)) / s;
        each_scaled(c, sh, f, NoBlock(), at, [&](i64 j, T y) { outr[j] = St::store(y); });
    }
}

}  // namespace gnp

// out[r] = log(sum(exp(x[r]))) = m + log(sum(exp(x - m))), or m when m is
// +-inf (the shifted sum is NaN then).
template <typename S>
__global__ void GNP_BOUNDS_TWO_BLOCKS logsumexp_fwd(const S* __restrict__ x, S* __restrict__ out,
                                                    gnp::i64 rows, gnp::i64 k, int lanes) {
    using namespace gnp;
    typedef typename Storage<S>::T T;
    typedef Storage<S> St;
    // Four slots fewer than the other kernels, for the registers of the two
    // double tail sums (plus_wide) and of t: the kernel then fits in the 64
    // registers of two resident blocks (60 to 62 without spilling, nvcc 13.0
    // -ftz=true, sm_80 and sm_90; 64 to 70 with one resident block).
    constexpr int N = Num<T>::CACHE - 4;
    const Rows g = rows_of(lanes);
    for (i64 r0 = g.first; r0 < rows; r0 += g.step) {
        const i64 r = r0 + g.sub;
        const i64 kr = r < rows ? k : 0;
        const S* xr = x + r * k;
        const Share<1, N> sh = share_of<1, N>(g, kr);
        T c[N];
        const T m = load_row_max(c, xr, sh, lanes);
        // s = sum of the terms, t = sum of those below the maximum's.
        T s = T(0), t = T(0);
        add_cached_terms<false>(c, sh, m, s, t);
        add_uncached_terms(xr, sh, m, s, t);
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
        const Share<1, N> sh = share_of<1, N>(g, kr);
        T c[N];
        const RowLog<T> q = load_row_log(c, xr, sh, lanes);
        const T m = q.m, ls = q.ls;
        each_cached(sh, NoBlock(), [&](int i, int, i64 j, int) { outr[j] = St::store(c[i] - ls); });
        const i64 tail = sh.tail;
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
        const Share<1, N> sh = share_of<1, N>(rg, kr);
        T cg[N], cy[N];
        const T d = load_row_dot(cg, cy, gr, yr, sh, lanes);
        each_cached(sh, NoBlock(), [&](int i, int, i64 j, int) {
            outr[j] = St::store(cy[i] * (cg[i] - d));
        });
        each_uncached(sh, NoBlock(), [&](int, i64 j, int) {
            outr[j] = St::store(St::load(yr[j]) * (St::load(gr[j]) - d));
        });
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
        const Share<1, N> sh = share_of<1, N>(rg, kr);
        T cg[N];
        load_row(cg, gr, sh, T(0));
        T s = T(0);
#pragma unroll
        for (int i = 0; i < N; ++i) {
            if (i >= sh.n) break;
            s += cg[i];
        }
        double w = 0.0;
        each_uncached(sh, NoBlock(), [&](int, i64 j, int) { w += St::load(gr[j]); });
        s = row_reduce(plus_wide(s, w), SumOp(), T(0), lanes);
        each_cached(sh, NoBlock(), [&](int i, int, i64 j, int) {
            outr[j] = St::store(cg[i] - exp_t(St::load(yr[j])) * s);
        });
        each_uncached(sh, NoBlock(), [&](int, i64 j, int) {
            outr[j] = St::store(St::load(gr[j]) - exp_t(St::load(yr[j])) * s);
        });
    }
}

#endif  // GUMBEL_NP_SOFTMAX_CU
