// CUDA kernels of the categorical distribution's log-probability, entropy
// and KL divergence, their backward passes, and the score-function
// (REINFORCE) estimator.  Twin of estimators.py, with its semantics.
//
// Every kernel is built on the row passes of rows.cuh, on a share of single
// elements (Share<1, N>), in the geometry of softmax.cu (the `lanes`
// argument: a warp or less per row up to 1024 elements, a block of
// GNP_ROW_BLOCK threads per row beyond; grid-stride over rows; idle threads
// join every reduction), and is a template on the storage type S computing in
// T = Storage<S>::T (float for __half data, which is loaded and stored as
// half and rounded once on the way out).  So:
//
// * a row's log-normaliser (m, s, ls) is load_row_log's, log_softmax's own,
//   with its log1p precision for peaked rows: categorical_log_prob_fwd is
//   log_softmax gathered at the indices, bit for bit the log_softmax element;
// * score_bwd is softmax_fwd's passes with the row scale -sum_s w_s, then the
//   weights added at the samples' indices in sample order;
// * the entropy and the KL divergence take the exact exponentials
//   e_j = exp(x_j - m) (exp_t, which the sums of load_row_log add up too) and
//   multiply each by its log: a category of probability exactly 0 (a -inf
//   logit) contributes an exact 0, never 0 * -inf.
//
// A row without a distribution (NaN, +inf or all -inf) gives NaN everywhere,
// as log_softmax does: its maximum m is not finite, and m - m (0 otherwise)
// is added where a masked category would give 0.  An index outside [0, k) is
// never read; it gives NaN and sets *status = 1 (a benign race: every writer
// writes 1), from which the public layer raises, so the range check is part
// of the pass that reads the indices.

#ifndef GUMBEL_NP_ESTIMATORS_CU
#define GUMBEL_NP_ESTIMATORS_CU

#include "rows.cuh"

namespace gnp {

// The estimator argument of score_bwd (_ops.SCORE_*, same numbers): the
// weights as given (the backward pass of categorical_log_prob), their mean
// over the samples less an optional baseline array, or less the leave-one-out
// baseline (reinforce).  Enumerators: nvcc warns of a constexpr variable
// that a file compiled without its templates' instances never references.
enum : int { SCORE_SUM = 0, SCORE_MEAN = 1, SCORE_LOO = 2 };

// 0 for a finite m, NaN for NaN or +-inf.  The gradients give it where
// e_j = 0 instead of 0, so a row without a distribution is NaN there too (a
// row holding +inf has e_j = 0 at its finite logits); the forward results
// add it as the CPU kernels do, whose clamped sums would not show such a row.
template <typename T>
__device__ __forceinline__ T zero_or_nan(T m) {
    return m - m;
}

// sum_j e_j d_j over a row, e_j = exp(d_j), from the shifted logits d_j =
// x_j - m (the cache c of load_row_log, or xr beyond it), on every thread of
// the row: the entropy's sum.  A term with e_j = 0 is 0 (a masked category:
// never 0 * -inf).
template <int N, typename S>
__device__ __forceinline__ typename Storage<S>::T entropy_sum(const typename Storage<S>::T (&c)[N],
                                                              const S* __restrict__ xr,
                                                              const RowLog<typename Storage<S>::T>& q,
                                                              const Share<1, N>& sh, int lanes) {
    typedef typename Storage<S>::T T;
    const auto term = [](T d) -> T {
        const T e = exp_t(d);
        return e == T(0) ? T(0) : e * d;
    };
    return row_sum<T>(
        sh, lanes, [&](int i, i64) { return term(c[i]); },
        [&](i64 j) { return term(Storage<S>::load(xr[j]) - q.m); });
}

}  // namespace gnp

// out_samples[r, s] = log_softmax(x[r])[i] = (x_i - m) - ls, i = index[r, s],
// or NaN when i is outside [0, k).  The samples of a row are shared among its
// threads (sample s on thread s % width), each reading its x_i from memory:
// they are few and scattered, and the cache holds its elements by slot, which
// only a loop over every slot could select.
template <typename S>
__global__ void GNP_BOUNDS_TWO_BLOCKS categorical_log_prob_fwd(const S* __restrict__ logits,
                                                               const gnp::i64* __restrict__ index,
                                                               S* __restrict__ out_samples,
                                                               gnp::i64* __restrict__ status,
                                                               gnp::i64 rows, gnp::i64 k,
                                                               gnp::i64 nsamples, int lanes) {
    using namespace gnp;
    typedef typename Storage<S>::T T;
    typedef Storage<S> St;
    // logsumexp_fwd's cache (four slots fewer) and bounds: the kernel then
    // fits in the 64 registers of two resident blocks (64, no spills, nvcc
    // 13.0 -ftz=true, sm_80 and sm_90; 72 to 80 with the full cache and one
    // block).
    constexpr int N = Num<T>::CACHE - 4;
    const Rows g = rows_of(lanes);
    for (i64 r0 = g.first; r0 < rows; r0 += g.step) {
        const i64 r = r0 + g.sub;
        const i64 kr = r < rows ? k : 0;  // an idle thread still joins the reductions
        const S* xr = logits + r * k;
        const Share<1, N> sh = share_of<1, N>(g, kr);
        T c[N];
        const RowLog<T> q = load_row_log(c, xr, sh, lanes);
        if (r >= rows) continue;
        const i64* ir = index + r * nsamples;
        S* outr = out_samples + r * nsamples;
        for (i64 s = g.rank; s < nsamples; s += g.width) {
            const i64 i = ir[s];
            const bool ok = i >= 0 && i < k;
            outr[s] = St::store(ok ? (St::load(xr[i]) - q.m) - q.ls : Num<T>::nan());
            if (!ok && status != nullptr) *status = 1;  // every writer writes the same value
        }
    }
}

// out[r] = sum_s w_s (onehot(i_s) - softmax(x[r])), i_s = index[r, s], with
// the weights w_s of `estimator`: weights[r, s] (SCORE_SUM);
// (weights[r, s] - baseline[r, s]) / nsamples, a null baseline meaning 0
// (SCORE_MEAN); (weights[r, s] - mean_t weights[r, t]) / (nsamples - 1)
// (SCORE_LOO, the mean of the weights less the leave-one-out baseline).  As
// the CPU kernel: W = sum_s w_s in sample order, the softmax scaled by
// f = -W / sum_j e_j (softmax_fwd's scaled output, as logsumexp_bwd), then
// w_s added at i_s in sample order.  A row with an index outside [0, k) is
// NaN.
//
// Deterministic without atomics: every thread of the row reads every sample
// in order (the lanes of a warp read the same one at once, a broadcast),
// computes W and the weights itself, and adds the weight of each sample whose
// element is in one of its cache slots to that slot, so each element is
// rounded once, in T, whatever the storage type (half data rounds once, as
// the CPU's float result does; adding into the output row would round a half
// result at every sample).  A thread's cost is O(nsamples), plus a compare
// per slot for each sample of its own (registers cannot be indexed); an
// uncached element (rows beyond the register cache) scans the samples
// itself, O(nsamples) each.
template <typename S>
__global__ void GNP_BOUNDS score_bwd(const S* __restrict__ logits, const gnp::i64* __restrict__ index,
                                     const S* __restrict__ weights, const S* __restrict__ baseline,
                                     S* __restrict__ out, gnp::i64* __restrict__ status, gnp::i64 rows,
                                     gnp::i64 k, gnp::i64 nsamples, int estimator, int lanes) {
    using namespace gnp;
    typedef typename Storage<S>::T T;
    typedef Storage<S> St;
    constexpr int N = Num<T>::CACHE;
    const Rows g = rows_of(lanes);
    for (i64 r0 = g.first; r0 < rows; r0 += g.step) {
        const i64 r = r0 + g.sub;
        const i64 kr = r < rows ? k : 0;  // an idle thread still joins the reductions
        const i64 ns = r < rows ? nsamples : 0;
        const S* xr = logits + r * k;
        S* outr = out + r * k;
        const i64* ir = index + r * nsamples;
        const S* wr = weights + r * nsamples;
        const S* br = baseline != nullptr ? baseline + r * nsamples : baseline;
        const Share<1, N> sh = share_of<1, N>(g, kr);

        T c[N];
        const T m = load_row_max(c, xr, sh, lanes);
        const auto term = [&](T v) { return exp_t(v - m); };
        const auto at = [&](int, int, i64 j) { return exp_t(St::load(xr[j]) - m); };
        const T s = row_term_sum(c, sh, lanes, term, NoBlock(), at);

        // The weights, W and whether an index is out of range: every thread
        // of the row computes them from the whole row, in sample order.
        const T n = static_cast<T>(nsamples);
        T mean = T(0);
        if (estimator == SCORE_LOO) {
            for (i64 t = 0; t < ns; ++t) mean += St::load(wr[t]);
            mean = mean / n;
        }
        const T n1 = static_cast<T>(nsamples - 1);
        const auto weight = [&](i64 t) -> T {
            const T w = St::load(wr[t]);
            if (estimator == SCORE_LOO) return (w - mean) / n1;
            if (estimator == SCORE_MEAN) return br != nullptr ? (w - St::load(br[t])) / n : w / n;
            return w;
        };
        T W = T(0);
        bool bad = false;
        for (i64 t = 0; t < ns; ++t) {
            const i64 i = ir[t];
            bad |= i < 0 || i >= k;
            W += weight(t);
        }
        const T f = -W / s;
        if (bad && g.rank == 0 && status != nullptr) *status = 1;

        each_cached(sh, NoBlock(), [&](int i, int, i64, int) { c[i] = c[i] * f; });
        // A row with an index out of range is NaN: nothing to add.
        for (i64 t = 0; t < ns && !bad; ++t) {
            const i64 i = ir[t];
            // Element i is in a cache slot of this thread iff q = i - rank is
            // slot * width with slot < n (sh.tail bounds the slots); the test
            // in int keeps the 64-bit division out of the loop (q < 16384).
            const i64 q = i - sh.rank;
            if (q < 0 || i >= sh.tail) continue;
            const int qi = static_cast<int>(q);
            if (qi % sh.width != 0) continue;
            const int slot = qi / sh.width;
            const T w = weight(t);
            each_cached(sh, NoBlock(), [&](int v, int, i64, int) {
                if (v == slot) c[v] += w;
            });
        }
        const T nan = Num<T>::nan();
        each_cached(sh, NoBlock(), [&](int i, int, i64 j, int) {
            outr[j] = St::store(bad ? nan : c[i]);
        });
        each_uncached(sh, NoBlock(), [&](int, i64 j, int) {
            T v = at(0, 0, j) * f;
            for (i64 t = 0; t < ns && !bad; ++t) {
                if (ir[t] == j) v += weight(t);
            }
            outr[j] = St::store(bad ? nan : v);
        });
    }
}

// out_rows[r] = H(softmax(x[r])) = ls - (sum_j e_j d_j) / s, d_j = x_j - m,
// e_j = exp(d_j) (0 log 0 = 0), NaN for a row without a distribution.
template <typename S>
__global__ void GNP_BOUNDS_TWO_BLOCKS categorical_entropy_fwd(const S* __restrict__ logits,
                                                              S* __restrict__ out_rows, gnp::i64 rows,
                                                              gnp::i64 k, int lanes) {
    using namespace gnp;
    typedef typename Storage<S>::T T;
    typedef Storage<S> St;
    // As categorical_log_prob_fwd: 62 to 64 registers, no spills, with two
    // resident blocks (71 to 90 with the full cache and one).
    constexpr int N = Num<T>::CACHE - 4;
    const Rows g = rows_of(lanes);
    for (i64 r0 = g.first; r0 < rows; r0 += g.step) {
        const i64 r = r0 + g.sub;
        const i64 kr = r < rows ? k : 0;  // an idle thread still joins the reductions
        const S* xr = logits + r * k;
        const Share<1, N> sh = share_of<1, N>(g, kr);
        T c[N];
        const RowLog<T> q = load_row_log(c, xr, sh, lanes);
        const T u = entropy_sum(c, xr, q, sh, lanes);
        if (r < rows && g.rank == 0) out_rows[r] = St::store((q.ls - u / q.s) + zero_or_nan(q.m));
    }
}

// out[r] = -g_rows[r] * p * (log p + H), the gradient of g_rows[r] * H(p),
// p = softmax(x[r]): (-g / s) * (e_j ((d_j - ls) + H)), the entropy H
// recomputed as categorical_entropy_fwd does; exactly 0 where e_j = 0, NaN
// everywhere in a row without a distribution.
template <typename S>
__global__ void GNP_BOUNDS categorical_entropy_bwd(const S* __restrict__ g_rows,
                                                   const S* __restrict__ logits, S* __restrict__ out,
                                                   gnp::i64 rows, gnp::i64 k, int lanes) {
    using namespace gnp;
    typedef typename Storage<S>::T T;
    typedef Storage<S> St;
    constexpr int N = Num<T>::CACHE;
    const Rows g = rows_of(lanes);
    for (i64 r0 = g.first; r0 < rows; r0 += g.step) {
        const i64 r = r0 + g.sub;
        const i64 kr = r < rows ? k : 0;  // an idle thread still joins the reductions
        const S* xr = logits + r * k;
        S* outr = out + r * k;
        const Share<1, N> sh = share_of<1, N>(g, kr);
        T c[N];
        const RowLog<T> q = load_row_log(c, xr, sh, lanes);
        const T u = entropy_sum(c, xr, q, sh, lanes);
        const T z = zero_or_nan(q.m);
        const T h = (q.ls - u / q.s) + z;
        const T f = -(kr > 0 ? St::load(g_rows[r]) : T(0)) / q.s;
        const auto grad = [&](T d) {
            const T e = exp_t(d);
            return e == T(0) ? z : f * (e * ((d - q.ls) + h));
        };
        each_cached(sh, NoBlock(), [&](int i, int, i64 j, int) { outr[j] = St::store(grad(c[i])); });
        each_uncached(sh, NoBlock(), [&](int, i64 j, int) {
            outr[j] = St::store(grad(St::load(xr[j]) - q.m));
        });
    }
}

namespace gnp {

// KL(q || p) of one row pair from their shifted logits (caches cq, cp, or
// xq, xp beyond them) and log-normalisers:
//   sum_j eq_j ((dq_j - lsq) - (dp_j - lsp)) / sq + (mq - mq) + (mp - mp),
// +inf where q_j > 0 = p_j, NaN where either row has no distribution.
template <int N, typename S>
__device__ __forceinline__ typename Storage<S>::T kl_of_rows(const typename Storage<S>::T (&cq)[N],
                                                             const typename Storage<S>::T (&cp)[N],
                                                             const S* __restrict__ xq,
                                                             const S* __restrict__ xp,
                                                             const RowLog<typename Storage<S>::T>& q,
                                                             const RowLog<typename Storage<S>::T>& p,
                                                             const Share<1, N>& sh, int lanes) {
    typedef typename Storage<S>::T T;
    // The log-ratio (dq_j - lsq) - (dp_j - lsp), in the CPU kernel's order.
    const T u = row_sum<T>(
        sh, lanes,
        [&](int i, i64) {
            const T e = exp_t(cq[i]);
            return e == T(0) ? T(0) : e * ((cq[i] - q.ls) - (cp[i] - p.ls));
        },
        [&](i64 j) {
            const T dq = Storage<S>::load(xq[j]) - q.m, e = exp_t(dq);
            return e == T(0) ? T(0) : e * ((dq - q.ls) - ((Storage<S>::load(xp[j]) - p.m) - p.ls));
        });
    return u / q.s + zero_or_nan(q.m) + zero_or_nan(p.m);
}

}  // namespace gnp

// out_rows[r] = KL(q || p) = sum_j q_j (log q_j - log p_j), q = softmax(logits[r]),
// p = softmax(logits_p[r]) (kl_of_rows).  Two cached rows, half the cache each.
template <typename S>
__global__ void GNP_BOUNDS categorical_kl_fwd(const S* __restrict__ logits,
                                              const S* __restrict__ logits_p, S* __restrict__ out_rows,
                                              gnp::i64 rows, gnp::i64 k, int lanes) {
    using namespace gnp;
    typedef typename Storage<S>::T T;
    typedef Storage<S> St;
    constexpr int N = Num<T>::CACHE / 2;  // two cached arrays
    const Rows g = rows_of(lanes);
    for (i64 r0 = g.first; r0 < rows; r0 += g.step) {
        const i64 r = r0 + g.sub;
        const i64 kr = r < rows ? k : 0;  // an idle thread still joins the reductions
        const S* xq = logits + r * k;
        const S* xp = logits_p + r * k;
        const Share<1, N> sh = share_of<1, N>(g, kr);
        T cq[N], cp[N];
        const RowLog<T> q = load_row_log(cq, xq, sh, lanes);
        const RowLog<T> p = load_row_log(cp, xp, sh, lanes);
        const T kl = kl_of_rows(cq, cp, xq, xp, q, p, sh, lanes);
        if (r < rows && g.rank == 0) out_rows[r] = St::store(kl);
    }
}

// The gradient of g_rows[r] * KL(q || p) with respect to the logits of q,
// out = (g / sq) (eq_j (((dq_j - lsq) - (dp_j - lsp)) - KL)), exactly 0 where
// q_j = 0, and with respect to those of p, out_p = (g / sp) ep_j - (g / sq) eq_j
// = g (p_j - q_j); the divergence recomputed as categorical_kl_fwd does.  NaN
// everywhere where either row has no distribution.
template <typename S>
__global__ void GNP_BOUNDS categorical_kl_bwd(const S* __restrict__ g_rows, const S* __restrict__ logits,
                                              const S* __restrict__ logits_p, S* __restrict__ out,
                                              S* __restrict__ out_p, gnp::i64 rows, gnp::i64 k,
                                              int lanes) {
    using namespace gnp;
    typedef typename Storage<S>::T T;
    typedef Storage<S> St;
    constexpr int N = Num<T>::CACHE / 2;  // two cached arrays
    const Rows g = rows_of(lanes);
    for (i64 r0 = g.first; r0 < rows; r0 += g.step) {
        const i64 r = r0 + g.sub;
        const i64 kr = r < rows ? k : 0;  // an idle thread still joins the reductions
        const S* xq = logits + r * k;
        const S* xp = logits_p + r * k;
        S* outr = out + r * k;
        S* outpr = out_p + r * k;
        const Share<1, N> sh = share_of<1, N>(g, kr);
        T cq[N], cp[N];
        const RowLog<T> q = load_row_log(cq, xq, sh, lanes);
        const RowLog<T> p = load_row_log(cp, xp, sh, lanes);
        const T kl = kl_of_rows(cq, cp, xq, xp, q, p, sh, lanes);
        const T z = zero_or_nan(q.m) + zero_or_nan(p.m);
        const T gr = kr > 0 ? St::load(g_rows[r]) : T(0);
        const T fq = gr / q.s, fp = gr / p.s;
        const auto emit = [&](i64 j, T dq, T dp) {
            const T eq = exp_t(dq), ep = exp_t(dp);
            const T o = eq == T(0) ? z : fq * (eq * (((dq - q.ls) - (dp - p.ls)) - kl));
            outr[j] = St::store(o);
            outpr[j] = St::store(z + (fp * ep - fq * eq));
        };
        each_cached(sh, NoBlock(), [&](int i, int, i64 j, int) { emit(j, cq[i], cp[i]); });
        each_uncached(sh, NoBlock(), [&](int, i64 j, int) {
            emit(j, St::load(xq[j]) - q.m, St::load(xp[j]) - p.m);
        });
    }
}

#endif  // GUMBEL_NP_ESTIMATORS_CU
