// CUDA kernels of the estimators conditioned on a category: the conditional
// Gumbel samples, the Gumbel-Rao gradient and ReinMax.  Twin of
// conditional.py, with its semantics (its module notes give the formulas and
// the reasons for them: the winner z_i = lse - log E_i, the others z_j = z_i
// - log(1 + t_j) with t_j = (E_j / E_i) q_j, q_j = s / e_j, on rows whose
// finite logits lie within FAST_SPREAD of lse, and z_j = z_i -
// softplus(log E_j + z_i - x_j) on the others; a z_j that rounds to z_i or
// above is set to the float just below it).
//
// Every kernel runs in the geometry of softmax.cu (the `lanes` argument: a
// warp or less per row up to 1024 elements, a block of GNP_ROW_BLOCK threads
// beyond; grid-stride over rows; idle threads join every reduction) and is a
// template on the storage type S computing in T = Storage<S>::T: __half data
// is loaded and stored as half and computes in float, its uniforms included
// (the float32 stream), so a half result is the float kernel's on the
// half-rounded input, rounded once.  Temperatures are arrays of T.
//
// Stream: element j of the row with id rid at draw d takes E = -log u of the
// uniform of counter (j / W, d + CONDITIONAL_DOMAIN, rid), the uniform of
// Gumbel noise's element in the conditional domain.  The accurate logf/log,
// as for all noise (philox.cuh): E_i near 0 comes from u near 1.
//
// conditional_gumbel_fwd and gumbel_rao_bwd own whole Philox blocks per
// thread (Share<W, NU>, as the Gumbel kernels), so each block is generated
// once per draw.  The row's start (its maximum, the sum s, lse and the
// choice of the form) is one pass over the row with two reductions; the
// thread's cache then holds q_j = s / e_j (or x_j on the slow path, read
// again: those rows are rare), which serves every draw, and the elements
// beyond the cache compute q_j again from the logits in each draw.  A row
// takes the fast form where every logit that is not -inf has e_j >= k
// exp(-FAST_SPREAD), the CPU's test (so lse - x_j <= FAST_SPREAD), counted
// in the reduction of the sum.  The fast form is the CPU's for nsamples > 1,
// t_j = (E_j q_j) (1 / E_i), and log(1 + t_j) as there, not log1p
// (conditional.py says why); for one draw the CPU divides by e_j instead of
// caching q_j, which rounds t_j differently by an ulp or two.  Each thread
// draws E_i itself (one Philox block more per draw) rather than take it
// from the thread that owns element i: that would be a reduction per draw,
// and in block mode a pair of barriers, where the forward pass has none.
//
// gumbel_rao_bwd keeps per cached element q_j, g_j, the draw's v_j and the
// running sum of the gradient in registers; per draw, one pass makes v and
// the row's sum and <g, v> (one reduction of both), a second adds the draw's
// term.  Elements beyond the cache make v again in the second pass (their
// noise drawn twice) and, for float and double, accumulate in the output row
// itself, which the same thread reads and writes.  A __half output row
// cannot hold the float sums, so half rows longer than the cache run in
// windows of the cache's size: each window is a pass over all draws in which
// the rest of the row only adds to the draw's sums (a half row of n windows
// draws its noise n times; rows beyond the cache of a warp, 256 elements, or
// of a block, 4096, have more than one).
//
// reinmax_bwd: the passes of rows.cuh on a share of single elements: the
// load and maximum, one pass that makes the exponentials of softmax(x) and
// of softmax(x / tau), their sums and their dot products with g (one
// reduction of the four), and the output pass.
//
// An index outside [0, k) is never read: its row is NaN and *status is set
// (CHOICE_BAD); so is a row whose index has a -inf logit (CHOICE_IMPOSSIBLE),
// the CPU's flags.  Writers of both kinds race (a benign race: the public
// layer re-checks which error it is).  A row without a distribution (NaN,
// +inf, all -inf) gives NaN.

#ifndef GUMBEL_NP_CONDITIONAL_CU
#define GUMBEL_NP_CONDITIONAL_CU

#include "philox.cuh"
#include "rows.cuh"

namespace gnp {

// The stream domain of the conditional samples' uniforms, in the draw word's
// top 4 bits (_ops.CONDITIONAL_DOMAIN << 28).  Enumerators: nvcc warns of a
// constexpr variable that a file compiled without its templates' instances
// never references.
enum : u32 { CONDITIONAL_DOMAIN = 2u << 28 };

// COND_QUADS: Philox blocks per thread kept in registers by the forward pass
// (its one cached array: 32 float or 16 double values, as categorical_fwd;
// 122 to 128 registers, no spills, nvcc 13.0 -ftz=true, sm_80 and sm_90).
// RAO_QUADS: by gumbel_rao_bwd, which keeps four arrays (q, g, v and the
// sum): 2 take 112 to 124 registers, without spills; 3 spilled up to 68
// bytes, 4 up to 116, and 4 with q in shared memory still up to 332.
enum : int { COND_QUADS = 8, RAO_QUADS = 2 };

// The flags of a row's index (conditional.py's _check_index).
enum : int { CHOICE_BAD = 1, CHOICE_IMPOSSIBLE = 2 };

// exp(-FAST_SPREAD) of conditional.py, rounded to T (FAST_SPREAD: the widest
// lse - x_j for which t_j cannot overflow).
template <typename T>
__device__ __forceinline__ T spread_floor();
template <>
__device__ __forceinline__ float spread_floor<float>() {
    return 8.756511e-27f;  // exp(-60)
}
template <>
__device__ __forceinline__ double spread_floor<double>() {
    return 2.3208225941796005e-287;  // exp(-660)
}

template <typename T>
__device__ __forceinline__ T exponential_of(const Philox4& p, int w) {
    return -log_t(Noise<T>::uniform(p, w));
}

// exponential_of for a word w known only at run time: the uniform is
// selected, not indexed, as an indexed word would put the block in local
// memory (16 bytes of stack in conditional_gumbel_fwd<double>, nvcc 13.0).
template <typename T>
__device__ __forceinline__ T exponential_at(const Philox4& p, int w) {
    T u = Noise<T>::uniform(p, 0);
#pragma unroll
    for (int v = 1; v < Noise<T>::W; ++v) u = v == w ? Noise<T>::uniform(p, v) : u;
    return -log_t(u);
}

// 0, or the flag of index i of row xr (never read outside [0, k)).
template <typename S>
__device__ __forceinline__ int choice_flag(const S* __restrict__ xr, i64 i, i64 k) {
    typedef typename Storage<S>::T T;
    if (i < 0 || i >= k) return CHOICE_BAD;
    return Storage<S>::load(xr[i]) == -Num<T>::inf() ? CHOICE_IMPOSSIBLE : 0;
}

// A row's start: maximum m, sum s of exp(x_j - m), lse = (m + log s) + (m -
// m) (NaN unless m is finite) and whether the fast form serves it.
template <typename T>
struct CondRow {
    T m, sum, lse;
    bool fast;
};

// Loads the thread's cached elements of row xr into c and returns the row's
// CondRow, on every thread of the row; c then holds q_j = s / exp(x_j - m)
// (fast) or x_j.  The logits below the fast form's floor are counted in T
// beside the sum (one reduction of both; a count of a few such logits is
// exact, and a positive count never rounds to 0).
template <int W, int NU, typename S>
__device__ __forceinline__ CondRow<typename Storage<S>::T> conditional_row(
    typename Storage<S>::T (&c)[NU * W], const S* __restrict__ xr, i64 k, const Share<W, NU>& sh,
    int lanes) {
    typedef typename Storage<S>::T T;
    typedef Storage<S> St;
    const T ninf = -Num<T>::inf();
    CondRow<T> q;
    q.m = load_row_max(c, xr, sh, lanes);
    const T floor = static_cast<T>(k) * spread_floor<T>();
    Two<T> sf = {T(0), T(0)};  // sum e, how many finite logits lie below the floor
    each_cached(sh, NoBlock(), [&](int s, int, i64, int) {
        const T e = exp_t(c[s] - q.m);
        sf.b += e < floor && c[s] != ninf ? T(1) : T(0);
        c[s] = e;
        sf.a += e;
    });
    double ws = 0.0, wf = 0.0;
    each_uncached(sh, NoBlock(), [&](int, i64 j, int) {
        const T x = St::load(xr[j]), e = exp_t(x - q.m);
        ws += e;
        wf += e < floor && x != ninf ? 1.0 : 0.0;
    });
    sf.a = plus_wide(sf.a, ws);
    sf.b = plus_wide(sf.b, wf);
    sf = row_reduce(sf, BothOp<SumOp>(), Two<T>{T(0), T(0)}, lanes);
    q.sum = sf.a;
    q.lse = (q.m + log_t(q.sum)) + (q.m - q.m);
    q.fast = sf.b == T(0);
    if (q.fast) {
        each_cached(sh, NoBlock(), [&](int s, int, i64, int) { c[s] = q.sum / c[s]; });
    } else {
        load_row(c, xr, sh, ninf);
    }
    return q;
}

// f(u) for each Philox block u < units of the thread (rank, rank + width,
// ...) outside the window [off, off + win) of the row's blocks (off and win
// multiples of width).
template <typename F>
__device__ __forceinline__ void each_unit_outside(const Rows& g, i64 units, i64 off, i64 win, F f) {
    const i64 end = off < units ? off : units;
    for (i64 u = g.rank; u < end; u += g.width) f(u);
    for (i64 u = off + win + g.rank; u < units; u += g.width) f(u);
}

}  // namespace gnp

// draws[(r k + j) nsamples + d] = z_j of draw d < nsamples of row r,
// conditioned on argmax z = choice[r]: z_i = lse - log E_i, and z_j = z_i -
// log(1 + E_j q_j / E_i) (fast) or z_i - softplus(log E_j + (z_i - x_j)), set
// to next_below(z_i) where it is not below z_i.  The draws are the outer
// loop, so that E_i and z_i are made once per draw; for nsamples > 1 a
// warp's stores of one draw are then nsamples * W elements apart.
template <typename S>
__global__ void GNP_BOUNDS conditional_gumbel_fwd(const S* __restrict__ logits,
                                                  const gnp::i64* __restrict__ choice, S* __restrict__ draws,
                                                  gnp::i64* __restrict__ status, gnp::i64 rows, gnp::i64 k,
                                                  gnp::i64 nsamples, gnp::u32 k0, gnp::u32 k1,
                                                  const gnp::i64* __restrict__ row_ids, int lanes) {
    using namespace gnp;
    typedef typename Storage<S>::T T;
    typedef Storage<S> St;
    constexpr int W = Noise<T>::W;
    const Rows g = rows_of(lanes);
    for (i64 r0 = g.first; r0 < rows; r0 += g.step) {
        const i64 r = r0 + g.sub;
        const bool valid = r < rows;
        const S* xr = logits + r * k;
        const Share<W, COND_QUADS> sh = share_of<W, COND_QUADS>(g, valid ? k : 0);
        T c[COND_QUADS * W];
        const CondRow<T> q = conditional_row(c, xr, k, sh, lanes);
        if (!valid) continue;  // no reduction follows
        const i64 i = choice[r];
        const int flag = choice_flag(xr, i, k);
        if (flag != 0 && g.rank == 0 && status != nullptr) *status = flag;
        S* outr = draws + r * k * nsamples;
        if (flag != 0 || !(q.lse - q.lse == T(0))) {
            for (i64 e = g.rank; e < k * nsamples; e += g.width) outr[e] = St::store(Num<T>::nan());
            continue;
        }
        const i64 rid = row_id(row_ids, r);
        for (i64 d = 0; d < nsamples; ++d) {
            const u32 draw = static_cast<u32>(d) + CONDITIONAL_DOMAIN;
            const auto block = [&](i64 u) { return stream_block(k0, k1, rid, static_cast<u64>(u), draw); };
            const T ei = exponential_at<T>(block(i / W), static_cast<int>(i % W));
            const T zi = q.lse - log_t(ei);
            const T below = next_below(zi);
            const T inv = T(1) / ei;
            const auto put = [&](i64 j, T v) {
                outr[j * nsamples + d] = St::store(j == i ? zi : (v < zi ? v : below));
            };
            if (q.fast) {
                each_cached(sh, block, [&](int s, int w, i64 j, const Philox4& p) {
                    put(j, zi - log_t(T(1) + exponential_of<T>(p, w) * c[s] * inv));
                });
                each_uncached(sh, block, [&](int w, i64 j, const Philox4& p) {
                    const T qj = q.sum / exp_t(St::load(xr[j]) - q.m);
                    put(j, zi - log_t(T(1) + exponential_of<T>(p, w) * qj * inv));
                });
            } else {
                each_cached(sh, block, [&](int s, int w, i64 j, const Philox4& p) {
                    put(j, zi - softplus_t(log_t(exponential_of<T>(p, w)) + (zi - c[s])));
                });
                each_uncached(sh, block, [&](int w, i64 j, const Philox4& p) {
                    put(j, zi - softplus_t(log_t(exponential_of<T>(p, w)) + (zi - St::load(xr[j]))));
                });
            }
        }
    }
}

// out[r] = the mean over the nsamples conditional samples z of row r (draws 0
// .. nsamples - 1, as conditional_gumbel_fwd makes them) of y (g - <g, y>) /
// tau_r, y = softmax(z / tau_r), from v_j = exp(-log(1 + t_j) / tau_r) (fast)
// or exp(-softplus(log E_j + (z_i - x_j)) / tau_r), v_i = 1: per draw, with
// zs = sum v and a = <g, v> / zs, out_j += (v_j c) (g_j - a), c = (1 /
// tau_r) / (zs nsamples), added in draw order, as the CPU adds them.
template <typename S>
__global__ void GNP_BOUNDS gumbel_rao_bwd(const S* __restrict__ g, const S* __restrict__ logits,
                                          const gnp::i64* __restrict__ choice,
                                          const typename gnp::Storage<S>::T* __restrict__ tau,
                                          gnp::i64 tau_stride, S* __restrict__ out,
                                          gnp::i64* __restrict__ status, gnp::i64 rows, gnp::i64 k,
                                          gnp::i64 nsamples, gnp::u32 k0, gnp::u32 k1,
                                          const gnp::i64* __restrict__ row_ids, int lanes) {
    using namespace gnp;
    typedef typename Storage<S>::T T;
    typedef Storage<S> St;
    constexpr int W = Noise<T>::W;
    constexpr int NU = RAO_QUADS;
    // Whether the output row can hold the sums of the uncached elements.
    constexpr bool SCRATCH = sizeof(S) == sizeof(T);
    const T ninf = -Num<T>::inf();
    const Rows rg = rows_of(lanes);
    const i64 units = (k + W - 1) / W;
    const i64 win = static_cast<i64>(NU) * rg.width;  // a window: the cache of the row's threads
    const i64 windows = SCRATCH ? 1 : (units + win - 1) / win;
    for (i64 r0 = rg.first; r0 < rows; r0 += rg.step) {
        const i64 r = r0 + rg.sub;
        const bool valid = r < rows;
        const S* xr = logits + r * k;
        const S* gr = g + r * k;
        S* outr = out + r * k;
        const Share<W, NU> sh = share_of<W, NU>(rg, valid ? k : 0);
        T c[NU * W];
        const CondRow<T> q = conditional_row(c, xr, k, sh, lanes);
        const i64 i = valid ? choice[r] : 0;
        const int flag = valid ? choice_flag(xr, i, k) : 0;
        if (flag != 0 && rg.rank == 0 && status != nullptr) *status = flag;
        // Every thread of the warp or block runs the draws (their sums are
        // reductions); `ok` says which rows compute.
        const bool ok = valid && flag == 0 && q.lse - q.lse == T(0);
        if (valid && !ok) {
            for (i64 j = rg.rank; j < k; j += rg.width) outr[j] = St::store(Num<T>::nan());
        }
        const T f = T(1) / (valid ? tau[r * tau_stride] : T(1));
        const T n = static_cast<T>(nsamples);
        const i64 rid = valid ? row_id(row_ids, r) : 0;
        for (i64 wi = 0; wi < windows; ++wi) {
            const i64 off = wi * win, j0 = off * W;
            const i64 kw = ok ? (k - j0 < win * W ? k - j0 : win * W) : 0;
            const Share<W, NU> sw = share_of<W, NU>(rg, kw);  // window 0: sh's cache
            if (wi > 0) {
                load_row(c, xr + j0, sw, ninf);
                if (q.fast) {
                    each_cached(sw, NoBlock(), [&](int s, int, i64, int) { c[s] = q.sum / exp_t(c[s] - q.m); });
                }
            }
            T cg[NU * W], cv[NU * W], ca[NU * W];
            load_row(cg, gr + j0, sw, T(0));
            each_slot(sw, NoBlock(), [&](int s, int, i64, int) { ca[s] = T(0); });
            if constexpr (SCRATCH) {
                if (ok) {
                    each_unit_outside(rg, units, off, win, [&](i64 u) {
#pragma unroll
                        for (int w = 0; w < W; ++w) {
                            if (u * W + w < k) outr[u * W + w] = St::store(T(0));
                        }
                    });
                }
            }
            for (i64 d = 0; d < nsamples; ++d) {
                const u32 draw = static_cast<u32>(d) + CONDITIONAL_DOMAIN;
                const auto block = [&](i64 u) { return stream_block(k0, k1, rid, static_cast<u64>(u), draw); };
                T zi = T(0), inv = T(0);
                if (ok) {
                    const T ei = exponential_at<T>(block(i / W), static_cast<int>(i % W));
                    inv = T(1) / ei;
                    zi = q.lse - log_t(ei);
                }
                // v_j from E_j and q_j (fast) or x_j.
                const auto v_of = [&](T e, T cj, i64 j) -> T {
                    if (j == i) return T(1);
                    return q.fast ? exp_t(-log_t(T(1) + e * cj * inv) * f)
                                  : exp_t(-softplus_t(log_t(e) + (zi - cj)) * f);
                };
                const auto v_at = [&](const Philox4& p, int w, i64 j) {
                    const T x = St::load(xr[j]);
                    return v_of(exponential_of<T>(p, w), q.fast ? q.sum / exp_t(x - q.m) : x, j);
                };
                Two<T> t = {T(0), T(0)};  // sum v, <g, v>
                double wz = 0.0, wg = 0.0;
                if (ok) {
                    each_cached(sw, [&](i64 u) { return block(off + u); },
                                [&](int s, int w, i64 j, const Philox4& p) {
                                    const T v = v_of(exponential_of<T>(p, w), c[s], j0 + j);
                                    cv[s] = v;
                                    t.a += v;
                                    t.b += cg[s] * v;
                                });
                    each_unit_outside(rg, units, off, win, [&](i64 u) {
                        const Philox4 p = block(u);
#pragma unroll
                        for (int w = 0; w < W; ++w) {
                            const i64 j = u * W + w;
                            if (j < k) {
                                const T v = v_at(p, w, j);
                                wz += v;
                                wg += St::load(gr[j]) * v;
                            }
                        }
                    });
                }
                t.a = plus_wide(t.a, wz);
                t.b = plus_wide(t.b, wg);
                t = row_reduce(t, BothOp<SumOp>(), Two<T>{T(0), T(0)}, lanes);
                if (!ok) continue;
                const T a = t.b / t.a;
                const T cd = f / (t.a * n);
                each_cached(sw, NoBlock(), [&](int s, int, i64, int) { ca[s] += (cv[s] * cd) * (cg[s] - a); });
                if constexpr (SCRATCH) {
                    each_unit_outside(rg, units, off, win, [&](i64 u) {
                        const Philox4 p = block(u);
#pragma unroll
                        for (int w = 0; w < W; ++w) {
                            const i64 j = u * W + w;
                            if (j < k) {
                                const T v = v_at(p, w, j);
                                outr[j] = St::store(St::load(outr[j]) + (v * cd) * (St::load(gr[j]) - a));
                            }
                        }
                    });
                }
            }
            each_cached(sw, NoBlock(), [&](int s, int, i64 j, int) { outr[j0 + j] = St::store(ca[s]); });
        }
    }
}

// out[r] = 2 pi (g - <g, pi>) - p (g - <g, p>) / 2 with p = softmax(x) and
// pi = (softmax(x / tau_r) + onehot(i)) / 2, i = choice[r], in the CPU's
// order: from e_j = exp(x_j - m) and pe_j = exp((x_j - m) / tau_r), s0 = 1 /
// sum e and s1 = 1/2 / sum pe, a = <g, pe> s1 + g_i / 2 and b = <g, e> s0,
// out_j = (2 s1) pe_j (g_j - a) - (s0 / 2) e_j (g_j - b), plus g_i - a at i.
// The two sums and the two dot products are one reduction.
template <typename S>
__global__ void GNP_BOUNDS reinmax_bwd(const S* __restrict__ g, const S* __restrict__ logits,
                                       const gnp::i64* __restrict__ choice,
                                       const typename gnp::Storage<S>::T* __restrict__ tau, gnp::i64 tau_stride,
                                       S* __restrict__ out, gnp::i64* __restrict__ status, gnp::i64 rows,
                                       gnp::i64 k, int lanes) {
    using namespace gnp;
    typedef typename Storage<S>::T T;
    typedef Storage<S> St;
    // Three cached arrays (e, pe, g) of 3/8 of the cache each: with halves,
    // reinmax_bwd<double> spilled 28 bytes on sm_90 (nvcc 13.0, -ftz=true);
    // so it takes 91 (float) to 110 (double) registers.
    constexpr int N = Num<T>::CACHE * 3 / 8;
    const Rows rg = rows_of(lanes);
    for (i64 r0 = rg.first; r0 < rows; r0 += rg.step) {
        const i64 r = r0 + rg.sub;
        const bool valid = r < rows;
        const i64 kr = valid ? k : 0;  // an idle thread still joins the reductions
        const S* xr = logits + r * k;
        const S* gr = g + r * k;
        S* outr = out + r * k;
        const Share<1, N> sh = share_of<1, N>(rg, kr);
        T ce[N], cpe[N], cg[N];
        const T m = load_row_max(ce, xr, sh, lanes);
        load_row(cg, gr, sh, T(0));
        const i64 i = valid ? choice[r] : 0;
        const int flag = valid ? choice_flag(xr, i, k) : 0;
        if (flag != 0 && rg.rank == 0 && status != nullptr) *status = flag;
        const bool ok = flag == 0 && m - m == T(0);
        const T f = T(1) / (valid ? tau[r * tau_stride] : T(1));

        // sum e, sum pe, <g, e>, <g, pe>.
        Two<Two<T>> sums = {{T(0), T(0)}, {T(0), T(0)}};
        each_cached(sh, NoBlock(), [&](int l, int, i64, int) {
            const T d = ce[l] - m;
            ce[l] = exp_t(d);
            cpe[l] = exp_t(d * f);
            sums.a.a += ce[l];
            sums.a.b += cpe[l];
            sums.b.a += cg[l] * ce[l];
            sums.b.b += cg[l] * cpe[l];
        });
        double w[4] = {0.0, 0.0, 0.0, 0.0};
        each_uncached(sh, NoBlock(), [&](int, i64 j, int) {
            const T d = St::load(xr[j]) - m, e = exp_t(d), pe = exp_t(d * f), gj = St::load(gr[j]);
            w[0] += e;
            w[1] += pe;
            w[2] += gj * e;
            w[3] += gj * pe;
        });
        sums.a.a = plus_wide(sums.a.a, w[0]);
        sums.a.b = plus_wide(sums.a.b, w[1]);
        sums.b.a = plus_wide(sums.b.a, w[2]);
        sums.b.b = plus_wide(sums.b.b, w[3]);
        const Two<T> zero = {T(0), T(0)};
        sums = row_reduce(sums, BothOp<BothOp<SumOp>>(), Two<Two<T>>{zero, zero}, lanes);
        const T s0 = T(1) / sums.a.a, s1 = T(0.5) / sums.a.b;
        const T gi = ok ? St::load(gr[i]) : T(0);  // i may lie outside the row otherwise
        const T a = sums.b.b * s1 + T(0.5) * gi, b = sums.b.a * s0;
        const T c1 = T(2) * s1, c0 = T(0.5) * s0;

        const auto grad = [&](T e, T pe, T gj, i64 j) {
            T o = c1 * pe * (gj - a) - c0 * e * (gj - b);
            if (j == i) o += gj - a;
            return ok ? o : Num<T>::nan();
        };
        each_cached(sh, NoBlock(), [&](int l, int, i64 j, int) {
            outr[j] = St::store(grad(ce[l], cpe[l], cg[l], j));
        });
        each_uncached(sh, NoBlock(), [&](int, i64 j, int) {
            const T d = St::load(xr[j]) - m;
            outr[j] = St::store(grad(exp_t(d), exp_t(d * f), St::load(gr[j]), j));
        });
    }
}

#endif  // GUMBEL_NP_CONDITIONAL_CU
