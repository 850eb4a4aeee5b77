// Host driver for tests/test_philox_host.py: runs kernels/philox.cuh compiled
// as plain C++ and prints what it computes, one line of hex words per query.
//
// Queries on stdin, one per line, all numbers in hex (rid as a 64-bit two's
// complement word):
//   B R c0 c1 c2 c3 k0 k1   -> o0 o1 o2 o3      Philox4x32-R (R = 7 or 10)
//   F w                     -> bits(float32 u)  open-interval float32 uniform
//   D hi lo                 -> bits(float64 u)  open-interval float64 uniform
//   G4 k0 k1 rid j d        -> w bits(u) bits(g)        float32 element j
//   G8 k0 k1 rid j d        -> hi lo bits(u) bits(g)    float64 element j
// where g is the Gumbel noise of the element (stream mapping version 1).

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <sstream>
#include <string>

#include "philox.cuh"

namespace {

std::uint32_t bits(float x) {
    std::uint32_t b;
    std::memcpy(&b, &x, sizeof b);
    return b;
}

std::uint64_t bits(double x) {
    std::uint64_t b;
    std::memcpy(&b, &x, sizeof b);
    return b;
}

}  // namespace

int main() {
    using namespace gnp;
    std::string line;
    std::cout << std::hex;
    while (std::getline(std::cin, line)) {
        std::istringstream in(line);
        in >> std::hex;
        std::string op;
        if (!(in >> op)) continue;
        if (op == "B") {
            u32 rounds, c[4], k[2];
            in >> rounds >> c[0] >> c[1] >> c[2] >> c[3] >> k[0] >> k[1];
            Philox4 p;
            if (rounds == 10) {
                p = philox4x32_10(c[0], c[1], c[2], c[3], k[0], k[1]);
            } else if (rounds == 7) {
                p = philox4x32_r<7>(c[0], c[1], c[2], c[3], k[0], k[1]);
            } else {
                std::cerr << "unsupported round count " << rounds << "\n";
                return 2;
            }
            std::cout << p.w[0] << ' ' << p.w[1] << ' ' << p.w[2] << ' ' << p.w[3] << '\n';
        } else if (op == "F") {
            u32 w;
            in >> w;
            std::cout << bits(uniform_f32(w)) << '\n';
        } else if (op == "D") {
            u32 hi, lo;
            in >> hi >> lo;
            std::cout << bits(uniform_f64(hi, lo)) << '\n';
        } else if (op == "G4" || op == "G8") {
            u32 k0, k1, d;
            u64 rid_bits, j;
            in >> k0 >> k1 >> rid_bits >> j >> d;
            const i64 rid = static_cast<i64>(rid_bits);
            const Philox4 p = stream_block(k0, k1, rid, j / (op == "G4" ? 4 : 2), d);
            if (op == "G4") {
                std::cout << p.w[j % 4] << ' ' << bits(uniform_element<float>(k0, k1, rid, j, d))
                          << ' ' << bits(gumbel_element<float>(k0, k1, rid, j, d)) << '\n';
            } else {
                const int i = static_cast<int>(j % 2);
                std::cout << p.w[2 * i] << ' ' << p.w[2 * i + 1] << ' '
                          << bits(uniform_element<double>(k0, k1, rid, j, d)) << ' '
                          << bits(gumbel_element<double>(k0, k1, rid, j, d)) << '\n';
            }
        } else {
            std::cerr << "unknown query " << op << "\n";
            return 2;
        }
        if (!in) {
            std::cerr << "malformed query: " << line << "\n";
            return 2;
        }
    }
    return 0;
}
