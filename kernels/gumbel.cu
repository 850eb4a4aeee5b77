// CUDA kernels of the Gumbel family: noise, Gumbel-Softmax (forward and
// backward) and Gumbel-Max categorical sampling.  Twin of gumbel.py.
//
// Noise comes from the Philox stream of philox.cuh: element j of the row with
// id rid at draw d is a pure function of (key, rid, j, d, dtype), so a value
// never depends on the launch geometry.  Each thread owns whole Philox blocks
// ("quads": 4 float32 or 2 float64 elements), so every block is generated
// once, in registers, and never materialised in memory.
//
// Every kernel is a template on the storage type S of its float arrays and
// computes in T = Storage<S>::T (softmax.cu).  __half data computes in float,
// noise included: its noise is the float32 stream (word j % 4 of block j / 4)
// and a half output is the float value rounded once, so each half result is
// the float kernel's result on the half-rounded input, rounded.  Temperatures
// and the temperature gradient are arrays of T (float for half data).
//
// The row kernels use the geometry of softmax.cu (the `lanes` argument, a
// warp or a block per row, grid-stride over rows), counting Philox blocks
// instead of elements when sizing the warp groups.  Each thread caches QUADS
// Philox blocks of its row in registers (the whole row up to 1024 float32
// elements with a warp, 16384 with a block).  Beyond that, gumbel_softmax_fwd
// keeps the intermediate values of a block in the output row itself, which
// the same thread rewrites later (no temporary array, no noise drawn twice),
// and categorical_fwd re-reads the logits for each draw.  A __half output row
// cannot hold float intermediates, so for half data gumbel_softmax_fwd instead
// recomputes the uncached z (logits and noise, the noise drawn again) in each
// later pass; only rows of more than 16384 elements have uncached blocks.
//
// The passes over a row are those of rows.cuh on a share of Philox blocks
// (Share<W, QUADS>): the load and maximum of the logits (load_row_max), the
// exponential sum and the scaled output of the softmax family (row_term_sum,
// each_scaled) and the one-hot of the first maximum (one_hot_of_first_max).

#ifndef GUMBEL_NP_GUMBEL_CU
#define GUMBEL_NP_GUMBEL_CU

#include "philox.cuh"
#include "rows.cuh"

namespace gnp {

// Philox blocks per thread kept in registers (32 float32 or 16 float64
// values).
enum : int { QUADS = 8 };

template <typename T>
__device__ __forceinline__ bool is_finite(T x) {
    return x - x == T(0);
}

}  // namespace gnp

// Standard Gumbel noise: out[r, j] = Gumbel(key, rid, j, draw), rid = row_ids[r]
// (or r when row_ids is null).  One thread per Philox block, flat over the
// whole (rows, k) array: no reduction, so no row geometry.
template <typename S>
__global__ void GNP_BOUNDS gumbel_fwd(S* __restrict__ out, gnp::i64 rows, gnp::i64 k,
                                      gnp::u32 k0, gnp::u32 k1,
                                      const gnp::i64* __restrict__ row_ids, gnp::u32 draw) {
    using namespace gnp;
    typedef typename Storage<S>::T T;
    constexpr int W = Noise<T>::W;
    const i64 nq = (k + W - 1) / W;
    const i64 total = rows * nq;
    const i64 stride = static_cast<i64>(gridDim.x) * blockDim.x;
    for (i64 t = static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x; t < total; t += stride) {
        const i64 r = t / nq;
        const i64 q = t - r * nq;
        const Philox4 p = stream_block(k0, k1, row_id(row_ids, r), static_cast<u64>(q), draw);
        S* o = out + r * k + q * W;
        const i64 left = k - q * W;
#pragma unroll
        for (int w = 0; w < W; ++w) {
            if (w < left) o[w] = Storage<S>::store(Noise<T>::gumbel(p, w));
        }
    }
}

// Gumbel-Softmax, per row r:
//   m = max_j logits_j (NaN-propagating), z_j = (logits_j - m) + g_j,
//   mz = max_j z_j, e_j = exp((z_j - mz) * (1 / tau_r)),
//   y_j = e_j * (1 / sum_j e_j):
// the operations of the CPU kernel (gumbel.py) in its order, the reciprocal
// of tau included, so the two backends differ only where their exponentials
// and the order of their row sums round differently.
// g_j: noise_mode NOISE_DRAW draws Gumbel(key, rid, j, 0), NOISE_ARRAY reads
// noise[r, j], NOISE_NONE adds nothing.  tau_r = tau[r * tau_stride]
// (tau_stride 0: one temperature).  hard == 0: out = y.  hard != 0: out =
// one-hot of the lowest index of max_j y_j (a NaN row if y holds NaN), and y
// goes to out_soft unless it is null.
template <typename S>
__global__ void GNP_BOUNDS gumbel_softmax_fwd(
    const S* __restrict__ logits, S* __restrict__ out, gnp::i64 rows, gnp::i64 k, gnp::u32 k0,
    gnp::u32 k1, const gnp::i64* __restrict__ row_ids,
    const typename gnp::Storage<S>::T* __restrict__ tau, gnp::i64 tau_stride, int noise_mode,
    const S* __restrict__ noise, S* __restrict__ out_soft, int hard, int lanes) {
    using namespace gnp;
    typedef typename Storage<S>::T T;
    typedef Storage<S> St;
    constexpr int W = Noise<T>::W;
    // Whether the output row can hold the compute values of the uncached
    // blocks between passes (else they are computed again from the logits).
    constexpr bool SCRATCH = sizeof(S) == sizeof(T);
    const Rows g = rows_of(lanes);
    for (i64 r0 = g.first; r0 < rows; r0 += g.step) {
        const i64 r = r0 + g.sub;
        const bool valid = r < rows;
        const Share<W, QUADS> sh = share_of<W, QUADS>(g, valid ? k : 0);
        const S* lr = logits + r * k;
        const S* nr = noise_mode == NOISE_ARRAY ? noise + r * k : noise;
        S* outr = out + r * k;

        // Pass 1: m = max logits.
        T c[QUADS * W];
        const T m = load_row_max(c, lr, sh, lanes);

        // Pass 2: z = (logits - m) + noise, mz = max z (uncached z go to out
        // when SCRATCH).
        const i64 rid = valid ? row_id(row_ids, r) : 0;
        const auto block = [&](i64 q) { return mode_block(noise_mode, k0, k1, rid, q); };
        const auto z_of = [&](T x, const Philox4& p, int w, i64 j) {
            return (x - m) + mode_noise<S>(noise_mode, p, w, nr, j);
        };
        const auto z_at = [&](const Philox4& p, int w, i64 j) {
            return z_of(St::load(lr[j]), p, w, j);
        };
        T mz = -Num<T>::inf();
        each_cached(sh, block, [&](int i, int w, i64 j, const Philox4& p) {
            c[i] = z_of(c[i], p, w, j);
            mz = max_nan(mz, c[i]);
        });
        each_uncached(sh, block, [&](int w, i64 j, const Philox4& p) {
            const T z = z_at(p, w, j);
            if constexpr (SCRATCH) outr[j] = St::store(z);
            mz = max_nan(mz, z);
        });
        mz = row_reduce(mz, MaxOp(), -Num<T>::inf(), lanes);

        // Pass 3: e = exp((z - mz) * (1 / tau)), s = sum e, as softmax_rows
        // sums.  Uncached z come from out and their e go back there
        // (SCRATCH), or are computed again, so those passes run over blocks.
        const T it = T(1) / (valid ? tau[r * tau_stride] : T(1));
        const auto term = [&](T z) { return exp_t((z - mz) * it); };
        const auto again = [&](i64 q) {
            Philox4 p = {{0u, 0u, 0u, 0u}};
            if constexpr (!SCRATCH) p = block(q);
            return p;
        };
        const auto e_new = [&](const Philox4& p, int w, i64 j) -> T {
            if constexpr (SCRATCH) {
                const T e = term(St::load(outr[j]));
                outr[j] = St::store(e);
                return e;
            } else {
                return term(z_at(p, w, j));
            }
        };
        const T s = row_term_sum(c, sh, lanes, term, again, e_new);

        // Pass 4: y = e * (1 / s), or its one-hot.
        const T f = T(1) / s;
        const auto e_at = [&](const Philox4& p, int w, i64 j) -> T {
            if constexpr (SCRATCH) {
                return St::load(outr[j]);
            } else {
                return term(z_at(p, w, j));
            }
        };
        if (!hard) {
            each_scaled(c, sh, f, again, e_at, [&](i64 j, T y) { outr[j] = St::store(y); });
            continue;
        }
        S* softr = out_soft != nullptr ? out_soft + r * k : out_soft;
        ArgMax<T> best = no_max<T>(k);
        each_scaled(c, sh, f, again, e_at, [&](i64 j, T y) {
            if (softr != nullptr) softr[j] = St::store(y);
            best = ArgMaxOp()(best, ArgMax<T>{y, j});
        });
        one_hot_of_first_max(best, outr, k, sh.kr, g, lanes);
    }
}

// Gumbel-Softmax VJP, per row r: d = <g, y>, out_j = (y_j (g_j - d)) / tau_r
// (a division, as in the CPU kernel), and, when dtau is not null,
// dtau_r = -sum_j out_j log(y_j) over the j with y_j != 0 (the temperature
// gradient, from y alone since out sums to zero).
template <typename S>
__global__ void GNP_BOUNDS gumbel_softmax_bwd(const S* __restrict__ g, const S* __restrict__ y,
                                              const typename gnp::Storage<S>::T* __restrict__ tau,
                                              gnp::i64 tau_stride, S* __restrict__ out,
                                              typename gnp::Storage<S>::T* __restrict__ dtau,
                                              gnp::i64 rows, gnp::i64 k, int lanes) {
    using namespace gnp;
    typedef typename Storage<S>::T T;
    typedef Storage<S> St;
    constexpr int N = Num<T>::CACHE / 2;
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

        const T t = kr > 0 ? tau[r * tau_stride] : T(1);
        T dt = T(0);
        each_cached(sh, NoBlock(), [&](int i, int, i64 j, int) {
            const T o = cy[i] * (cg[i] - d) / t;
            outr[j] = St::store(o);
            if (cy[i] != T(0)) dt += o * log_t(cy[i]);
        });
        double wdt = 0.0;
        each_uncached(sh, NoBlock(), [&](int, i64 j, int) {
            const T yj = St::load(yr[j]);
            const T o = yj * (St::load(gr[j]) - d) / t;
            outr[j] = St::store(o);
            if (yj != T(0)) wdt += o * log_t(yj);
        });
        if (dtau != nullptr) {
            dt = row_reduce(plus_wide(dt, wdt), SumOp(), T(0), lanes);
            if (r < rows && rg.rank == 0) dtau[r] = -dt;
        }
    }
}

// Gumbel-Max sampling: out[r, s] = the lowest index of max_j (logits_j - m) +
// Gumbel(key, rid, j, s) for s < nsamples, or -1 for every s when m = max_j
// logits_j is NaN or +-inf.  Work item = (row, run of per_item draws), so a
// few rows with many draws still fill the device; m and the shifted logits
// of the row stay in registers across the draws of an item.
template <typename S>
__global__ void GNP_BOUNDS categorical_fwd(const S* __restrict__ logits, gnp::i64* __restrict__ out,
                                           gnp::i64 rows, gnp::i64 k, gnp::i64 nsamples,
                                           gnp::i64 per_item, gnp::u32 k0, gnp::u32 k1,
                                           const gnp::i64* __restrict__ row_ids, int lanes) {
    using namespace gnp;
    typedef typename Storage<S>::T T;
    typedef Storage<S> St;
    constexpr int W = Noise<T>::W;
    const i64 runs = (nsamples + per_item - 1) / per_item;
    const i64 items = rows * runs;
    const Rows g = rows_of(lanes);
    for (i64 it0 = g.first; it0 < items; it0 += g.step) {
        const i64 it = it0 + g.sub;
        const bool valid = it < items;
        const i64 r = valid ? it / runs : 0;
        const i64 s0 = valid ? (it - r * runs) * per_item : 0;
        const i64 s1 = s0 + per_item < nsamples ? s0 + per_item : nsamples;
        const Share<W, QUADS> sh = share_of<W, QUADS>(g, valid ? k : 0);
        const S* lr = logits + r * k;
        i64* outr = out + r * nsamples;

        T c[QUADS * W];
        const T m = load_row_max(c, lr, sh, lanes);
        const bool ok = valid && is_finite(m);
        if (valid && !ok) {
            for (i64 s = s0 + g.rank; s < s1; s += g.width) outr[s] = -1;
        }
        each_slot(sh, NoBlock(), [&](int i, int, i64, int) { c[i] = c[i] - m; });

        const i64 rid = valid ? row_id(row_ids, r) : 0;
        // The draw loop runs per_item times on every thread of the warp or
        // block (the reduction needs them all); `act` says which draws count.
        for (i64 d = 0; d < per_item; ++d) {
            const i64 s = s0 + d;
            const bool act = ok && s < s1;
            ArgMax<T> best = no_max<T>(k);
            if (act) {
                const u32 draw = static_cast<u32>(s);
                const auto block = [&](i64 q) {
                    return stream_block(k0, k1, rid, static_cast<u64>(q), draw);
                };
                // j increases along this thread's elements, so a strict >
                // keeps the lowest index of a tie.
                const auto fold = [&](T z, i64 j) {
                    if (z > best.v) {
                        best.v = z;
                        best.i = j;
                    }
                };
                // Every slot, tested after the draw: no branch around the
                // noise (float and half on sm_90: 118 registers instead of
                // 128, nvcc 13.0 -ftz=true).
                each_slot(sh, block, [&](int i, int w, i64 j, const Philox4& p) {
                    const T z = c[i] + Noise<T>::gumbel(p, w);
                    if (i < sh.valid) fold(z, j);
                });
                each_uncached(sh, block, [&](int w, i64 j, const Philox4& p) {
                    fold((St::load(lr[j]) - m) + Noise<T>::gumbel(p, w), j);
                });
            }
            best = row_first_max(best, k, lanes);
            if (act && g.rank == 0) outr[s] = best.i;
        }
    }
}

#endif  // GUMBEL_NP_GUMBEL_CU
