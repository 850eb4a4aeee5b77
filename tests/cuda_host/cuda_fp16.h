// Stands in for CUDA's <cuda_fp16.h> when the kernels are compiled as host
// C++ (tests/test_cuda_emulation.py puts this folder first on the include
// path): __half and its conversions are defined in shim.h.
#include "shim.h"
