// CUDA kernels of ordered samples without replacement: the Gumbel-top-k
// sampler and the Plackett-Luce log-probability with its backward pass.
// Twin of ranking.py, with its semantics; the geometry is that of softmax.cu
// (the `lanes` argument: a warp or less per row up to 1024 elements, a block
// of GNP_ROW_BLOCK threads beyond; grid-stride over rows; idle threads join
// every reduction), and every kernel is a template on the storage type S
// computing in T = Storage<S>::T.
//
// categorical_topk_fwd (geometry "noise": lanes by Philox blocks, as
// categorical_fwd).  z_j = (x_j - m) + G(j, draw 0), made as categorical_fwd
// makes it (the cached logits shifted, then the noise of the thread's whole
// Philox blocks, in registers), so sample 0 is categorical's draw.  The
// samples are the first nsamples categories that are not -inf in the order
// "larger z first, then the lower index" (a total order, the CPU's ties to
// the lowest index); a category whose shifted value overflowed to -inf is in
// that order too, after every finite z and in index order, as on the CPU.
// They are selected in rounds:
//
// * each thread keeps, in registers, a sorted list of the TOPK_LIST best of
//   its elements that come after the last sample taken (a compare-exchange
//   down the list; most elements fail the one compare with its last entry),
//   and whether it had to leave any out;
// * the row then merges the lists: the best head over the row (an ArgMax
//   reduction, whose order is the samples' order) is the next sample, and its
//   thread pops it, until a thread whose list has run out had left elements
//   out: its next element is unknown, so the round ends (a NaN head, which
//   ArgMaxOp ranks first, says so) and the next round starts after the last
//   sample.
//
// A round takes TOPK_LIST samples at least and about TOPK_LIST x threads
// per row at most (the samples of random rows spread over the threads); each
// costs a pass over the thread's cached z (the logits beyond the register
// cache, and their noise, are read and drawn again), and each sample one
// reduction: any nsamples <= k, in O(nsamples) reductions.  A row whose
// maximum is NaN or +-inf, or with fewer than nsamples categories that are
// not -inf, gets -1 in every sample (the CPU promises -1 in the first only).
// Half categorical_fwd's cache (TOPK_QUADS) and lists of 4 keep the kernel
// at 116 to 122 registers without spills (nvcc 13.0, -ftz=true, sm_80 and
// sm_90); the full cache with lists of 8 spilled 28 to 96 bytes.
//
// plackett_luce_log_prob_fwd and _bwd (geometry "rows").  With the
// normalisers L_q of ranking.py (L_q = logaddexp(L_{q+1}, x[i_q]) from
// L_n, the categories never chosen; no difference anywhere):
//
// * which categories were chosen is a bitmap in shared memory (a region per
//   row: `lanes` words in warp mode, at least k bits under the "rows"
//   geometry; MARK_WORDS words per block in block mode, 65536 categories,
//   longer rows taken a window of 65536 at a time, marked again for each
//   window), set with atomicOr from each thread's share of the ranking, which
//   also finds repeats (a bit set twice), chosen -inf categories and indices
//   outside [0, k) (never read: the row is NaN and *status = 1);
// * L_n, as the CPU makes it: the maximum m of the whole row (load_row_max),
//   then m + log(sum of exp(x_j - m) over the unmarked categories), NaN for
//   a row whose maximum is not finite; summed again, shifted by their own
//   maximum, where the first sum falls below REST_FLOOR (rest_floor below);
// * the recursion over the ranking is a scan: a thread holds a chunk of
//   consecutive choices of a segment of width x chunk, folds them with
//   logaddexp, gets the logaddexp of the threads after it (row_scan) and
//   finishes its own L_q in the CPU's order; the forward pass runs the
//   segments from the last, carrying L.  The backward pass needs the L_q in
//   increasing q for its weights A_q = 1 + A_{q-1} exp(L_q - L_{q-1}), an
//   affine recursion and so a scan of composed maps A -> a A + b (row_scan),
//   so it runs the segments from the first; the L at a segment's end is a
//   logsumexp reduction over the choices after it.  So a ranking of n costs
//   O(n / threads + log threads) dependent steps instead of n.
//
// The results differ from the CPU's by the rounding of the sums and of the
// recursions, which the scans associate differently (a few ulp of the terms;
// the device's sum of a long ranking's terms is the more accurate: the CPU
// adds them in order).  The gradient at a category chosen twice (a ranking
// of probability 0, with weight 0) is written by its last choice only, as
// the CPU's loop leaves it.  The normalisers' passes use half the register
// cache and the backward pass reads the logits again for its output, so that
// the double kernels stay at 116 to 120 registers without spills.

#ifndef GUMBEL_NP_RANKING_CU
#define GUMBEL_NP_RANKING_CU

#include "philox.cuh"
#include "rows.cuh"

namespace gnp {

// TOPK_QUADS: Philox blocks per thread kept in registers by the sampler
// (16 float or 8 double values).  TOPK_LIST: the length of each thread's
// list.  PL_FWD_CHUNK, PL_BWD_CHUNK: choices of a ranking per thread and
// segment (the backward pass holds three values per choice).  MARK_WORDS:
// the shared bitmap of a block (8 KiB).  Flags of a ranking: an index
// outside [0, k), probability 0, a repeated category.  Enumerators: nvcc
// warns of a constexpr variable that a file compiled without its templates'
// instances never references.
enum : int { TOPK_QUADS = 4, TOPK_LIST = 4, PL_FWD_CHUNK = 4, PL_BWD_CHUNK = 2, MARK_WORDS = 2048 };
enum : int { RANK_BAD = 1, RANK_IMPOSSIBLE = 2, RANK_REPEAT = 4 };

// Whether (v, i) comes before (w, j) among the samples: the larger value,
// then the lower index.
template <typename T, typename I>
__device__ __forceinline__ bool comes_before(T v, I i, T w, I j) {
    return v > w || (v == w && i < j);
}

// A thread's best elements after the last sample, sorted (entries with
// o < 0 are empty, at the end), and whether it left any out.  An element is
// kept as its ordinal among the thread's elements (cache slot i, then
// TOPK_QUADS * W + the count of uncached elements before it), which orders
// them as their indices do: an int instead of an i64 index per entry.
template <typename T, int L>
struct TopList {
    T v[L];
    int o[L];
    bool dropped;
};

template <typename T, int L>
__device__ __forceinline__ void clear(TopList<T, L>& b) {
#pragma unroll
    for (int q = 0; q < L; ++q) {
        b.v[q] = -Num<T>::inf();
        b.o[q] = -1;
    }
    b.dropped = false;
}

// Enters (v, o) into the list where it ranks among the best L (a
// compare-exchange down the list, so the indices stay constant and the list
// in registers).
template <typename T, int L>
__device__ __forceinline__ void offer(TopList<T, L>& b, T v, int o) {
    const bool full = b.o[L - 1] >= 0;
    if (full && !comes_before(v, o, b.v[L - 1], b.o[L - 1])) {
        b.dropped = true;
        return;
    }
    b.dropped |= full;  // the last entry makes room
#pragma unroll
    for (int q = 0; q < L; ++q) {
        const bool take = o >= 0 && (b.o[q] < 0 || comes_before(v, o, b.v[q], b.o[q]));
        if (take) {
            const T ov = b.v[q];
            const int oo = b.o[q];
            b.v[q] = v;
            b.o[q] = o;
            v = ov;
            o = oo;
        }
    }
}

template <typename T, int L>
__device__ __forceinline__ void pop(TopList<T, L>& b) {
#pragma unroll
    for (int q = 0; q + 1 < L; ++q) {
        b.v[q] = b.v[q + 1];
        b.o[q] = b.o[q + 1];
    }
    b.v[L - 1] = -Num<T>::inf();
    b.o[L - 1] = -1;
}

// log(exp(a) + exp(b)) as ranking.py computes it: the larger plus log1p of
// exp(-|a - b|), that term 0 where the distance is NaN (two -inf, two +inf);
// NaN-propagating, and exactly commutative (so a butterfly reduction agrees
// on every lane), with -inf an exact identity.
template <typename T>
__device__ __forceinline__ T log_add_exp(T a, T b) {
    const T hi = max_nan(a, b);
    const T d = a - b;
    const T nd = d > T(0) ? -d : d;
    const T t = nd == nd ? exp_t(nd) : T(0);
    return hi + log1p_t(t);
}

struct LogAddExpOp {
    template <typename T>
    __device__ T operator()(T a, T b) const { return log_add_exp(a, b); }
};

struct OrOp {
    __device__ int operator()(int a, int b) const { return a | b; }
};

// The map A -> a A + b; composed in order: f then g is (g.a f.a, g.a f.b + g.b).
template <typename T>
struct Affine {
    T a, b;
};

struct AffineOp {
    template <typename T>
    __device__ Affine<T> operator()(Affine<T> f, Affine<T> g) const {
        Affine<T> h;
        h.a = g.a * f.a;
        h.b = g.a * f.b + g.b;
        return h;
    }
};

template <typename T>
__device__ __forceinline__ Affine<T> shfl_xor(Affine<T> f, int o) {
    Affine<T> g;
    g.a = shfl_xor(f.a, o);
    g.b = shfl_xor(f.b, o);
    return g;
}

// x[i] of a ranking's index i, or NaN (never reading it) outside [0, k).
template <typename S>
__device__ __forceinline__ typename Storage<S>::T ranked_logit(const S* __restrict__ xr, i64 i, i64 k) {
    typedef typename Storage<S>::T T;
    return i >= 0 && i < k ? Storage<S>::load(xr[i]) : Num<T>::nan();
}

// A row's bitmap of chosen categories: `words` words in shared memory,
// `span` bits, the categories of one window.
struct Marks {
    u32* bits;
    int words;
    i64 span;
};

__device__ __forceinline__ Marks marks_of(u32* pool, const Rows& g, int lanes) {
    Marks mk;
    if (lanes == 0) {
        mk.bits = pool;
        mk.words = MARK_WORDS;
    } else {
        mk.bits = pool + (threadIdx.x / WARP) * WARP + g.sub * lanes;
        mk.words = lanes;
    }
    mk.span = static_cast<i64>(mk.words) * 32;
    return mk;
}

__device__ __forceinline__ bool marked(const Marks& mk, i64 b) {
    return (mk.bits[b >> 5] >> (b & 31)) & 1u;
}

// Marks the categories in [w0, w1) that the ranking ir[0 .. n) of the row
// xr chooses (each thread its share of the ranking) and returns its flags
// (RANK_*, for this thread's share).  Every thread of the warp or block must
// call it: it clears the bitmap after a barrier (the previous window's or
// row's readers are done) and ends with one (the marks are complete).
template <typename S>
__device__ int mark_window(const Marks& mk, const S* __restrict__ xr, const i64* __restrict__ ir, i64 n,
                           i64 k, i64 w0, i64 w1, const Rows& g, int lanes) {
    typedef typename Storage<S>::T T;
    rows_sync(lanes);
    const int used = static_cast<int>((w1 - w0 + 31) >> 5);
    for (int w = g.rank; w < used; w += g.width) mk.bits[w] = 0u;
    rows_sync(lanes);
    int flags = 0;
    for (i64 q = g.rank; q < n; q += g.width) {
        const i64 i = ir[q];
        if (i < 0 || i >= k) {
            flags |= RANK_BAD;
            continue;
        }
        if (i < w0 || i >= w1) continue;
        const i64 b = i - w0;
        const u32 bit = 1u << (b & 31);
        if (atomicOr(mk.bits + (b >> 5), bit) & bit) flags |= RANK_REPEAT | RANK_IMPOSSIBLE;
        if (Storage<S>::load(xr[i]) == -Num<T>::inf()) flags |= RANK_IMPOSSIBLE;
    }
    rows_sync(lanes);
    return flags;
}

// cached(slot, j, chosen) for each cached element j of the thread, then
// uncached(j, chosen) for each uncached one, with chosen = whether the
// ranking chooses j; returns the flags of the markings it made.  A row of at
// most mk.span categories (`one`) was marked once before the passes; a
// longer one is marked again window by window.  Every thread of the warp or
// block must call it (k, not the row's kr, counts the windows).
template <int N, typename S, typename Cached, typename Uncached>
__device__ int marked_pass(const Marks& mk, bool one, const Share<1, N>& sh, const S* __restrict__ xr,
                           const i64* __restrict__ ir, i64 n, i64 k, const Rows& g, int lanes, Cached cached,
                           Uncached uncached) {
    int flags = 0;
    i64 u = sh.tail;  // the next uncached element
    for (i64 w0 = 0; w0 < k; w0 += mk.span) {
        const i64 w1 = k - w0 < mk.span ? k : w0 + mk.span;
        if (!one) flags |= mark_window(mk, xr, ir, n, k, w0, w1, g, lanes);
        each_cached(sh, NoBlock(), [&](int i, int, i64 j, int) {
            if (j >= w0 && j < w1) cached(i, j, marked(mk, j - w0));
        });
        // The uncached elements tail, tail + width, ... in increasing
        // order: each window takes up where the last one stopped.
        const i64 end = w1 < sh.kr ? w1 : sh.kr;
        for (; u < end; u += sh.width) uncached(u, marked(mk, u - w0));
    }
    return flags;
}

// f(j, chosen) for the thread's elements j = rank, rank + width, ... of a
// row of kr elements, without a cache (as marked_pass otherwise).
template <typename S, typename F>
__device__ int plain_marked_pass(const Marks& mk, bool one, const S* __restrict__ xr,
                                 const i64* __restrict__ ir, i64 n, i64 k, i64 kr, const Rows& g, int lanes,
                                 F f) {
    int flags = 0;
    i64 u = g.rank;
    for (i64 w0 = 0; w0 < k; w0 += mk.span) {
        const i64 w1 = k - w0 < mk.span ? k : w0 + mk.span;
        if (!one) flags |= mark_window(mk, xr, ir, n, k, w0, w1, g, lanes);
        const i64 end = w1 < kr ? w1 : kr;
        for (; u < end; u += g.width) f(u, marked(mk, u - w0));
    }
    return flags;
}

// REST_FLOOR of ranking.py (2**-60): a row whose categories never chosen
// sum below it, shifted by the row maximum, sums them again shifted by their
// own maximum (their terms could have underflowed).
template <typename T>
__device__ __forceinline__ T rest_floor() {
    return T(8.67361737988403547206e-19);
}

// The normaliser of the categories never chosen, L_n of ranking.py, on every
// thread of the row: with m the NaN-propagating maximum of the whole row and
// s the sum of exp(x_j - m) over the categories never chosen, (m + log s) +
// (m - m), NaN for a row whose maximum is not finite (NaN, +inf, all -inf);
// where s < rest_floor and m is finite, mu + log(sum exp(x_j - mu)) over
// those categories with mu their own maximum (summed in double, as the CPU
// does), -inf when there are none.  The row's flags (RANK_*, reduced over
// the row) go to *flags.  c: the thread's cache of the row.
template <int N, typename S>
__device__ typename Storage<S>::T unchosen_normaliser(typename Storage<S>::T (&c)[N], const Marks& mk,
                                                      bool one, const Share<1, N>& sh,
                                                      const S* __restrict__ xr, const i64* __restrict__ ir,
                                                      i64 n, i64 k, const Rows& g, int lanes, int* flags) {
    typedef typename Storage<S>::T T;
    typedef Storage<S> St;
    const T ninf = -Num<T>::inf();
    const T m = load_row_max(c, xr, sh, lanes);
    int f = one ? mark_window(mk, xr, ir, n, k, 0, k, g, lanes) : 0;
    T s = T(0);
    double w = 0.0;
    f |= marked_pass(
        mk, one, sh, xr, ir, n, k, g, lanes,
        [&](int i, i64, bool chosen) {
            if (!chosen) s += exp_t(c[i] - m);
        },
        [&](i64 j, bool chosen) {
            if (!chosen) w += exp_t(St::load(xr[j]) - m);
        });
    *flags = row_reduce(f, OrOp(), 0, lanes);
    s = row_reduce(plus_wide(s, w), SumOp(), T(0), lanes);
    T ln = (m + log_t(s)) + (m - m);
    const bool rare = s < rest_floor<T>() && m - m == T(0);
    // Every row of the warp takes the passes when one needs them (they reduce).
    if (!rows_all(!rare, lanes)) {
        T mu = ninf;
        marked_pass(
            mk, one, sh, xr, ir, n, k, g, lanes,
            [&](int i, i64, bool chosen) {
                if (!chosen) mu = max_nan(mu, c[i]);
            },
            [&](i64 j, bool chosen) {
                if (!chosen) mu = max_nan(mu, St::load(xr[j]));
            });
        mu = row_reduce(mu, MaxOp(), ninf, lanes);
        double t = 0.0;
        marked_pass(
            mk, one, sh, xr, ir, n, k, g, lanes,
            [&](int i, i64, bool chosen) {
                if (!chosen) t += exp_t(c[i] - mu);
            },
            [&](i64 j, bool chosen) {
                if (!chosen) t += exp_t(St::load(xr[j]) - mu);
            });
        t = row_reduce(t, SumOp(), 0.0, lanes);
        if (rare) ln = mu == ninf ? ninf : mu + log_t(static_cast<T>(t));
    }
    return ln;
}

// The choices q0 .. q0 + C - 1 of a ranking (those below n):
// cq[t] = x[i_q] (NaN for an index outside [0, k), -inf past n), and their
// logaddexp, folded from the last as the recursion runs.
template <int C, typename S>
__device__ __forceinline__ typename Storage<S>::T load_chunk(typename Storage<S>::T (&cq)[C],
                                                             const S* __restrict__ xr,
                                                             const i64* __restrict__ ir, i64 q0, i64 n,
                                                             i64 k) {
    typedef typename Storage<S>::T T;
    T tot = -Num<T>::inf();
#pragma unroll
    for (int t = C - 1; t >= 0; --t) {
        const i64 q = q0 + t;
        cq[t] = q < n ? ranked_logit(xr, ir[q], k) : -Num<T>::inf();
        tot = log_add_exp(tot, cq[t]);
    }
    return tot;
}

}  // namespace gnp

// Gumbel-top-k: samples[r, q] = the index of the q-th of row r's categories
// that are not -inf in the order of z = (x - max x) + Gumbel(key, rid, j, 0)
// (larger first, ties to the lower index), q < nsamples; -1 in every sample
// of a row whose maximum is not finite or with fewer than nsamples such
// categories (see the notes at the top).
template <typename S>
__global__ void GNP_BOUNDS categorical_topk_fwd(const S* __restrict__ logits, gnp::i64* __restrict__ samples,
                                                gnp::i64 rows, gnp::i64 k, gnp::i64 nsamples, gnp::u32 k0,
                                                gnp::u32 k1, const gnp::i64* __restrict__ row_ids, int lanes) {
    using namespace gnp;
    typedef typename Storage<S>::T T;
    typedef Storage<S> St;
    constexpr int W = Noise<T>::W;
    constexpr int L = TOPK_LIST;
    const T ninf = -Num<T>::inf();
    const Rows g = rows_of(lanes);
    for (i64 r0 = g.first; r0 < rows; r0 += g.step) {
        const i64 r = r0 + g.sub;
        const bool valid = r < rows;
        const Share<W, TOPK_QUADS> sh = share_of<W, TOPK_QUADS>(g, valid ? k : 0);
        const S* lr = logits + r * k;
        i64* outr = samples + r * nsamples;

        T c[TOPK_QUADS * W];
        const T m = load_row_max(c, lr, sh, lanes);
        const bool ok = valid && m - m == T(0);
        if (valid && !ok) {
            for (i64 s = g.rank; s < nsamples; s += g.width) outr[s] = -1;
        }
        const i64 rid = valid ? row_id(row_ids, r) : 0;
        const auto block = [&](i64 q) { return stream_block(k0, k1, rid, static_cast<u64>(q), 0u); };
        // z replaces the cached logits; bit i of `masked`: slot i held -inf
        // (a masked category, or the padding past the row).
        u32 masked = 0u;
        if (ok) {
            each_slot(sh, block, [&](int i, int w, i64, const Philox4& p) {
                masked |= static_cast<u32>(c[i] == ninf) << i;
                c[i] = (c[i] - m) + Noise<T>::gumbel(p, w);
            });
        }

        i64 taken = 0;                         // samples written
        T tv = Num<T>::inf();                  // the last sample (value, index):
        i64 ti = -1;                           // the next ones come after it
        bool finished = !ok || nsamples == 0;  // idle and invalid rows too
        // The index of the thread's element of ordinal o (see TopList).
        const auto element_of = [&](int o) {
            return (sh.rank + static_cast<i64>(o / W) * sh.width) * W + o % W;
        };
        while (!rows_all(finished, lanes)) {
            TopList<T, L> b;
            clear(b);
            if (!finished) {
                const auto consider = [&](T z, i64 j, int o) {
                    if (comes_before(tv, ti, z, j)) offer(b, z, o);
                };
                each_cached(sh, NoBlock(), [&](int i, int, i64 j, int) {
                    if (!((masked >> i) & 1u)) consider(c[i], j, i);
                });
                int o = TOPK_QUADS * W;
                each_uncached(sh, block, [&](int w, i64 j, const Philox4& p) {
                    const T x = St::load(lr[j]);
                    if (x != ninf) consider((x - m) + Noise<T>::gumbel(p, w), j, o);
                    ++o;
                });
            }
            bool merged = finished;
            while (!rows_all(merged, lanes)) {
                ArgMax<T> head = no_max<T>(k);
                if (b.o[0] >= 0) {
                    head.v = b.v[0];
                    head.i = element_of(b.o[0]);
                } else if (b.dropped) {
                    head.v = Num<T>::nan();  // this thread's next element is unknown
                }
                const ArgMax<T> best = row_first_max(head, k, lanes);
                if (merged) continue;
                if (is_nan(best.v)) {
                    merged = true;  // a new round, after the last sample
                } else if (best.i >= k) {
                    // Every category that is not -inf is taken: too few.
                    // Written by the thread that wrote the samples.
                    if (g.rank == 0) {
                        for (i64 s = 0; s < nsamples; ++s) outr[s] = -1;
                    }
                    merged = finished = true;
                } else {
                    if (g.rank == 0) outr[taken] = best.i;
                    tv = best.v;
                    ti = best.i;
                    if (b.o[0] >= 0 && element_of(b.o[0]) == best.i) pop(b);
                    if (++taken == nsamples) merged = finished = true;
                }
            }
        }
    }
}

// out_rows[r] = log P(ranking) = sum_q x[i_q] - L_q for the ranking
// index[r, 0 .. nsamples) of row r; -inf for a ranking of probability 0 (a
// repeat, a chosen -inf), NaN with *status = 1 for an index outside [0, k),
// NaN for NaN or +inf logits.
template <typename S>
__global__ void GNP_BOUNDS plackett_luce_log_prob_fwd(const S* __restrict__ logits,
                                                      const gnp::i64* __restrict__ index,
                                                      S* __restrict__ out_rows, gnp::i64* __restrict__ status,
                                                      gnp::i64 rows, gnp::i64 k, gnp::i64 nsamples, int lanes) {
    using namespace gnp;
    typedef typename Storage<S>::T T;
    typedef Storage<S> St;
    constexpr int N = Num<T>::CACHE / 2;
    constexpr int C = PL_FWD_CHUNK;
    __shared__ u32 pool[MARK_WORDS];
    const T ninf = -Num<T>::inf();
    const Rows g = rows_of(lanes);
    const Marks mk = marks_of(pool, g, lanes);
    const bool one = k <= mk.span;
    const i64 seg = static_cast<i64>(g.width) * C;
    for (i64 r0 = g.first; r0 < rows; r0 += g.step) {
        const i64 r = r0 + g.sub;
        const i64 kr = r < rows ? k : 0;  // an idle thread still joins the reductions
        const i64 n = r < rows ? nsamples : 0;
        const S* xr = logits + r * k;
        const i64* ir = index + r * nsamples;
        const Share<1, N> sh = share_of<1, N>(g, kr);
        T c[N];
        int flags;
        const T ln = unchosen_normaliser(c, mk, one, sh, xr, ir, n, k, g, lanes, &flags);

        // The segments from the last: carry = L at the segment's end (none
        // for an empty ranking, whose log-probability is 0).
        T acc = T(0), carry = ln;
        for (i64 s0 = nsamples > 0 ? (nsamples - 1) / seg * seg : -1; s0 >= 0; s0 -= seg) {
            const i64 q0 = s0 + static_cast<i64>(g.rank) * C;
            T cq[C];
            const T tot = load_chunk(cq, xr, ir, q0, n, k);
            T total;
            const T after = row_scan<true>(tot, LogAddExpOp(), ninf, lanes, total);
            T lq = log_add_exp(after, carry);
#pragma unroll
            for (int t = C - 1; t >= 0; --t) {
                if (q0 + t < n) {
                    lq = log_add_exp(lq, cq[t]);
                    acc += cq[t] - lq;
                }
            }
            carry = log_add_exp(carry, total);
        }
        acc = row_reduce(acc, SumOp(), T(0), lanes);
        if (r < rows && g.rank == 0) {
            out_rows[r] = St::store((flags & RANK_IMPOSSIBLE) && acc == acc ? ninf : acc);
            if ((flags & RANK_BAD) && status != nullptr) *status = 1;
        }
    }
}

// out[r] = g_rows[r] * d log P(ranking of row r) / d logits[r] (ranking.py's
// formulas): -A_{n-1} exp(x_j - L_{n-1}) at a category never chosen,
// exp(L_{q+1} - L_q) - A_{q-1} exp(x[i_q] - L_{q-1}) at i_q; the weight is
// 0 for a ranking of probability 0; the row is NaN, with *status = 1, for an
// index outside [0, k).
template <typename S>
__global__ void GNP_BOUNDS plackett_luce_log_prob_bwd(const S* __restrict__ g_rows,
                                                      const S* __restrict__ logits,
                                                      const gnp::i64* __restrict__ index, S* __restrict__ out,
                                                      gnp::i64* __restrict__ status, gnp::i64 rows, gnp::i64 k,
                                                      gnp::i64 nsamples, int lanes) {
    using namespace gnp;
    typedef typename Storage<S>::T T;
    typedef Storage<S> St;
    constexpr int N = Num<T>::CACHE / 2;
    constexpr int C = PL_BWD_CHUNK;
    __shared__ u32 pool[MARK_WORDS];
    const T ninf = -Num<T>::inf();
    const Rows g = rows_of(lanes);
    const Marks mk = marks_of(pool, g, lanes);
    const bool one = k <= mk.span;
    const i64 seg = static_cast<i64>(g.width) * C;
    Affine<T> unit;
    unit.a = T(1);
    unit.b = T(0);
    for (i64 r0 = g.first; r0 < rows; r0 += g.step) {
        const i64 r = r0 + g.sub;
        const i64 kr = r < rows ? k : 0;  // an idle thread still joins the reductions
        const i64 n = r < rows ? nsamples : 0;
        const S* xr = logits + r * k;
        const i64* ir = index + r * nsamples;
        S* outr = out + r * k;
        int flags;
        T ln;
        {
            // The cache serves the two passes of the normaliser; the last
            // pass reads the logits again, so that the recursion's registers
            // need not share with it (128 registers and spills otherwise).
            const Share<1, N> sh = share_of<1, N>(g, kr);
            T c[N];
            ln = unchosen_normaliser(c, mk, one, sh, xr, ir, n, k, g, lanes, &flags);
        }
        const bool bad = flags & RANK_BAD, repeat = flags & RANK_REPEAT;
        const T gr = kr > 0 && !(flags & RANK_IMPOSSIBLE) ? St::load(g_rows[r]) : T(0);

        // The segments from the first: carry = A_{q0 - 1} (A_{-1} = 0).
        T carry = T(0);
        for (i64 s0 = 0; s0 < nsamples; s0 += seg) {
            // L at the segment's end: the choices after it and L_n.
            T end = ninf;
            if (s0 + seg < nsamples) {
                for (i64 q = s0 + seg + g.rank; q < n; q += g.width) {
                    end = log_add_exp(end, ranked_logit(xr, ir[q], k));
                }
                end = row_reduce(end, LogAddExpOp(), ninf, lanes);
            }
            end = log_add_exp(end, ln);

            const i64 q0 = s0 + static_cast<i64>(g.rank) * C;
            T cq[C], lq[C], aq[C];
            const T tot = load_chunk(cq, xr, ir, q0, n, k);
            T total;
            const T after = row_scan<true>(tot, LogAddExpOp(), ninf, lanes, total);
            const T next = log_add_exp(after, end);  // L after this thread's last choice
            T l = next;
#pragma unroll
            for (int t = C - 1; t >= 0; --t) {
                if (q0 + t < n) l = log_add_exp(l, cq[t]);
                lq[t] = l;
            }
            // L_{q0 - 1}, from the choice before this thread's first.
            const T lprev = q0 >= 1 && q0 < n ? log_add_exp(lq[0], ranked_logit(xr, ir[q0 - 1], k)) : ninf;

            // a_q = exp(L_q - L_{q-1}) (a_0 = 0: A_0 = 1), and the thread's
            // maps A -> a_q A + 1 composed, then those of the threads before.
            Affine<T> f = unit;
#pragma unroll
            for (int t = 0; t < C; ++t) {
                const i64 q = q0 + t;
                aq[t] = q == 0 ? T(0) : exp_t(lq[t] - (t == 0 ? lprev : lq[t - 1]));
                if (q < n) {
                    Affine<T> h;
                    h.a = aq[t];
                    h.b = T(1);
                    f = AffineOp()(f, h);
                }
            }
            Affine<T> all;
            const Affine<T> before = row_scan<false>(f, AffineOp(), unit, lanes, all);
            T a = before.a * carry + before.b;  // A_{q0 - 1}
#pragma unroll
            for (int t = 0; t < C; ++t) {
                const i64 q = q0 + t;
                if (q >= n) continue;
                const T keep = exp_t((t + 1 < C ? lq[t + 1] : next) - lq[t]);
                const T taken = q > 0 ? a * exp_t(cq[t] - (t == 0 ? lprev : lq[t - 1])) : T(0);
                a = T(1) + a * aq[t];  // A_q
                if (bad) continue;  // the row is NaN, written below
                const i64 i = ir[q];
                bool last = true;  // a repeated category keeps its last choice's value
                if (repeat) {
                    for (i64 p = q + 1; p < n && last; ++p) last = ir[p] != i;
                }
                if (last) outr[i] = St::store(gr * (keep - taken));
            }
            carry = all.a * carry + all.b;
        }
        // The categories never chosen (every category of a NaN row), with
        // A_{n-1} = carry and L_{n-1} = logaddexp(L_n, x[i_{n-1}]) (on the
        // thread that holds choice n - 1 the same value, bit for bit: the
        // threads after it add -inf, an exact identity).
        // An empty ranking has log-probability 0 at any logits: gradient 0.
        const bool none = nsamples == 0;
        const T l_last = n > 0 ? log_add_exp(ln, ranked_logit(xr, ir[n - 1], k)) : ninf;
        const T w = -gr * carry;
        const T nan = Num<T>::nan();
        plain_marked_pass(mk, one, xr, ir, n, k, kr, g, lanes, [&](i64 j, bool chosen) {
            if (none) {
                outr[j] = St::store(T(0));
            } else if (bad || !chosen) {
                outr[j] = St::store(bad ? nan : w * exp_t(St::load(xr[j]) - l_last));
            }
        });
        if (r < rows && g.rank == 0 && bad && status != nullptr) *status = 1;
    }
}

#endif  // GUMBEL_NP_RANKING_CU
