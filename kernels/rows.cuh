// Row primitives of the CUDA kernels, shared by softmax.cu, gumbel.cu,
// estimators.cu, ranking.cu, concrete.cu and conditional.cu (twin of
// kernels/_rows.py): per-dtype constants and math, the storage conversions of
// __half, the NaN-propagating maximum, the arg-max order, the warp/block
// reductions (of one value or of two at once) and scans (and the
// loop condition and barrier of the warps that hold several rows), the
// mapping of threads to rows and a
// thread's share of its row, and the passes over a row built on them: its
// load and NaN-propagating maximum, the sum of its terms (the exponentials),
// its log-normaliser (log_softmax's, with the log1p precision of peaked rows),
// a plain sum over it, the scaled output, the dot product of two rows and the
// one-hot of the first maximum.  Also the noise modes of the Gumbel-Softmax
// kernel.  The launch geometry they assume is described in softmax.cu.

#ifndef GUMBEL_NP_ROWS_CUH
#define GUMBEL_NP_ROWS_CUH

#include <cuda_fp16.h>

#include "philox.cuh"

// Threads of a block-per-row launch; warp-per-row launches use 256.  Must
// match ROW_BLOCK and WARP_BLOCK in cuda.py.  The bounds' minimum of one
// resident block keeps ptxas from squeezing a kernel that needs a few more
// than 64 registers into 64 (two blocks of 512 per multiprocessor) by
// spilling: with __launch_bounds__(GNP_ROW_BLOCK) alone, softmax_fwd<float>
// took 64 registers and 8 bytes of local memory, with the minimum 72 (sm_80)
// and 70 (sm_90) registers and none (nvcc 13.0, -ftz=true).
#define GNP_ROW_BLOCK 512
#define GNP_BOUNDS __launch_bounds__(GNP_ROW_BLOCK, 1)
// For a kernel that fits in 64 registers: two resident blocks, and ptxas
// allocates within their 64.
#define GNP_BOUNDS_TWO_BLOCKS __launch_bounds__(GNP_ROW_BLOCK, 2)

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
// log(1 + exp(b)) as max(b, 0) + log1p(exp(-|b|)): no overflow, +inf for
// +inf.
template <typename T>
__device__ __forceinline__ T softplus_t(T b) {
    return (b > T(0) ? b : T(0)) + log1p_t(exp_t(-(b < T(0) ? -b : b)));
}

// The float just below x (toward -inf).
__device__ __forceinline__ float next_below(float x) { return nextafterf(x, -Num<float>::inf()); }
__device__ __forceinline__ double next_below(double x) { return nextafter(x, -Num<double>::inf()); }

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
__device__ __forceinline__ int shfl_xor(int v, int o) {
    return __shfl_xor_sync(0xffffffffu, v, o);
}
template <typename T>
__device__ __forceinline__ ArgMax<T> shfl_xor(ArgMax<T> a, int o) {
    ArgMax<T> b;
    b.v = shfl_xor(a.v, o);
    b.i = shfl_xor(a.i, o);
    return b;
}

// Two values reduced at once, each by Op: one butterfly for both, and in
// block mode one pair of barriers instead of two (a row's sum and dot
// product, its maximum and minimum).
template <typename T>
struct Two {
    T a, b;
};

template <typename T>
__device__ __forceinline__ Two<T> shfl_xor(Two<T> v, int o) {
    Two<T> w;
    w.a = shfl_xor(v.a, o);
    w.b = shfl_xor(v.b, o);
    return w;
}

template <typename Op>
struct BothOp {
    template <typename T>
    __device__ Two<T> operator()(Two<T> x, Two<T> y) const {
        Two<T> z;
        z.a = Op()(x.a, y.a);
        z.b = Op()(x.b, y.b);
        return z;
    }
};

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

// Exclusive scan over the threads of a row in rank order: returns
// op(v_0, ..., v_{rank-1}) (REVERSE: op(v_{rank+1}, ..., v_last)), identity
// for none, and sets total = op(v_0, ..., v_last), the same on every thread
// of the row.  op must be associative; it is applied to its operands in rank
// order, so it need not commute.  Within a warp, xor butterflies: at step o
// each thread holds the total of its aligned group of o threads and combines
// it with the neighbouring group's, which comes before or after its own by
// bit o of its rank (no shfl_up/down, so the emulation's shuffle model and
// row_reduce's suffice).  In block mode the warp totals meet in shared memory
// and every thread folds them all, noting the fold of those before (after)
// its own warp: at most GNP_ROW_BLOCK / WARP of them.  Every thread of the warp (lanes > 0) or of
// the block (lanes == 0) must call it, as row_reduce.
template <bool REVERSE, typename V, typename Op>
__device__ __forceinline__ V row_scan(V v, Op op, V identity, int lanes, V& total) {
    const int width = lanes > 0 ? lanes : WARP;
    const int rank = static_cast<int>(threadIdx.x) % width;
    V ex = identity;
    for (int o = 1; o < width; o <<= 1) {
        const V other = shfl_xor(v, o);
        if (rank & o) {  // the other group comes first
            if (!REVERSE) ex = op(other, ex);
            v = op(other, v);
        } else {
            if (REVERSE) ex = op(ex, other);
            v = op(v, other);
        }
    }
    if (lanes == 0) {
        __shared__ V part[WARP];
        const int warp = threadIdx.x / WARP, lane = threadIdx.x % WARP;
        __syncthreads();  // the previous scan's reads are done
        if (lane == 0) part[warp] = v;
        __syncthreads();
        // One fold over the warp totals, in rank order (REVERSE: from the
        // last), that notes where this thread's warp begins.  Not unrolled:
        // an unrolled fold of 16 totals kept several in flight, 60 registers
        // more for the maps of plackett_luce_log_prob_bwd<double>.
        const int warps = static_cast<int>(blockDim.x / WARP);
        V side = identity, acc = identity;
#pragma unroll 1
        for (int i = 0; i < warps; ++i) {
            const int w = REVERSE ? warps - 1 - i : i;
            if (w == warp) side = acc;
            acc = REVERSE ? op(part[w], acc) : op(acc, part[w]);
        }
        ex = REVERSE ? op(ex, side) : op(side, ex);
        v = acc;
    }
    total = v;
    return ex;
}

// Whether f holds on every row of the warp (lanes > 0) or block (lanes ==
// 0), given an f that is the same on every thread of a row: the condition of
// a loop whose body reduces over the row, which every thread of the warp must
// run as often as the others when a warp holds several rows.
__device__ __forceinline__ bool rows_all(bool f, int lanes) {
    if (lanes == 0 || lanes == WARP) return f;
    int v = f ? 1 : 0;
    for (int o = lanes; o < WARP; o <<= 1) v &= shfl_xor(v, o);
    return v != 0;
}

// A barrier among the threads of the warp (lanes > 0) or block (lanes == 0)
// that share shared memory between rows: __syncwarp orders the shared-memory
// accesses of the lanes of a warp as __syncthreads does those of a block.
__device__ __forceinline__ void rows_sync(int lanes) {
    if (lanes == 0) {
        __syncthreads();
    } else {
        __syncwarp();
    }
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

// The noise_mode argument of gumbel_softmax_fwd and log_gumbel_softmax_fwd:
// draw the noise from the key, read it from the noise array, or add none
// (_ops.NOISE_*, same numbers).
constexpr int NOISE_DRAW = 0, NOISE_ARRAY = 1, NOISE_NONE = 2;

// The stream id of row r: row_ids[r], or r when there are none.
__device__ __forceinline__ i64 row_id(const i64* __restrict__ row_ids, i64 r) {
    return row_ids != nullptr ? row_ids[r] : r;
}

// Philox block q of a row's draw-0 stream when noise_mode is NOISE_DRAW
// (otherwise no noise is drawn and the block is unused).
__device__ __forceinline__ Philox4 mode_block(int noise_mode, u32 k0, u32 k1, i64 rid, i64 q) {
    Philox4 p = {{0u, 0u, 0u, 0u}};
    if (noise_mode == NOISE_DRAW) p = stream_block(k0, k1, rid, static_cast<u64>(q), 0u);
    return p;
}

// The noise of element j (word w of its block p) of a Gumbel-Softmax row:
// drawn, read from nr or none, by noise_mode.
template <typename S>
__device__ __forceinline__ typename Storage<S>::T mode_noise(int noise_mode, const Philox4& p,
                                                             int w, const S* nr, i64 j) {
    typedef typename Storage<S>::T T;
    return noise_mode == NOISE_DRAW    ? Noise<T>::gumbel(p, w)
           : noise_mode == NOISE_ARRAY ? Storage<S>::load(nr[j])
                                       : T(0);
}

// A thread's share of a row of kr elements (kr = 0 on an idle thread, which
// still joins the reductions), in units of U consecutive elements: single
// elements in the softmax family, Philox blocks (Noise<T>::W elements) in the
// Gumbel family.  The thread takes units rank, rank + width, ... < units; the
// first n of them (at most NU; n is the same on every thread of the row) stay
// in its register cache, unit rank + i * width in slots i * U ... i * U + U - 1
// of a T[NU * U], and the units from `tail` on are read again in each pass.
// Element j grows with the slot, so the slots holding elements of the row
// (j < kr) are the first `valid` ones: the cached passes test the slot, a
// constant after unrolling, against one int instead of j against kr in 64
// bits, which took 4 to 20 registers more in the softmax kernels (nvcc 13.0,
// sm_80 and sm_90: softmax_fwd<float> 90 against 72 on sm_80).
template <int U, int NU>
struct Share {
    i64 kr, units, tail;
    int width, rank, n, valid;
};

template <int U, int NU>
__device__ __forceinline__ Share<U, NU> share_of(const Rows& g, i64 kr) {
    Share<U, NU> sh;
    sh.kr = kr;
    sh.units = (kr + U - 1) / U;
    sh.tail = g.rank + static_cast<i64>(NU) * g.width;
    sh.width = g.width;
    sh.rank = g.rank;
    sh.n = slots<NU>(sh.units, g.width);
    // Slot i * U + w holds element rank * U + i * stride + w.
    const i64 lim = kr - static_cast<i64>(g.rank) * U, stride = static_cast<i64>(g.width) * U;
    const i64 full = lim > 0 ? lim / stride : 0, rem = lim > 0 ? lim - full * stride : 0;
    sh.valid = full >= NU ? NU * U : static_cast<int>(full) * U + static_cast<int>(rem < U ? rem : U);
    return sh;
}

// The per-unit state of a pass that needs none (see each_cached).
struct NoBlock {
    __device__ int operator()(i64) const { return 0; }
};

// f(slot, w, j, b) for each slot of the n cached units, in slot order, past
// the end of the row too (slot >= valid, j >= kr): element w of unit q,
// b = unit(q) (its Philox block, say) evaluated once per unit.
template <int U, int NU, typename Unit, typename F>
__device__ __forceinline__ void each_slot(const Share<U, NU>& sh, Unit unit, F f) {
#pragma unroll
    for (int i = 0; i < NU; ++i) {
        if (i >= sh.n) break;
        const i64 q = sh.rank + static_cast<i64>(i) * sh.width;
        const auto b = unit(q);
#pragma unroll
        for (int w = 0; w < U; ++w) f(i * U + w, w, q * U + w, b);
    }
}

// f(slot, w, j, b) for each cached element j < kr, as each_slot.
template <int U, int NU, typename Unit, typename F>
__device__ __forceinline__ void each_cached(const Share<U, NU>& sh, Unit unit, F f) {
    each_slot(sh, unit, [&](int s, int w, i64 j, const auto& b) {
        if (s < sh.valid) f(s, w, j, b);
    });
}

// f(w, j, b) for each uncached element j < kr, unit by unit, as each_cached.
template <int U, int NU, typename Unit, typename F>
__device__ __forceinline__ void each_uncached(const Share<U, NU>& sh, Unit unit, F f) {
    for (i64 q = sh.tail; q < sh.units; q += sh.width) {
        const auto b = unit(q);
#pragma unroll
        for (int w = 0; w < U; ++w) {
            const i64 j = q * U + w;
            if (j < sh.kr) f(w, j, b);
        }
    }
}

// Loads the thread's cached elements of row xr into c, `pad` past the end of
// the row (every slot of the n cached units is set).
template <int U, int NU, typename S>
__device__ __forceinline__ void load_row(typename Storage<S>::T (&c)[NU * U], const S* __restrict__ xr,
                                         const Share<U, NU>& sh, typename Storage<S>::T pad) {
    each_slot(sh, NoBlock(), [&](int s, int, i64 j, int) {
        c[s] = s < sh.valid ? Storage<S>::load(xr[j]) : pad;
    });
}

// Loads the thread's cached elements of row xr into c (-inf past its end)
// and returns the NaN-propagating maximum of the row, on every thread of it.
template <int U, int NU, typename S>
__device__ __forceinline__ typename Storage<S>::T load_row_max(typename Storage<S>::T (&c)[NU * U],
                                                               const S* __restrict__ xr,
                                                               const Share<U, NU>& sh, int lanes) {
    typedef typename Storage<S>::T T;
    load_row(c, xr, sh, -Num<T>::inf());
    T m = -Num<T>::inf();
    each_slot(sh, NoBlock(), [&](int s, int, i64, int) { m = max_nan(m, c[s]); });
    each_uncached(sh, NoBlock(), [&](int, i64 j, int) { m = max_nan(m, Storage<S>::load(xr[j])); });
    return row_reduce(m, MaxOp(), -Num<T>::inf(), lanes);
}

// The sum over the row of its terms e_j, on every thread of the row: each
// cached slot (j < kr) is replaced by its term, term(c), and the uncached
// terms are at(b, w, j) (b = unit(q), as each_uncached).  The cached terms
// add up in T, the uncached ones in double (plus_wide).
template <int U, int NU, typename T, typename Term, typename Unit, typename At>
__device__ __forceinline__ T row_term_sum(T (&c)[NU * U], const Share<U, NU>& sh, int lanes, Term term,
                                          Unit unit, At at) {
    T s = T(0);
    each_cached(sh, NoBlock(), [&](int i, int, i64, int) {
        c[i] = term(c[i]);
        s += c[i];
    });
    double w = 0.0;
    each_uncached(sh, unit, [&](int v, i64 j, const auto& b) { w += at(b, v, j); });
    return row_reduce(plus_wide(s, w), SumOp(), T(0), lanes);
}

// emit(j, e_j * f) for each element of the thread's share of the row: e_j in
// its cache slot, or at(b, w, j) for the uncached ones (as row_term_sum).
template <int U, int NU, typename T, typename Unit, typename At, typename Emit>
__device__ __forceinline__ void each_scaled(const T (&c)[NU * U], const Share<U, NU>& sh, T f, Unit unit,
                                            At at, Emit emit) {
    each_cached(sh, NoBlock(), [&](int i, int, i64 j, int) { emit(j, c[i] * f); });
    each_uncached(sh, unit, [&](int v, i64 j, const auto& b) { emit(j, at(b, v, j) * f); });
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

// Adds to a thread's s and t (see log_of_terms) the terms exp(x_j - m) of
// its cached elements; with SHIFT their slots keep x_j - m (load_row_log).
template <bool SHIFT, int N, typename T>
__device__ __forceinline__ void add_cached_terms(T (&c)[N], const Share<1, N>& sh, T m, T& s, T& t) {
    each_cached(sh, NoBlock(), [&](int i, int, i64, int) {
        const T d = c[i] - m, e = exp_t(d);
        if constexpr (SHIFT) c[i] = d;
        s += e;
        t += d < T(0) ? e : T(0);
    });
}

// Adds to a thread's s and t the terms of its uncached elements, in double
// (plus_wide); logsumexp and load_row_log.
template <int N, typename S>
__device__ __forceinline__ void add_uncached_terms(const S* __restrict__ xr, const Share<1, N>& sh,
                                                   typename Storage<S>::T m, typename Storage<S>::T& s,
                                                   typename Storage<S>::T& t) {
    typedef typename Storage<S>::T T;
    double w = 0.0, wt = 0.0;
    each_uncached(sh, NoBlock(), [&](int, i64 j, int) {
        const T d = Storage<S>::load(xr[j]) - m, e = exp_t(d);
        w += e;
        wt += d < T(0) ? e : T(0);
    });
    s = plus_wide(s, w);
    t = plus_wide(t, wt);
}

// A row's log-normaliser, as log_softmax computes it: its NaN-propagating
// maximum m, the sum s of its terms exp(x_j - m) and ls = log(s) by
// log_of_terms, so log_softmax(x)_j = (x_j - m) - ls.  Shared by log_softmax
// (softmax.cu) and the estimators (estimators.cu): their log-probabilities
// are log_softmax's elements bit for bit, and their entropies and divergences
// are built on the same normalisers.
template <typename T>
struct RowLog {
    T m, s, ls;
};

// Loads the thread's cached elements of row xr into c as x_j - m (-inf past
// the end of the row) and returns its RowLog, on every thread of the row.
template <int N, typename S>
__device__ __forceinline__ RowLog<typename Storage<S>::T> load_row_log(
    typename Storage<S>::T (&c)[N], const S* __restrict__ xr, const Share<1, N>& sh, int lanes) {
    typedef typename Storage<S>::T T;
    RowLog<T> q;
    q.m = load_row_max(c, xr, sh, lanes);
    T s = T(0), t = T(0);
    add_cached_terms<true>(c, sh, q.m, s, t);
    add_uncached_terms(xr, sh, q.m, s, t);
    q.s = row_reduce(s, SumOp(), T(0), lanes);
    t = row_reduce(t, SumOp(), T(0), lanes);
    q.ls = log_of_terms(q.s, t);
    return q;
}

// The sum over the row of cached(i, j) for the thread's cached elements (slot
// i, element j) and uncached(j) for the others, on every thread of the row:
// a pass that leaves the cache as it is (row_term_sum rewrites it).  The
// cached values add up in T, the uncached ones in double (plus_wide).
template <typename T, int N, typename Cached, typename Uncached>
__device__ __forceinline__ T row_sum(const Share<1, N>& sh, int lanes, Cached cached,
                                     Uncached uncached) {
    T s = T(0);
    each_cached(sh, NoBlock(), [&](int i, int, i64 j, int) { s += cached(i, j); });
    double w = 0.0;
    each_uncached(sh, NoBlock(), [&](int, i64 j, int) { w += uncached(j); });
    return row_reduce(plus_wide(s, w), SumOp(), T(0), lanes);
}

// Loads the thread's cached elements of rows gr and yr into cg and cy (0 past
// their end) and returns the dot product of the rows, on every thread of
// them (the uncached products added in double, plus_wide).
template <int NU, typename S>
__device__ __forceinline__ typename Storage<S>::T load_row_dot(typename Storage<S>::T (&cg)[NU],
                                                               typename Storage<S>::T (&cy)[NU],
                                                               const S* __restrict__ gr,
                                                               const S* __restrict__ yr,
                                                               const Share<1, NU>& sh, int lanes) {
    typedef typename Storage<S>::T T;
    typedef Storage<S> St;
    load_row(cg, gr, sh, T(0));
    load_row(cy, yr, sh, T(0));
    T d = T(0);
    each_cached(sh, NoBlock(), [&](int i, int, i64, int) { d += cg[i] * cy[i]; });
    double w = 0.0;
    each_uncached(sh, NoBlock(), [&](int, i64 j, int) { w += St::load(gr[j]) * St::load(yr[j]); });
    return row_reduce(plus_wide(d, w), SumOp(), T(0), lanes);
}

// No element yet: the start of an arg-max fold and the identity of its
// reduction (index k, past every element).
template <typename T>
__device__ __forceinline__ ArgMax<T> no_max(i64 k) {
    ArgMax<T> a;
    a.v = -Num<T>::inf();
    a.i = k;
    return a;
}

// The first maximum of a row (ArgMaxOp: NaN first, then the largest value,
// then the lowest index) from each thread's best, on every thread of the row.
template <typename T>
__device__ __forceinline__ ArgMax<T> row_first_max(ArgMax<T> best, i64 k, int lanes) {
    return row_reduce(best, ArgMaxOp(), no_max<T>(k), lanes);
}

// Writes row outr (kr elements) as the one-hot of the row's first maximum,
// given each thread's best of its elements (folded with ArgMaxOp from
// no_max): 1 at its index and 0 elsewhere, or NaN everywhere when the row
// holds a NaN.  Thread rank writes elements rank, rank + width, ..., not
// necessarily those it read; where outr held the row's intermediate values
// (gumbel_softmax_fwd) every thread has read them before the reduction.
template <typename S, typename T>
__device__ __forceinline__ void one_hot_of_first_max(ArgMax<T> best, S* __restrict__ outr, i64 k, i64 kr,
                                                     const Rows& g, int lanes) {
    best = row_first_max(best, k, lanes);
    const bool nan_row = is_nan(best.v);
    for (i64 j = g.rank; j < kr; j += g.width) {
        outr[j] = Storage<S>::store(nan_row ? Num<T>::nan() : (j == best.i ? T(1) : T(0)));
    }
}

}  // namespace gnp

#endif  // GUMBEL_NP_ROWS_CUH
