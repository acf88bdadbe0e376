"""Fused saliency-attention kernels for the PyTorch path, and their NumPy references.

``saliency_attention(q, k, v, scale, impl)``: Triton on CUDA tensors, the C++ kernel for CPU inference
(``saliency_cpu``), torch SDPA elsewhere. The CUDA
C++ kernel for TensorRT lives in ``export/plugin/``; ``reference.py`` mirrors it in NumPy.
Importing this package does not import triton.
"""

from tsi.kernels.saliency_triton import saliency_attention

__all__ = ["saliency_attention"]
