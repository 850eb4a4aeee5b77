"""Compute kernels of gumbel_np: Numba (CPU) and CUDA (GPU) side by side."""
