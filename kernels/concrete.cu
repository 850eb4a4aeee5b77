// CUDA kernels of the relaxed distributions in log space: the ExpConcrete
// sample (log_gumbel_softmax) with its backward pass, and the log-densities
// of the ExpConcrete, Concrete and binary Concrete distributions (Maddison et
// al. 2017) with theirs.  Twin of concrete.py, with its semantics (its module
// notes give the formulas).
//
// Every kernel is a template on the storage type S of its float arrays and
// computes in T = Storage<S>::T: __half data is loaded and stored as half and
// everything in between runs in float, its noise included (the float32
// stream), so a half result is the float kernel's on the half-rounded input,
// rounded once.  Temperatures and their gradients are arrays of T.
//
// * log_gumbel_softmax_fwd runs in gumbel_softmax_fwd's geometry ("noise":
//   lanes sized by Philox blocks, a share of whole blocks per thread, QUADS
//   of them cached in registers) with its noise (draw 0 of the Gumbel
//   domain, or the noise array, or none), its shift and scaling w = ((x -
//   max x) + G - max z) * (1 / tau), and then log_softmax's normaliser of w
//   (rows.cuh: the NaN-propagating maximum m, the sum s of exp(w - m) and
//   the log1p of the rest t for a peaked row, log_of_terms).  An uncached
//   block keeps z and then w in the output row (no temporary, no noise drawn
//   twice); a __half output row cannot hold them, so for half data they are
//   computed again, noise included, in each later pass (rows of more than
//   16384 elements only).
// * log_gumbel_softmax_bwd and the Concrete densities run in softmax.cu's
//   geometry ("rows": lanes sized by elements, Share<1, N>), with the row
//   passes of rows.cuh: one sum over the row and the output pass for the
//   backward; for the densities the terms u_j = x_j - tau z_j of the
//   categories that are not masked, their NaN-propagating maximum and their
//   sums, then log(sum exp(u - max u)).  Masked categories (x_j = -inf) take
//   no part and get exact zeros.
// * binary_concrete_log_prob_fwd/_bwd are element-wise ("flat"): a
//   grid-stride loop over the elements, each thread about W of them (the
//   launch sizes the grid by Philox blocks, as for binary.cu), with
//   consecutive threads on consecutive elements.
//
// No fast-math: masking and the outside-the-support results rely on IEEE
// inf and NaN.  Under -ftz=true (CuPy's NVRTC default) a float32 sample
// below 2**-126 reads as 0, so there it is outside the support (-inf, zero
// gradients) where the CPU, which keeps subnormals, gives a finite density.

#ifndef GUMBEL_NP_CONCRETE_CU
#define GUMBEL_NP_CONCRETE_CU

#include "philox.cuh"
#include "rows.cuh"

namespace gnp {

// The space argument of concrete_log_prob_fwd/_bwd (_ops.SPACE_*, same
// numbers): the sample is z = log y (ExpConcrete) or y on the simplex
// (Concrete).  Enumerators: nvcc warns of a constexpr variable that a file
// compiled without its templates' instances never references.
enum : int { SPACE_LOG = 0, SPACE_SIMPLEX = 1 };

// Philox blocks per thread kept in registers by log_gumbel_softmax_fwd, as
// gumbel.cu's QUADS (32 float32 or 16 float64 values).
enum : int { CONCRETE_QUADS = 8 };

// One category of a Concrete density: with the sample value v (z, or y for
// SPACE_SIMPLEX) and the logit x, whether it is part of the distribution
// (live: x != -inf), whether v is a NaN-free value outside the support (a
// live category at z = -inf, y = 0 or y > 1; a masked one with mass), its
// log-sample z (log y on the simplex) and u = x - t z.  The CPU's
// _concrete_row, element by element.
template <typename T>
struct Category {
    T z, u;
    bool live, bad;
};

template <typename T>
__device__ __forceinline__ Category<T> category_of(T v, T x, T t, int space) {
    Category<T> c;
    c.live = x != -Num<T>::inf();
    bool bad;
    if (space == SPACE_SIMPLEX) {
        bad = c.live ? (v <= T(0) || v > T(1)) : v != T(0);
        c.z = log_t(v);
    } else {
        bad = c.live ? v == -Num<T>::inf() : v != -Num<T>::inf();
        c.z = v;
    }
    c.bad = bad && v == v;
    c.u = x - t * c.z;
    return c;
}

// The first pass of a Concrete density's row: the NaN-propagating maximum
// of u over the live categories (-inf for none), the sums of u and of z over
// them, their number n and the number of values outside the support, on
// every thread of the row.  cu[i] keeps u (-inf where masked) of cached
// slot i; for the backward pass (BWD), cz[i] keeps z, bit i of live says
// whether the category is live, and the sums of u and z, which it does not
// need, are 0.
template <typename T>
struct ConcreteRow {
    T mu, su, sz;
    i64 n, outside;
};

template <bool BWD, int N, typename S>
__device__ __forceinline__ ConcreteRow<typename Storage<S>::T> concrete_row(
    typename Storage<S>::T (&cu)[N], typename Storage<S>::T (&cz)[N], unsigned& live,
    const S* __restrict__ zr, const S* __restrict__ xr, const Share<1, N>& sh, typename Storage<S>::T t,
    int space, int lanes) {
    static_assert(N <= 32, "one bit of live per cache slot");
    typedef typename Storage<S>::T T;
    typedef Storage<S> St;
    const T ninf = -Num<T>::inf();
    T mu = ninf, su = T(0), sz = T(0);
    i64 n = 0, outside = 0;
    live = 0u;
    each_cached(sh, NoBlock(), [&](int i, int, i64 j, int) {
        const Category<T> c = category_of(St::load(zr[j]), St::load(xr[j]), t, space);
        cu[i] = c.live ? c.u : ninf;
        if constexpr (BWD) {
            cz[i] = c.z;
            live |= c.live ? 1u << i : 0u;
        }
        mu = max_nan(mu, cu[i]);
        su += c.live ? c.u : T(0);
        sz += c.live ? c.z : T(0);
        n += c.live ? 1 : 0;
        outside += c.bad ? 1 : 0;
    });
    double wu = 0.0, wz = 0.0;
    each_uncached(sh, NoBlock(), [&](int, i64 j, int) {
        const Category<T> c = category_of(St::load(zr[j]), St::load(xr[j]), t, space);
        mu = max_nan(mu, c.live ? c.u : ninf);
        wu += c.live ? c.u : T(0);
        wz += c.live ? c.z : T(0);
        n += c.live ? 1 : 0;
        outside += c.bad ? 1 : 0;
    });
    ConcreteRow<T> q;
    q.mu = row_reduce(mu, MaxOp(), ninf, lanes);
    q.su = BWD ? T(0) : row_reduce(plus_wide(su, wu), SumOp(), T(0), lanes);
    q.sz = BWD ? T(0) : row_reduce(plus_wide(sz, wz), SumOp(), T(0), lanes);
    q.n = row_reduce(n, SumOp(), i64(0), lanes);
    q.outside = row_reduce(outside, SumOp(), i64(0), lanes);
    return q;
}

// The binary Concrete density of one element: with d = log(y) - log(1 - y)
// and a = x - t d, log t + a - 2 softplus(a) - log y - log(1 - y), the
// softplus as max(a, 0) + log1p(exp(-|a|)) (no overflow); -inf for y outside
// (0, 1), NaN for NaN.  log(1 - y) as the CPU writes it (1 - y is exact from
// 1/2 on, and below it the rounding changes the log by less than an ulp of 1).
template <typename T>
__device__ __forceinline__ T binary_density(T y, T x, T t) {
    const T ly = log_t(y), l1y = log_t(T(1) - y);
    const T a = x - t * (ly - l1y);
    const T softplus = softplus_t(a);
    const T lp = log_t(t) + a - (softplus + softplus) - ly - l1y;
    return (y > T(0) && y < T(1)) || y != y ? lp : -Num<T>::inf();
}

}  // namespace gnp

// The ExpConcrete sample, per row r:
//   m = max_j logits_j (NaN-propagating), z_j = (logits_j - m) + g_j,
//   mz = max_j z_j, w_j = (z_j - mz) * (1 / tau_r),
//   out_j = (w_j - mw) - (log(sum_j exp(w_j - mw)) + (mw - mw)), mw = max_j w_j,
// the log by log_of_terms (log1p of the rest below the maximum's 1 when the
// sum is below 2): log_softmax of w, finite for every category that is not
// masked however low tau is, and NaN for a row holding NaN or +inf or all
// -inf.  g_j and tau_r as gumbel_softmax_fwd (noise_mode, tau_stride).
template <typename S>
__global__ void GNP_BOUNDS log_gumbel_softmax_fwd(const S* __restrict__ logits, S* __restrict__ out,
                                                  gnp::i64 rows, gnp::i64 k, gnp::u32 k0, gnp::u32 k1,
                                                  const gnp::i64* __restrict__ row_ids,
                                                  const typename gnp::Storage<S>::T* __restrict__ tau,
                                                  gnp::i64 tau_stride, int noise_mode,
                                                  const S* __restrict__ noise, int lanes) {
    using namespace gnp;
    typedef typename Storage<S>::T T;
    typedef Storage<S> St;
    constexpr int W = Noise<T>::W;
    // Whether the output row can hold the compute values of the uncached
    // blocks between passes (else they are computed again from the logits).
    constexpr bool SCRATCH = sizeof(S) == sizeof(T);
    const T ninf = -Num<T>::inf();
    const Rows g = rows_of(lanes);
    for (i64 r0 = g.first; r0 < rows; r0 += g.step) {
        const i64 r = r0 + g.sub;
        const bool valid = r < rows;
        const Share<W, CONCRETE_QUADS> sh = share_of<W, CONCRETE_QUADS>(g, valid ? k : 0);
        const S* lr = logits + r * k;
        const S* nr = noise_mode == NOISE_ARRAY ? noise + r * k : noise;
        S* outr = out + r * k;

        // Pass 1: m = max logits.
        T c[CONCRETE_QUADS * W];
        const T m = load_row_max(c, lr, sh, lanes);

        // Pass 2: z = (logits - m) + noise, mz = max z (uncached z go to out
        // when SCRATCH).
        const i64 rid = valid ? row_id(row_ids, r) : 0;
        const auto block = [&](i64 q) { return mode_block(noise_mode, k0, k1, rid, q); };
        const auto z_of = [&](T x, const Philox4& p, int w, i64 j) {
            return (x - m) + mode_noise<S>(noise_mode, p, w, nr, j);
        };
        const auto z_at = [&](const Philox4& p, int w, i64 j) { return z_of(St::load(lr[j]), p, w, j); };
        T mz = ninf;
        each_cached(sh, block, [&](int i, int w, i64 j, const Philox4& p) {
            c[i] = z_of(c[i], p, w, j);
            mz = max_nan(mz, c[i]);
        });
        each_uncached(sh, block, [&](int w, i64 j, const Philox4& p) {
            const T z = z_at(p, w, j);
            if constexpr (SCRATCH) outr[j] = St::store(z);
            mz = max_nan(mz, z);
        });
        mz = row_reduce(mz, MaxOp(), ninf, lanes);

        // Pass 3: w = (z - mz) * (1 / tau), mw = max w (0 or NaN, but
        // computed as the CPU computes it).  The passes from here on read
        // the uncached w from out (SCRATCH) or compute them again, so they
        // run over blocks.
        const T it = T(1) / (valid ? tau[r * tau_stride] : T(1));
        const auto w_of = [&](T z) { return (z - mz) * it; };
        const auto again = [&](i64 q) {
            Philox4 p = {{0u, 0u, 0u, 0u}};
            if constexpr (!SCRATCH) p = block(q);
            return p;
        };
        const auto w_at = [&](const Philox4& p, int w, i64 j) -> T {
            if constexpr (SCRATCH) {
                return St::load(outr[j]);
            } else {
                return w_of(z_at(p, w, j));
            }
        };
        T mw = ninf;
        each_cached(sh, NoBlock(), [&](int i, int, i64, int) {
            c[i] = w_of(c[i]);
            mw = max_nan(mw, c[i]);
        });
        each_uncached(sh, again, [&](int w, i64 j, const Philox4& p) {
            T v;
            if constexpr (SCRATCH) {
                v = w_of(St::load(outr[j]));
                outr[j] = St::store(v);
            } else {
                v = w_at(p, w, j);
            }
            mw = max_nan(mw, v);
        });
        mw = row_reduce(mw, MaxOp(), ninf, lanes);

        // Pass 4: s = sum exp(w - mw) and the rest t below the maximum's
        // term, as load_row_log (cached terms in T, uncached in double); the
        // cache keeps w - mw.
        T s = T(0), t = T(0);
        each_cached(sh, NoBlock(), [&](int i, int, i64, int) {
            const T d = c[i] - mw, e = exp_t(d);
            c[i] = d;
            s += e;
            t += d < T(0) ? e : T(0);
        });
        double ws = 0.0, wt = 0.0;
        each_uncached(sh, again, [&](int w, i64 j, const Philox4& p) {
            const T d = w_at(p, w, j) - mw, e = exp_t(d);
            ws += e;
            wt += d < T(0) ? e : T(0);
        });
        s = row_reduce(plus_wide(s, ws), SumOp(), T(0), lanes);
        t = row_reduce(plus_wide(t, wt), SumOp(), T(0), lanes);
        // softmax.nan_unless_finite: NaN unless mw is finite.
        const T ls = log_of_terms(s, t) + (mw - mw);

        // Pass 5: out = (w - mw) - ls.
        each_cached(sh, NoBlock(), [&](int i, int, i64 j, int) { outr[j] = St::store(c[i] - ls); });
        each_uncached(sh, again, [&](int w, i64 j, const Philox4& p) {
            outr[j] = St::store((w_at(p, w, j) - mw) - ls);
        });
    }
}

// VJP of log_gumbel_softmax_fwd from its output y, per row r, with f = 1 /
// tau_r and G = sum_j g_j over the categories with y_j != -inf:
//   o_j = g_j - exp(y_j) G, out_j = o_j f (0 where y_j = -inf: a masked
//   category takes no part), dtau_r = -(sum_j o_j y_j) f over the same j
// (w is y plus a per-row constant, and o sums to 0), when dtau is not null.
template <typename S>
__global__ void GNP_BOUNDS log_gumbel_softmax_bwd(const S* __restrict__ g, const S* __restrict__ y,
                                                  const typename gnp::Storage<S>::T* __restrict__ tau,
                                                  gnp::i64 tau_stride, S* __restrict__ out,
                                                  typename gnp::Storage<S>::T* __restrict__ dtau,
                                                  gnp::i64 rows, gnp::i64 k, int lanes) {
    using namespace gnp;
    typedef typename Storage<S>::T T;
    typedef Storage<S> St;
    constexpr int N = Num<T>::CACHE / 2;  // two cached arrays
    const T ninf = -Num<T>::inf();
    const Rows rg = rows_of(lanes);
    for (i64 r0 = rg.first; r0 < rows; r0 += rg.step) {
        const i64 r = r0 + rg.sub;
        const i64 kr = r < rows ? k : 0;  // an idle thread still joins the reductions
        const S* gr = g + r * k;
        const S* yr = y + r * k;
        S* outr = out + r * k;
        const Share<1, N> sh = share_of<1, N>(rg, kr);
        T cg[N], cy[N];
        load_row(cg, gr, sh, T(0));
        load_row(cy, yr, sh, ninf);
        const T total = row_sum<T>(
            sh, lanes, [&](int i, i64) { return cy[i] == ninf ? T(0) : cg[i]; },
            [&](i64 j) { return St::load(yr[j]) == ninf ? T(0) : St::load(gr[j]); });

        const T f = T(1) / (r < rows ? tau[r * tau_stride] : T(1));
        T dt = T(0);
        double wdt = 0.0;
        const auto grad = [&](T gj, T yj, i64 j) -> T {
            const bool live = yj != ninf;
            const T o = live ? gj - exp_t(yj) * total : T(0);
            outr[j] = St::store(o * f);
            return live ? o * yj : T(0);
        };
        each_cached(sh, NoBlock(), [&](int i, int, i64 j, int) { dt += grad(cg[i], cy[i], j); });
        each_uncached(sh, NoBlock(), [&](int, i64 j, int) {
            wdt += grad(St::load(gr[j]), St::load(yr[j]), j);
        });
        if (dtau != nullptr) {
            dt = row_reduce(plus_wide(dt, wdt), SumOp(), T(0), lanes);
            if (r < rows && rg.rank == 0) dtau[r] = -(dt * f);
        }
    }
}

// The ExpConcrete (space SPACE_LOG, sample z = x) or Concrete (SPACE_SIMPLEX,
// sample y = x) log-density of row r with logits logits_p and temperature
// tau_r, over the n categories whose logit is not -inf, u_j = logits_p_j -
// tau_r z_j:
//   lgamma(n) + (n - 1) log tau_r + sum_j u_j - n (mu + log(sum_j exp(u_j - mu)))
// (mu = max_j u_j), less sum_j z_j on the simplex; NaN for n = 0, -inf for a
// sample outside the support (concrete.py), NaN propagating.  log((n - 1)!)
// is lgamma in double, rounded to T, as the CPU computes it.
template <typename S>
__global__ void GNP_BOUNDS concrete_log_prob_fwd(const S* __restrict__ x, const S* __restrict__ logits_p,
                                                 S* __restrict__ out_rows, gnp::i64 rows, gnp::i64 k,
                                                 const typename gnp::Storage<S>::T* __restrict__ tau,
                                                 gnp::i64 tau_stride, int space, int lanes) {
    using namespace gnp;
    typedef typename Storage<S>::T T;
    typedef Storage<S> St;
    constexpr int N = Num<T>::CACHE;
    const Rows g = rows_of(lanes);
    for (i64 r0 = g.first; r0 < rows; r0 += g.step) {
        const i64 r = r0 + g.sub;
        const i64 kr = r < rows ? k : 0;  // an idle thread still joins the reductions
        const S* zr = x + r * k;
        const S* xr = logits_p + r * k;
        const Share<1, N> sh = share_of<1, N>(g, kr);
        const T t = r < rows ? tau[r * tau_stride] : T(1);
        T cu[N];
        unsigned live;
        const ConcreteRow<T> q = concrete_row<false>(cu, cu, live, zr, xr, sh, t, space, lanes);
        const auto term = [&](T u) { return exp_t(u - q.mu); };
        const auto at = [&](int, int, i64 j) {
            const Category<T> c = category_of(St::load(zr[j]), St::load(xr[j]), t, space);
            return exp_t((c.live ? c.u : -Num<T>::inf()) - q.mu);
        };
        const T s = row_term_sum(cu, sh, lanes, term, NoBlock(), at);
        if (r >= rows || g.rank != 0) continue;
        const T lse = q.mu + log_t(s);
        const T lg = static_cast<T>(lgamma(static_cast<double>(q.n > 1 ? q.n : 1)));
        const T fn = static_cast<T>(q.n);
        T lp = lg + (fn - T(1)) * log_t(t) + q.su - fn * lse;
        if (space == SPACE_SIMPLEX) lp = lp - q.sz;
        lp = q.n == 0 ? Num<T>::nan() : lp;
        out_rows[r] = St::store(q.outside > 0 && q.n > 0 ? -Num<T>::inf() : lp);
    }
}

// VJP of concrete_log_prob_fwd, per row r with gradient g = g_rows[r]: with
// s_j = softmax(u)_j and v_j = 1 - n s_j over the categories that are not
// masked, out_p_j = g v_j (the logits), out_j = -g tau v_j (z; on the
// simplex (that - g) / y_j, y's gradient), dtau_r = g ((n - 1) / tau -
// sum_j z_j v_j) when dtau is not null; exact zeros at masked categories,
// and everywhere in a row whose sample is outside the support.
template <typename S>
__global__ void GNP_BOUNDS concrete_log_prob_bwd(const S* __restrict__ g_rows, const S* __restrict__ x,
                                                 const S* __restrict__ logits_p,
                                                 const typename gnp::Storage<S>::T* __restrict__ tau,
                                                 gnp::i64 tau_stride, S* __restrict__ out,
                                                 S* __restrict__ out_p,
                                                 typename gnp::Storage<S>::T* __restrict__ dtau,
                                                 gnp::i64 rows, gnp::i64 k, int space, int lanes) {
    using namespace gnp;
    typedef typename Storage<S>::T T;
    typedef Storage<S> St;
    constexpr int N = Num<T>::CACHE / 2;  // two cached arrays: u, z
    const Rows g = rows_of(lanes);
    for (i64 r0 = g.first; r0 < rows; r0 += g.step) {
        const i64 r = r0 + g.sub;
        const i64 kr = r < rows ? k : 0;  // an idle thread still joins the reductions
        const S* zr = x + r * k;
        const S* xr = logits_p + r * k;
        S* outr = out + r * k;
        S* outpr = out_p + r * k;
        const Share<1, N> sh = share_of<1, N>(g, kr);
        const T t = r < rows ? tau[r * tau_stride] : T(1);
        T cu[N], cz[N];
        unsigned live;
        const ConcreteRow<T> q = concrete_row<true>(cu, cz, live, zr, xr, sh, t, space, lanes);
        const auto term = [&](T u) { return exp_t(u - q.mu); };
        const auto at = [&](int, int, i64 j) {
            const Category<T> c = category_of(St::load(zr[j]), St::load(xr[j]), t, space);
            return exp_t((c.live ? c.u : -Num<T>::inf()) - q.mu);
        };
        const T s = row_term_sum(cu, sh, lanes, term, NoBlock(), at);  // cu: the terms e_j
        const T cn = static_cast<T>(q.n) / s;
        // Outside the support the log-density is -inf nearby too: gradient 0
        // (selected, as the terms there are not finite).
        const bool inside = q.outside == 0;
        const T gr = inside && r < rows ? St::load(g_rows[r]) : T(0);
        const T tg = gr * t;
        // The gradients of element j from its term e, its z and whether it
        // is live; returns z_j v_j for dtau.
        const auto emit = [&](i64 j, T e, T z, bool live) -> T {
            live = live && inside;
            const T v = T(1) - cn * e;  // 1 - n softmax(u)_j
            outpr[j] = St::store(live ? gr * v : T(0));
            T oz = -(tg * v);
            if (space == SPACE_SIMPLEX) oz = (oz - gr) / St::load(zr[j]);
            outr[j] = St::store(live ? oz : T(0));
            return live ? z * v : T(0);
        };
        T zv = T(0);
        each_cached(sh, NoBlock(), [&](int i, int, i64 j, int) {
            zv += emit(j, cu[i], cz[i], (live >> i) & 1u);
        });
        double wzv = 0.0;
        each_uncached(sh, NoBlock(), [&](int, i64 j, int) {
            const Category<T> c = category_of(St::load(zr[j]), St::load(xr[j]), t, space);
            wzv += emit(j, c.live ? exp_t(c.u - q.mu) : T(0), c.z, c.live);
        });
        if (dtau != nullptr) {
            zv = row_reduce(plus_wide(zv, wzv), SumOp(), T(0), lanes);
            const T fn = static_cast<T>(q.n);
            if (r < rows && g.rank == 0) dtau[r] = inside ? gr * ((fn - T(1)) / t - zv) : T(0);
        }
    }
}

// The binary Concrete log-density, element-wise: out = log p(y) of the
// sample y = x with logits logits_p and temperature taus[e * taus_stride]
// (taus_stride 0: one temperature), binary_density.
template <typename S>
__global__ void GNP_BOUNDS binary_concrete_log_prob_fwd(const S* __restrict__ x,
                                                        const S* __restrict__ logits_p,
                                                        S* __restrict__ out, gnp::i64 rows, gnp::i64 k,
                                                        const typename gnp::Storage<S>::T* __restrict__ taus,
                                                        gnp::i64 taus_stride) {
    using namespace gnp;
    typedef Storage<S> St;
    const i64 total = rows * k;
    const i64 stride = static_cast<i64>(gridDim.x) * blockDim.x;
    for (i64 e = static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += stride) {
        out[e] = St::store(binary_density(St::load(x[e]), St::load(logits_p[e]), taus[e * taus_stride]));
    }
}

// VJP of binary_concrete_log_prob_fwd, element-wise: with d and a as there
// and t = 1 - 2 sigmoid(a) = -tanh(a / 2) (from exp(-|a|), no overflow),
// out_p = g t, dtaus = g (1 / tau - t d) when dtaus is not null, out = g (2 y
// - 1 - tau t) / (y (1 - y)); 0 outside (0, 1) (NaN for NaN).
template <typename S>
__global__ void GNP_BOUNDS binary_concrete_log_prob_bwd(const S* __restrict__ g, const S* __restrict__ x,
                                                        const S* __restrict__ logits_p,
                                                        const typename gnp::Storage<S>::T* __restrict__ taus,
                                                        gnp::i64 taus_stride, S* __restrict__ out,
                                                        S* __restrict__ out_p,
                                                        typename gnp::Storage<S>::T* __restrict__ dtaus,
                                                        gnp::i64 rows, gnp::i64 k) {
    using namespace gnp;
    typedef typename Storage<S>::T T;
    typedef Storage<S> St;
    const i64 total = rows * k;
    const i64 stride = static_cast<i64>(gridDim.x) * blockDim.x;
    for (i64 e = static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += stride) {
        const T y = St::load(x[e]), t = taus[e * taus_stride];
        const T d = log_t(y) - log_t(T(1) - y);
        const T a = St::load(logits_p[e]) - t * d;
        const T ex = exp_t(-(a < T(0) ? -a : a));
        const T th = (T(1) - ex) / (T(1) + ex);  // tanh(|a| / 2)
        const T sg = a > T(0) ? -th : th;         // 1 - 2 sigmoid(a)
        const bool keep = (y > T(0) && y < T(1)) || y != y;
        const T gi = keep ? St::load(g[e]) : T(0);
        out[e] = St::store(keep ? gi * ((y + y - T(1)) - t * sg) / (y * (T(1) - y)) : T(0));
        out_p[e] = St::store(keep ? gi * sg : T(0));
        if (dtaus != nullptr) dtaus[e] = keep ? gi * (T(1) / t - sg * d) : T(0);
    }
}

#endif  // GUMBEL_NP_CONCRETE_CU
