// Host emulation of the CUDA device environment of the gumbel_np kernels, so
// that kernels/*.cu (the text the loader hands NVRTC) compile with g++ and
// run on the CPU.  Used by tests/test_cuda_emulation.py, which states what
// this emulation can and cannot catch.
//
// Execution model.  A launch runs its blocks one after another (in index
// order, or reversed).  Within a block every CUDA thread is a cooperative
// fiber on its own stack (switched by a few instructions on x86-64, by
// swapcontext elsewhere), and the scheduler is deterministic:
//
// * warps are taken in index order (or reversed); the lanes of a warp run one
//   after another, each until it reaches a synchronisation point (a shuffle,
//   __syncwarp, __syncthreads or its return);
// * a shuffle completes when every lane named in its mask has reached it
//   (the lanes must agree on mask, width and operand size; a lane named in
//   the mask that has returned or waits at __syncthreads is reported as a
//   divergent shuffle); the warp then runs on at once, as far as it can, so
//   a warp gets as far ahead of the others as any barrier lets it;
// * __syncwarp is a shuffle that moves nothing: it completes when every lane
//   of its mask has reached it;
// * __syncthreads completes when every thread of the block has reached it
//   (a thread that has returned while others wait is reported as a divergent
//   barrier).
//
// So a missing barrier shows deterministically: the first warp reads shared
// memory before the later warps have written it, or overwrites it before they
// have read it, and likewise the lanes of a warp without their __syncwarp
// (the tests run each launch in both orders, so the warp or lane a result
// depends on is once the first and once the last).  Memory is sequentially
// consistent and values are exchanged exactly; __shared__ variables are
// statics, which is correct because blocks never overlap; atomics are plain
// read-modify-writes, which is correct because fibers switch only at
// synchronisation points.  Invalid memory accesses (the test places every
// array just before an inaccessible page), integer division by zero and stack
// overflow end the launch with an error instead of the process.
//
// Device functions map to the host: the CUDA math functions to host libm.
// Device libm (expf within 2 ulp, logf/log1pf/exp/log/log1p within 1 ulp in
// the CUDA programming guide) and glibc's (within 1 ulp, mostly correctly
// rounded) may differ by an ulp; the tests' tolerances allow for it.

#ifndef GNP_CUDA_HOST_SHIM_H
#define GNP_CUDA_HOST_SHIM_H

// Every system header first: the CUDA macros defined below must not change
// what the C library declares.
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <type_traits>

// Compile the sources as NVRTC does in its device pass: philox.cuh then
// takes its device branch (__host__ __device__ __forceinline__, __umulhi,
// no standard header).
#define __CUDACC__ 1
#define __CUDACC_RTC__ 1
#define __CUDA_ARCH__ 900

#define GNP_EMU_EXPORT extern "C" __attribute__((visibility("default")))

// --------------------------------------------------------------------------
// Declaration specifiers.  __restrict__ is a g++ keyword already, with the
// same meaning as in CUDA.  #pragma unroll is not one g++ knows; it ignores
// it (and philox.cuh's _Pragma("unroll")) without a warning by default.

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __launch_bounds__(...)
// One static per variable: correct because blocks never overlap.
#define __shared__ static

struct uint3 {
    unsigned int x, y, z;
};

struct dim3 {
    unsigned int x, y, z;
};

static constexpr int warpSize = 32;

// --------------------------------------------------------------------------
// The scheduler.

// Fibers switch by a few instructions on x86-64; elsewhere, or with
// GNP_EMU_UCONTEXT defined, by swapcontext, which saves the signal mask, a
// system call per switch (tests/test_cuda_emulation.py: 85 s against 18 s
// on two cores).
#if defined(__x86_64__) && !defined(GNP_EMU_UCONTEXT)
#define GNP_EMU_FAST_SWITCH 1
// Saves the callee-saved registers and the SSE and x87 control words on the
// current stack, stores its pointer in *save, and continues the fiber whose
// stack pointer is `load` (System V ABI).
extern "C" void gnp_emu_switch(void** save, void* load) __attribute__((visibility("hidden")));
asm(".text\n"
    ".p2align 4\n"
    ".globl gnp_emu_switch\n"
    ".hidden gnp_emu_switch\n"
    ".type gnp_emu_switch, @function\n"
    "gnp_emu_switch:\n"
    "    pushq %rbp\n"
    "    pushq %rbx\n"
    "    pushq %r12\n"
    "    pushq %r13\n"
    "    pushq %r14\n"
    "    pushq %r15\n"
    "    subq $8, %rsp\n"
    "    stmxcsr (%rsp)\n"
    "    fnstcw 4(%rsp)\n"
    "    movq %rsp, (%rdi)\n"
    "    movq %rsi, %rsp\n"
    "    ldmxcsr (%rsp)\n"
    "    fldcw 4(%rsp)\n"
    "    addq $8, %rsp\n"
    "    popq %r15\n"
    "    popq %r14\n"
    "    popq %r13\n"
    "    popq %r12\n"
    "    popq %rbx\n"
    "    popq %rbp\n"
    "    ret\n"
    ".size gnp_emu_switch, .-gnp_emu_switch\n");
#else
#define GNP_EMU_FAST_SWITCH 0
#endif

namespace gnp_emu {

enum State : int { READY, AT_SHUFFLE, AT_BARRIER, DONE };

enum Schedule : unsigned {
    REVERSE_WARPS = 1,   // warps in decreasing index order
    REVERSE_LANES = 2,   // the lanes of a warp in decreasing order
    REVERSE_BLOCKS = 4,  // blocks in decreasing index order
};

struct Thread {
#if GNP_EMU_FAST_SWITCH
    void* sp;  // saved stack pointer while switched out
#else
    ucontext_t context;
#endif
    State state;
    uint3 tid;
    // The pending shuffle.
    unsigned mask;
    int lane_mask;
    int width;
    int bytes;
    uint64_t value;
    uint64_t result;
};

constexpr size_t STACK_BYTES = 256 * 1024;
constexpr unsigned MAX_THREADS = 1024;

struct Launch {
    dim3 grid_dim, block_dim;
    uint3 block_idx;
    unsigned schedule;
    Thread* threads;  // MAX_THREADS of them
    char* stacks;     // MAX_THREADS stacks, each above a guard page
    Thread* current;  // the running fiber, or null in the scheduler
#if GNP_EMU_FAST_SWITCH
    void* scheduler_sp;
#else
    ucontext_t scheduler;
#endif
    void (*body)(void*);
    void* arg;
    bool failed;
    bool faulted;
    char error[1024];
};

static Launch L;

static inline void fail(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void fail(const char* fmt, ...) {
    if (L.failed) return;
    L.failed = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(L.error, sizeof L.error, fmt, ap);
    va_end(ap);
}

static inline const char* state_name(State s) {
    switch (s) {
        case READY: return "is running";
        case AT_SHUFFLE: return "waits at a shuffle";
        case AT_BARRIER: return "waits at __syncthreads";
        default: return "has returned";
    }
}

static inline void to_scheduler(Thread* t) {
#if GNP_EMU_FAST_SWITCH
    gnp_emu_switch(&t->sp, L.scheduler_sp);
#else
    swapcontext(&t->context, &L.scheduler);
#endif
}

// Back to the scheduler; the fiber continues when the scheduler resumes it.
static inline void yield(State s) {
    Thread* t = L.current;
    t->state = s;
    to_scheduler(t);
}

static inline void fiber_entry() {
    L.body(L.arg);
    Thread* t = L.current;
    t->state = DONE;
    to_scheduler(t);  // never resumed
    __builtin_unreachable();
}

// Prepares t to run fiber_entry on the stack [lo, lo + bytes).
static inline void start_fiber(Thread& t, char* lo, size_t bytes) {
#if GNP_EMU_FAST_SWITCH
    // The frame gnp_emu_switch pops: the control words, r15 .. rbp, and the
    // return address fiber_entry, above which a null return address of its
    // own leaves the stack 16-byte aligned at its entry, as after a call.
    uint64_t* top = reinterpret_cast<uint64_t*>(reinterpret_cast<uintptr_t>(lo + bytes) & ~uintptr_t(15));
    top[-1] = 0;
    top[-2] = reinterpret_cast<uint64_t>(&fiber_entry);
    for (int i = 3; i <= 8; ++i) top[-i] = 0;
    uint32_t control[2] = {0, 0};
    asm volatile("stmxcsr %0" : "=m"(control[0]));
    asm volatile("fnstcw %0" : "=m"(*reinterpret_cast<uint16_t*>(&control[1])));
    memcpy(&top[-9], control, sizeof control);
    t.sp = &top[-9];
#else
    getcontext(&t.context);
    t.context.uc_stack.ss_sp = lo;
    t.context.uc_stack.ss_size = bytes;
    t.context.uc_link = nullptr;
    makecontext(&t.context, fiber_entry, 0);
#endif
}

static inline void resume(Thread& t) {
    L.current = &t;
#if GNP_EMU_FAST_SWITCH
    gnp_emu_switch(&L.scheduler_sp, t.sp);
#else
    swapcontext(&L.scheduler, &t.context);
#endif
    L.current = nullptr;
}

// Completes the pending shuffle of warp w if every lane it names has reached
// it; false if no lane of the warp waits at a shuffle.
static inline bool complete_shuffle(unsigned w) {
    Thread* lane = L.threads + static_cast<size_t>(w) * warpSize;
    int first = -1;
    for (int i = 0; i < warpSize; ++i) {
        if (lane[i].state == AT_SHUFFLE) {
            first = i;
            break;
        }
    }
    if (first < 0) return false;
    const Thread& a = lane[first];
    for (int i = 0; i < warpSize; ++i) {
        const Thread& t = lane[i];
        const bool named = (a.mask >> i) & 1u;
        if (t.state == AT_SHUFFLE) {
            if (t.mask != a.mask || t.width != a.width || t.bytes != a.bytes) {
                fail("block %u warp %u: lanes %d and %d meet at different shuffles "
                     "(mask %#x/%#x, width %d/%d, %d/%d bytes)",
                     L.block_idx.x, w, first, i, a.mask, t.mask, a.width, t.width, a.bytes,
                     t.bytes);
                return false;
            }
            if (!named) {
                fail("block %u warp %u: lane %d shuffles with mask %#x, which does not name it",
                     L.block_idx.x, w, i, t.mask);
                return false;
            }
        } else if (named) {
            // Operand size 0: a __syncwarp (below).
            const char* what = a.bytes == 0 ? "__syncwarp" : "shuffle";
            fail("block %u warp %u: lane %d %s while lane %d waits at a %s with mask %#x "
                 "(a divergent %s)",
                 L.block_idx.x, w, i, state_name(t.state), first, what, a.mask, what);
            return false;
        }
    }
    const int width = a.width;
    if (width < 1 || width > warpSize || (width & (width - 1)) != 0) {
        fail("block %u warp %u: shuffle width %d is not a power of two in [1, 32]",
             L.block_idx.x, w, width);
        return false;
    }
    // PTX shfl.sync.bfly with c = ((32 - width) << 8) | 0x1f, as nvcc emits
    // for __shfl_xor_sync: the source lane is lane ^ b (b taken mod 32), or
    // the lane itself when that lies in a later segment of `width` lanes.
    const int segmask = (warpSize - width) & 0x1f;
    for (int i = 0; i < warpSize; ++i) {
        Thread& t = lane[i];
        if (t.state != AT_SHUFFLE) continue;
        const int max_lane = (i & segmask) | (0x1f & ~segmask);
        int j = i ^ (t.lane_mask & 0x1f);
        if (j > max_lane) j = i;
        if (!((a.mask >> j) & 1u)) {
            fail("block %u warp %u: lane %d reads lane %d, outside the shuffle mask %#x",
                 L.block_idx.x, w, i, j, a.mask);
            return false;
        }
        t.result = lane[j].value;
    }
    for (int i = 0; i < warpSize; ++i) {
        if (lane[i].state == AT_SHUFFLE) lane[i].state = READY;
    }
    return true;
}

// Runs one block to its end (or to the first error).
static inline void run_block(unsigned n) {
    const unsigned warps = n / warpSize;
    for (unsigned i = 0; i < n; ++i) {
        Thread& t = L.threads[i];
        t.state = READY;
        t.tid = uint3{i, 0, 0};
        start_fiber(t, L.stacks + i * STACK_BYTES + sysconf(_SC_PAGESIZE), STACK_BYTES - sysconf(_SC_PAGESIZE));
    }
    for (;;) {
        for (unsigned wi = 0; wi < warps && !L.failed; ++wi) {
            const unsigned w = (L.schedule & REVERSE_WARPS) ? warps - 1 - wi : wi;
            do {
                for (int li = 0; li < warpSize && !L.failed; ++li) {
                    const int lane = (L.schedule & REVERSE_LANES) ? warpSize - 1 - li : li;
                    Thread& t = L.threads[w * warpSize + lane];
                    if (t.state == READY) resume(t);
                }
            } while (!L.failed && complete_shuffle(w));
        }
        if (L.failed) return;
        unsigned at_barrier = 0, done = 0;
        for (unsigned i = 0; i < n; ++i) {
            at_barrier += L.threads[i].state == AT_BARRIER;
            done += L.threads[i].state == DONE;
        }
        if (done == n) return;
        if (at_barrier != n) {
            fail("block %u: __syncthreads reached by %u of %u threads, the others have returned "
                 "(a divergent barrier)",
                 L.block_idx.x, at_barrier, n);
            return;
        }
        for (unsigned i = 0; i < n; ++i) L.threads[i].state = READY;
    }
}

// Faults inside a launch end the launch, not the process.
static sigjmp_buf fault_return;
static volatile sig_atomic_t fault_signal;
static void* volatile fault_address;

static inline void on_fault(int sig, siginfo_t* info, void*) {
    fault_signal = sig;
    fault_address = info->si_addr;
    siglongjmp(fault_return, 1);
}

static inline bool allocate() {
    if (L.threads != nullptr) return true;
    void* t = mmap(nullptr, sizeof(Thread) * MAX_THREADS, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    void* s = mmap(nullptr, STACK_BYTES * MAX_THREADS, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (t == MAP_FAILED || s == MAP_FAILED) return false;
    L.threads = static_cast<Thread*>(t);
    L.stacks = static_cast<char*>(s);
    for (unsigned i = 0; i < MAX_THREADS; ++i) {
        mprotect(L.stacks + i * STACK_BYTES, sysconf(_SC_PAGESIZE), PROT_NONE);  // overflow guard
    }
    return true;
}

// Runs body(arg) as the kernel of a launch of `grid` blocks of `block`
// threads (one-dimensional); 0 on success, else 1 with the reason in
// L.error.
static inline int launch(unsigned grid, unsigned block, unsigned schedule, void (*body)(void*), void* arg) {
    L.failed = false;
    L.faulted = false;
    L.error[0] = '\0';
    if (block == 0 || block > MAX_THREADS || block % warpSize != 0 || grid == 0) {
        fail("launch of %u blocks of %u threads: the emulation takes a positive number of "
             "blocks of whole warps, at most %u threads",
             grid, block, MAX_THREADS);
        return 1;
    }
    if (!allocate()) {
        fail("cannot allocate the fibers");
        return 1;
    }
    L.grid_dim = dim3{grid, 1, 1};
    L.block_dim = dim3{block, 1, 1};
    L.schedule = schedule;
    L.body = body;
    L.arg = arg;

    static char alt_stack[64 * 1024];
    stack_t alt = {}, old_alt;
    alt.ss_sp = alt_stack;
    alt.ss_size = sizeof alt_stack;
    sigaltstack(&alt, &old_alt);
    struct sigaction sa = {}, old_segv, old_bus, old_fpe;
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &old_segv);
    sigaction(SIGBUS, &sa, &old_bus);
    sigaction(SIGFPE, &sa, &old_fpe);
    if (sigsetjmp(fault_return, 1) == 0) {
        for (unsigned bi = 0; bi < grid && !L.failed; ++bi) {
            const unsigned b = (schedule & REVERSE_BLOCKS) ? grid - 1 - bi : bi;
            L.block_idx = uint3{b, 0, 0};
            run_block(block);
        }
    } else {
        const Thread* t = L.current;
        L.current = nullptr;
        L.faulted = fault_signal != SIGFPE;
        fail("%s at address %p in block %u thread %u",
             fault_signal == SIGFPE ? "arithmetic fault (integer division by zero?)"
                                    : "invalid memory access",
             fault_address, L.block_idx.x, t != nullptr ? t->tid.x : 0u);
    }
    sigaction(SIGSEGV, &old_segv, nullptr);
    sigaction(SIGBUS, &old_bus, nullptr);
    sigaction(SIGFPE, &old_fpe, nullptr);
    sigaltstack(&old_alt, nullptr);
    return L.failed ? 1 : 0;
}

// launch() for a callable.
template <class F>
static inline int launch_callable(unsigned grid, unsigned block, unsigned schedule, F& f) {
    return launch(grid, block, schedule, [](void* p) { (*static_cast<F*>(p))(); }, &f);
}

static inline uint64_t shuffle_bits(unsigned mask, uint64_t bits, int lane_mask, int width, int bytes) {
    Thread* t = L.current;
    t->mask = mask;
    t->lane_mask = lane_mask;
    t->width = width;
    t->bytes = bytes;
    t->value = bits;
    yield(AT_SHUFFLE);
    return t->result;
}

template <typename V>
static V shuffle_xor(unsigned mask, V v, int lane_mask, int width) {
    static_assert(std::is_trivially_copyable<V>::value && sizeof(V) <= 8, "shuffled type");
    uint64_t bits = 0;
    memcpy(&bits, &v, sizeof v);
    bits = shuffle_bits(mask, bits, lane_mask, width, static_cast<int>(sizeof v));
    memcpy(&v, &bits, sizeof v);
    return v;
}

}  // namespace gnp_emu

// The reason the last launch failed ("" when it did not), and the address
// of its invalid memory access (0 if it made none).
GNP_EMU_EXPORT const char* gnp_emu_error() { return gnp_emu::L.error; }
GNP_EMU_EXPORT uintptr_t gnp_emu_fault_address() {
    return gnp_emu::L.faulted ? reinterpret_cast<uintptr_t>(gnp_emu::fault_address) : 0;
}

// --------------------------------------------------------------------------
// Built-in variables: per fiber (threadIdx) or per block and launch.

#define threadIdx (::gnp_emu::L.current->tid)
#define blockIdx (::gnp_emu::L.block_idx)
#define blockDim (::gnp_emu::L.block_dim)
#define gridDim (::gnp_emu::L.grid_dim)

// --------------------------------------------------------------------------
// Synchronisation.

static inline void __syncthreads() {
    asm volatile("" ::: "memory");  // no shared or global value cached across it
    ::gnp_emu::yield(::gnp_emu::AT_BARRIER);
    asm volatile("" ::: "memory");
}

// __syncwarp: a rendezvous of the lanes in its mask, scheduled as a shuffle
// that moves nothing (operand size 0, so a lane that meets a real shuffle
// there instead is reported as lanes meeting at different shuffles, and a
// lane of the mask that has returned as a divergent __syncwarp).  Like
// __syncthreads it orders the lanes' shared-memory accesses: none runs past
// it before every lane of the mask has reached it.
static inline void __syncwarp(unsigned mask = 0xffffffffu) {
    asm volatile("" ::: "memory");
    ::gnp_emu::shuffle_bits(mask, 0, 0, warpSize, 0);
    asm volatile("" ::: "memory");
}

// The overloads of cuda_fp16.h and the CUDA runtime (__half below).
#define GNP_EMU_SHFL_XOR(V)                                                                  \
    static inline V __shfl_xor_sync(unsigned mask, V var, int laneMask, int width = warpSize) { \
        asm volatile("" ::: "memory");                                                       \
        return ::gnp_emu::shuffle_xor(mask, var, laneMask, width);                           \
    }
GNP_EMU_SHFL_XOR(int)
GNP_EMU_SHFL_XOR(unsigned int)
GNP_EMU_SHFL_XOR(long)
GNP_EMU_SHFL_XOR(unsigned long)
GNP_EMU_SHFL_XOR(long long)
GNP_EMU_SHFL_XOR(unsigned long long)
GNP_EMU_SHFL_XOR(float)
GNP_EMU_SHFL_XOR(double)

// --------------------------------------------------------------------------
// Integer and bit intrinsics.

static inline float __int_as_float(int x) {
    float f;
    memcpy(&f, &x, sizeof f);
    return f;
}
static inline int __float_as_int(float x) {
    int i;
    memcpy(&i, &x, sizeof i);
    return i;
}
static inline double __longlong_as_double(long long x) {
    double d;
    memcpy(&d, &x, sizeof d);
    return d;
}
static inline long long __double_as_longlong(double x) {
    long long i;
    memcpy(&i, &x, sizeof i);
    return i;
}
// Atomics: fibers switch only at shuffles and barriers, so a plain
// read-modify-write is atomic here.
static inline unsigned int atomicOr(unsigned int* address, unsigned int val) {
    const unsigned int old = *address;
    *address = old | val;
    return old;
}
static inline unsigned int __umulhi(unsigned int a, unsigned int b) {
    return static_cast<unsigned int>((static_cast<unsigned long long>(a) * b) >> 32);
}

// --------------------------------------------------------------------------
// __half: IEEE binary16 storage with the conversions of cuda_fp16.h, round to
// nearest even, subnormals kept (no flush to zero), NaN to the canonical
// 0x7fff as the device's cvt.rn.f16.f32 gives.

struct __half {
    unsigned short __x;
};

static inline unsigned short gnp_emu_float_to_half_bits(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    const uint32_t sign = (x >> 16) & 0x8000u;
    const uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) return 0x7fffu;                                 // NaN
    if (ax >= 0x477ff000u) return static_cast<unsigned short>(sign | 0x7c00u);  // >= 65520: inf
    if (ax < 0x38800000u) {  // below 2**-14: a subnormal half or zero
        const uint32_t e = ax >> 23;
        if (e < 102) return static_cast<unsigned short>(sign);  // below 2**-25: rounds to 0
        const uint32_t m = (ax & 0x7fffffu) | 0x800000u;
        const uint32_t shift = 126 - e;  // value = m * 2**-shift units of 2**-24
        uint32_t r = m >> shift;
        const uint32_t rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1u))) ++r;  // may carry into 0x400, the least normal
        return static_cast<unsigned short>(sign | r);
    }
    uint32_t r = ((((ax >> 23) - 112) << 10) | ((ax >> 13) & 0x3ffu));
    const uint32_t rem = ax & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) ++r;  // a carry moves to the next binade
    return static_cast<unsigned short>(sign | r);
}

static inline float gnp_emu_half_bits_to_float(unsigned short h) {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    const uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    uint32_t x;
    if (e == 0) {
        const float v = static_cast<float>(m) * 5.9604644775390625e-08f;  // m * 2**-24, exact
        memcpy(&x, &v, sizeof x);
        x |= sign;
    } else if (e == 31) {
        x = sign | 0x7f800000u | (m << 13);
    } else {
        x = sign | ((e + 112) << 23) | (m << 13);
    }
    float f;
    memcpy(&f, &x, sizeof f);
    return f;
}

static inline __half __float2half_rn(float f) { return __half{gnp_emu_float_to_half_bits(f)}; }
static inline float __half2float(__half h) { return gnp_emu_half_bits_to_float(h.__x); }
static inline unsigned short __half_as_ushort(__half h) { return h.__x; }
static inline __half __ushort_as_half(unsigned short x) { return __half{x}; }
GNP_EMU_SHFL_XOR(__half)

#endif  // GNP_CUDA_HOST_SHIM_H
