// Row primitives of the CUDA kernels, shared by softmax.cu and gumbel.cu
// (twin of kernels/_rows.py): per-dtype constants and math, the storage
// conversions of __half, the NaN-propagating maximum, the arg-max order, the
// warp/block reductions, the mapping of threads to rows, and the wide sums of
// the terms beyond a thread's register cache.  The launch geometry they
// assume is described in softmax.cu.

#ifndef GUMBEL_NP_ROWS_CUH
#define GUMBEL_NP_ROWS_CUH

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

}  // namespace gnp

#endif  // GUMBEL_NP_ROWS_CUH
