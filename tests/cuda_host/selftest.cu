// Probe kernels of the host emulation itself (shim.h), run by
// tests/test_cuda_emulation.py: shuffle lane selection and operand
// transport, barrier semantics (__syncthreads and __syncwarp), atomicOr,
// the built-in variables, the reports of divergent synchronisation and
// invalid accesses, and the __half conversions.

#include "shim.h"

namespace {

__device__ unsigned global_thread() { return blockIdx.x * blockDim.x + threadIdx.x; }

// out[c][t] = __shfl_xor_sync of (1000 * block + thread) with laneMask
// masks[c] and width widths[c].
__global__ void shuffle_probe(const int* masks, const int* widths, int cases, int* out) {
    const unsigned n = gridDim.x * blockDim.x;
    for (int c = 0; c < cases; ++c) {
        const int v = static_cast<int>(1000 * blockIdx.x + threadIdx.x);
        out[c * n + global_thread()] = __shfl_xor_sync(0xffffffffu, v, masks[c], widths[c]);
    }
}

// 64-bit and half operands move bit for bit.
__global__ void shuffle_wide(const double* d, const long long* i, const __half* h, double* od,
                             long long* oi, __half* oh) {
    const unsigned t = global_thread();
    od[t] = __shfl_xor_sync(0xffffffffu, d[t], 5);
    oi[t] = __shfl_xor_sync(0xffffffffu, i[t], 17);
    oh[t] = __shfl_xor_sync(0xffffffffu, h[t], 3);
}

// out[t] = the value thread (t + 37) % blockDim wrote to shared memory.
__global__ void barrier_probe(int* out, int with_barrier) {
    __shared__ int s[1024];
    s[threadIdx.x] = static_cast<int>(3 * threadIdx.x + 1 + 7 * blockIdx.x);
    if (with_barrier) __syncthreads();
    out[global_thread()] = s[(threadIdx.x + 37) % blockDim.x];
}

// out[t] = the value lane (lane + 7) % 32 of the same warp wrote to shared
// memory, after __syncwarp when with_barrier.
__global__ void warp_barrier_probe(int* out, int with_barrier) {
    __shared__ int s[1024];
    s[threadIdx.x] = static_cast<int>(3 * threadIdx.x + 1 + 7 * blockIdx.x);
    if (with_barrier) __syncwarp();
    const unsigned base = threadIdx.x - threadIdx.x % warpSize;
    out[global_thread()] = s[base + (threadIdx.x % warpSize + 7) % warpSize];
}

// Each thread sets bit (thread % 32) of shared word (thread / 32) % 2 twice
// with atomicOr: seen[t] = whether the second call returned it set; words
// receives the two words of each block.
__global__ void atomic_or_probe(unsigned* words, int* seen) {
    __shared__ unsigned w[2];
    if (threadIdx.x < 2) w[threadIdx.x] = 0u;
    __syncthreads();
    unsigned* word = &w[(threadIdx.x / warpSize) % 2];
    const unsigned bit = 1u << (threadIdx.x % warpSize);
    atomicOr(word, bit);
    seen[global_thread()] = (atomicOr(word, bit) & bit) != 0u;
    __syncthreads();
    if (threadIdx.x < 2) words[2 * blockIdx.x + threadIdx.x] = w[threadIdx.x];
}

__global__ void indices(unsigned* out) {
    const unsigned t = global_thread();
    out[4 * t] = threadIdx.x;
    out[4 * t + 1] = blockIdx.x;
    out[4 * t + 2] = blockDim.x;
    out[4 * t + 3] = gridDim.x;
}

__global__ void divergent_barrier(int* out) {
    if (threadIdx.x % 2) __syncthreads();
    out[global_thread()] = 1;
}

__global__ void divergent_syncwarp(int* out) {
    if (threadIdx.x % warpSize >= 16) return;
    __syncwarp();
    out[global_thread()] = 1;
}

__global__ void divergent_shuffle(int* out) {
    if (threadIdx.x % warpSize >= 16) return;
    out[global_thread()] = __shfl_xor_sync(0xffffffffu, 1, 1);
}

// Each thread writes the element after its own: the last one is past the end.
__global__ void one_past_the_end(int* out) { out[global_thread() + 1] = 1; }

__global__ void divide(int* out, int d) { out[global_thread()] = 100 / d; }

}  // namespace

#define GNP_PROBE(name, params, args)                                          \
    GNP_EMU_EXPORT int probe_##name(unsigned grid, unsigned block, unsigned schedule, \
                                    GNP_UNPACK params) {                        \
        auto body = [=] { name(GNP_UNPACK args); };                             \
        return gnp_emu::launch_callable(grid, block, schedule, body);          \
    }
#define GNP_UNPACK(...) __VA_ARGS__

GNP_PROBE(shuffle_probe, (const int* masks, const int* widths, int cases, int* out),
          (masks, widths, cases, out))
GNP_PROBE(shuffle_wide,
          (const double* d, const long long* i, const __half* h, double* od, long long* oi,
           __half* oh),
          (d, i, h, od, oi, oh))
GNP_PROBE(barrier_probe, (int* out, int with_barrier), (out, with_barrier))
GNP_PROBE(warp_barrier_probe, (int* out, int with_barrier), (out, with_barrier))
GNP_PROBE(atomic_or_probe, (unsigned* words, int* seen), (words, seen))
GNP_PROBE(indices, (unsigned* out), (out))
GNP_PROBE(divergent_barrier, (int* out), (out))
GNP_PROBE(divergent_shuffle, (int* out), (out))
GNP_PROBE(divergent_syncwarp, (int* out), (out))
GNP_PROBE(one_past_the_end, (int* out), (out))
GNP_PROBE(divide, (int* out, int d), (out, d))

GNP_EMU_EXPORT void float_to_half(const float* in, __half* out, long long n) {
    for (long long i = 0; i < n; ++i) out[i] = __float2half_rn(in[i]);
}

GNP_EMU_EXPORT void half_to_float(const __half* in, float* out, long long n) {
    for (long long i = 0; i < n; ++i) out[i] = __half2float(in[i]);
}
