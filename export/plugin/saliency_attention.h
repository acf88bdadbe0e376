// Saliency attention of TSI's SME module as one fused CUDA kernel.
//
//   out[b] = softmax(q[b] @ k[b]^T * scale, over keys) @ v[b]      q, k, v, out: (B, L, D), row-major
//
// FP32 or FP16 tensors (all four the same type), FP32 arithmetic inside, online softmax: the L x L
// score matrix is never materialised. The launcher only enqueues work on `stream`: it never
// allocates and never synchronises, so it is safe inside TensorRT's enqueue and CUDA-graph capture.
// Plain C so that ctypes (the PyTorch path, the tests) and the TensorRT plugin both call it.
#ifndef TSI_SALIENCY_ATTENTION_H
#define TSI_SALIENCY_ATTENTION_H

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define TSI_ATTENTION_API __declspec(dllexport)
#else
#define TSI_ATTENTION_API __attribute__((visibility("default")))
#endif

// dtype codes of tsiSaliencyAttention.
enum { TSI_DTYPE_FP32 = 0, TSI_DTYPE_FP16 = 1 };

// Largest head size the kernel takes (D = 1..64; D not in {4, 8, 16, 32, 64} runs on the next
// larger template with the extra dimensions masked to zero).
#define TSI_ATTENTION_MAX_D 64

// Enqueue out = softmax(q k^T * scale) v for B independent (L, D) problems on `stream`.
// q, k, v, out: device pointers to contiguous (B, L, D) tensors of the type named by `dtype`
// (0 = fp32, 1 = fp16). k may equal v (TSI's case: the next frame is both); out must not alias
// q, k or v. B == 0 or L == 0 is a no-op. Returns a cudaError_t code: cudaErrorInvalidValue for bad
// arguments (checked before anything touches the GPU), otherwise the launch status.
TSI_ATTENTION_API int tsiSaliencyAttention(const void* q, const void* k, const void* v, void* out, int B, int L,
    int D, float scale, int dtype, cudaStream_t stream);

// The tiling the kernel uses for head size D (host-only, no GPU needed): padded head size, keys per
// shared-memory tile, query rows per block, threads per query row, keys per online-softmax step.
// tsi/kernels/reference.py mirrors these numbers; a test checks the two agree.
// Returns 0, or cudaErrorInvalidValue when D is outside 1..TSI_ATTENTION_MAX_D.
TSI_ATTENTION_API int tsiSaliencyAttentionTiling(
    int D, int* d_pad, int* tile_keys, int* rows_per_block, int* threads_per_row, int* chunk_keys);

#ifdef __cplusplus
}
#endif

#endif // TSI_SALIENCY_ATTENTION_H
