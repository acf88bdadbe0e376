// Fused saliency attention (online softmax) for TSI's SME module. See saliency_attention.h.
//
// Design, and why
// ---------------
// The workload is many small heads: at TSI's stage 2 there are B = 224 frame pairs of L = 3136
// positions with head size D = 4, i.e. 2.2e9 query-key pairs but only 4 multiply-adds per dot
// product. Per pair the kernel does D FMAs (score), one exp2, one add (row sum) and D FMAs (P @ V):
// it is bound by FP32/SFU throughput, not memory, so the design keeps every pair's work in
// registers and shares K/V through shared memory:
//
//  * A block has 128 threads and owns a block of query rows of one batch element. A query row is
//    owned by one thread (D <= 16) or by 2 / 4 adjacent lanes (D = 32 / 64), each holding D/2 or
//    D/4 dimensions. Splitting the wide heads keeps registers low (q, acc and 16 scores per
//    thread), and doubles / quadruples the threads for the small-L stages (L = 49) where
//    one-thread-per-row would leave SMs idle; the partial dot products are summed with warp
//    shuffles, and each lane then redoes the (cheap) softmax bookkeeping for its row.
//  * K and V are staged tile by tile (128 keys for D <= 16, 64 keys above) in shared memory as
//    fp32, converted once per block rather than once per thread. The loads are 16-byte (fp32) or
//    8-byte (fp16) vectors when D % 4 == 0 and the pointers are aligned; every thread of a warp
//    then reads the same key (a shared-memory broadcast, no bank conflicts). Tile rows past L and
//    dimensions past D are zero-filled, so padded dimensions add nothing to a dot product.
//    When k == v (TSI's case) the tile is loaded once and used for both.
//  * Online softmax in steps of 16 keys: 16 scores in registers, one running-max update and one
//    rescale of (acc, l) per step instead of per key, then p = exp2(s - m) per key. The scale is
//    folded into q together with log2(e) (q' = q * scale * log2 e), so a score needs no multiply
//    and the exponential is a single MUFU.EX2 (ex2.approx.ftz, rel. error ~2^-22, far below fp16).
//    Keys past L inside a step get score -inf, hence p = 0.
//  * No double buffering (cp.async): each staged key is reused by 128 rows x ~3D+4 operations, so
//    the two __syncthreads per tile are amortised; the SFU/FMA pipes are the limit.
//  * Tensor cores are not used: D = 4 is far below an MMA's K = 16 (padding would waste 4x) and the
//    exponentials, not the dot products, set the floor. The Triton path (tl.dot, D padded to 16)
//    is the tensor-core variant; benchmarks/attention_gpu.py compares the two.
//
// tsi/kernels/reference.py mirrors this loop structure (tiles, 16-key steps, masking, exp2 with the
// folded scale, fp32 accumulation) in NumPy, so the algorithm is verified on a machine without GPU.

#include "saliency_attention.h"

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace
{

constexpr int kThreads = 128;   // threads per block
constexpr int kChunk = 16;      // keys per online-softmax step (scores held in registers)
constexpr float kLog2e = 1.4426950408889634f;

// Tiling for a padded head size DPAD in {4, 8, 16, 32, 64}.
template <int DPAD>
struct Tiling
{
    static constexpr int kThreadsPerRow = DPAD <= 16 ? 1 : DPAD / 16;
    static constexpr int kDimsPerThread = DPAD / kThreadsPerRow;       // 4, 8 or 16
    static constexpr int kRows = kThreads / kThreadsPerRow;             // query rows per block
    static constexpr int kTileKeys = DPAD <= 16 ? 128 : 64;             // keys per shared-memory tile
    static constexpr int kVecPerRow = DPAD / 4;                         // 4-element groups per key row
    static_assert(kTileKeys % kChunk == 0, "a tile holds whole steps");
    static_assert(kDimsPerThread % 4 == 0, "vector loads of a thread's slice");
};

int padded_head(int D)
{
    return D <= 4 ? 4 : D <= 8 ? 8 : D <= 16 ? 16 : D <= 32 ? 32 : 64;
}

// ---- element conversions: fp32 compute, T storage ----------------------------------------------

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(__half x) { return __half2float(x); }
__device__ __forceinline__ void store_one(float* p, float x) { *p = x; }
__device__ __forceinline__ void store_one(__half* p, float x) { *p = __float2half_rn(x); }

// 4 consecutive elements; p must be aligned to 4 elements.
__device__ __forceinline__ float4 load4(float const* p) { return *reinterpret_cast<float4 const*>(p); }
__device__ __forceinline__ float4 load4(__half const* p)
{
    uint2 const u = *reinterpret_cast<uint2 const*>(p);
    float2 const a = __half22float2(*reinterpret_cast<__half2 const*>(&u.x));
    float2 const b = __half22float2(*reinterpret_cast<__half2 const*>(&u.y));
    return make_float4(a.x, a.y, b.x, b.y);
}
__device__ __forceinline__ void store4(float* p, float4 x) { *reinterpret_cast<float4*>(p) = x; }
__device__ __forceinline__ void store4(__half* p, float4 x)
{
    __half2 const a = __floats2half2_rn(x.x, x.y);
    __half2 const b = __floats2half2_rn(x.z, x.w);
    uint2 u;
    u.x = *reinterpret_cast<uint32_t const*>(&a);
    u.y = *reinterpret_cast<uint32_t const*>(&b);
    *reinterpret_cast<uint2*>(p) = u;
}

// 2^x on the SFU; exp2(-inf) = +0, which is what masked keys rely on.
__device__ __forceinline__ float fast_exp2(float x)
{
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}

// Stage keys [k0, k0 + nk) of one batch element (src = its (L, D) matrix) into dst[kTileKeys][DPAD]
// as fp32; rows >= nk and dimensions >= D are written as zeros. `vec`: D % 4 == 0 and src aligned to
// 4 elements, so each 4-group is either wholly inside D or wholly outside.
template <typename T, int DPAD>
__device__ __forceinline__ void stage_tile(
    float* __restrict__ dst, T const* __restrict__ src, int k0, int nk, int D, bool vec)
{
    using Cfg = Tiling<DPAD>;
    constexpr int kSlots = Cfg::kTileKeys * Cfg::kVecPerRow;
    for (int s = threadIdx.x; s < kSlots; s += kThreads)
    {
        int const row = s / Cfg::kVecPerRow;
        int const col = (s % Cfg::kVecPerRow) * 4;
        float4 x = make_float4(0.f, 0.f, 0.f, 0.f);
        if (row < nk && col < D)
        {
            T const* p = src + static_cast<int64_t>(k0 + row) * D + col;
            if (vec)
            {
                x = load4(p);
            }
            else
            {
                x.x = to_float(p[0]);
                x.y = col + 1 < D ? to_float(p[1]) : 0.f;
                x.z = col + 2 < D ? to_float(p[2]) : 0.f;
                x.w = col + 3 < D ? to_float(p[3]) : 0.f;
            }
        }
        store4(dst + row * DPAD + col, x);
    }
}

template <typename T, int DPAD>
__global__ void __launch_bounds__(kThreads) saliency_attention_kernel(T const* __restrict__ q,
    T const* __restrict__ k, T const* __restrict__ v, T* __restrict__ out, int L, int D, int row_blocks,
    float qk_scale, bool vec, bool kv_same)
{
    using Cfg = Tiling<DPAD>;
    constexpr int TPR = Cfg::kThreadsPerRow;
    constexpr int DT = Cfg::kDimsPerThread;
    constexpr int TK = Cfg::kTileKeys;

    extern __shared__ float4 smem4[];
    float* sK = reinterpret_cast<float*>(smem4);
    float* sV = kv_same ? sK : sK + TK * DPAD;

    int const b = blockIdx.x / row_blocks;
    int const row = (blockIdx.x % row_blocks) * Cfg::kRows + threadIdx.x / TPR;
    int const part = threadIdx.x % TPR;  // which DT-slice of the row this thread holds
    int const d0 = part * DT;
    bool const row_ok = row < L;

    int64_t const base = static_cast<int64_t>(b) * L * D;
    T const* kb = k + base;
    T const* vb = v + base;

    // q' = q * scale * log2(e): scores come out in the log2 domain, ready for exp2.
    float qr[DT];
    float acc[DT];
#pragma unroll
    for (int i = 0; i < DT; ++i)
    {
        qr[i] = 0.f;
        acc[i] = 0.f;
    }
    if (row_ok)
    {
        T const* qp = q + base + static_cast<int64_t>(row) * D;
#pragma unroll
        for (int i = 0; i < DT; i += 4)
        {
            int const d = d0 + i;
            if (vec)
            {
                if (d < D)
                {
                    float4 const x = load4(qp + d);
                    qr[i] = x.x * qk_scale;
                    qr[i + 1] = x.y * qk_scale;
                    qr[i + 2] = x.z * qk_scale;
                    qr[i + 3] = x.w * qk_scale;
                }
            }
            else
            {
#pragma unroll
                for (int j = 0; j < 4; ++j)
                {
                    qr[i + j] = d + j < D ? to_float(qp[d + j]) * qk_scale : 0.f;
                }
            }
        }
    }

    float m = -INFINITY;  // running max of scores (log2 domain)
    float l = 0.f;        // running sum of exp2(score - m)

    for (int k0 = 0; k0 < L; k0 += TK)
    {
        int const nk = min(TK, L - k0);
        __syncthreads();  // the previous tile is no longer read
        stage_tile<T, DPAD>(sK, kb, k0, nk, D, vec);
        if (!kv_same)
        {
            stage_tile<T, DPAD>(sV, vb, k0, nk, D, vec);
        }
        __syncthreads();

        // Rows past L compute on zeros (no NaN) and stay in the loop: every thread takes part in
        // the staging and the barriers, and all lanes of a warp stay converged for the shuffles.
        for (int c = 0; c < nk; c += kChunk)
        {
            float s[kChunk];
#pragma unroll
            for (int j = 0; j < kChunk; ++j)
            {
                float4 const* kr = reinterpret_cast<float4 const*>(sK + (c + j) * DPAD + d0);
                float dot = 0.f;
#pragma unroll
                for (int i = 0; i < DT / 4; ++i)
                {
                    float4 const x = kr[i];
                    dot = fmaf(qr[4 * i], x.x, dot);
                    dot = fmaf(qr[4 * i + 1], x.y, dot);
                    dot = fmaf(qr[4 * i + 2], x.z, dot);
                    dot = fmaf(qr[4 * i + 3], x.w, dot);
                }
#pragma unroll
                for (int off = TPR / 2; off > 0; off >>= 1)
                {
                    dot += __shfl_xor_sync(0xffffffffu, dot, off);
                }
                s[j] = c + j < nk ? dot : -INFINITY;
            }
            float mc = s[0];
#pragma unroll
            for (int j = 1; j < kChunk; ++j)
            {
                mc = fmaxf(mc, s[j]);
            }
            float const m_new = fmaxf(m, mc);
            float const alpha = fast_exp2(m - m_new);  // 0 on the first step (m = -inf)
            l *= alpha;
#pragma unroll
            for (int i = 0; i < DT; ++i)
            {
                acc[i] *= alpha;
            }
#pragma unroll
            for (int j = 0; j < kChunk; ++j)
            {
                float const p = fast_exp2(s[j] - m_new);
                l += p;
                float4 const* vr = reinterpret_cast<float4 const*>(sV + (c + j) * DPAD + d0);
#pragma unroll
                for (int i = 0; i < DT / 4; ++i)
                {
                    float4 const x = vr[i];
                    acc[4 * i] = fmaf(p, x.x, acc[4 * i]);
                    acc[4 * i + 1] = fmaf(p, x.y, acc[4 * i + 1]);
                    acc[4 * i + 2] = fmaf(p, x.z, acc[4 * i + 2]);
                    acc[4 * i + 3] = fmaf(p, x.w, acc[4 * i + 3]);
                }
            }
            m = m_new;
        }
    }

    if (!row_ok)
    {
        return;
    }
    float const inv = 1.f / l;  // l >= 1: the max key contributes exp2(0)
    T* op = out + base + static_cast<int64_t>(row) * D;
#pragma unroll
    for (int i = 0; i < DT; i += 4)
    {
        int const d = d0 + i;
        if (vec)
        {
            if (d < D)
            {
                store4(op + d, make_float4(acc[i] * inv, acc[i + 1] * inv, acc[i + 2] * inv, acc[i + 3] * inv));
            }
        }
        else
        {
#pragma unroll
            for (int j = 0; j < 4; ++j)
            {
                if (d + j < D)
                {
                    store_one(op + d + j, acc[i + j] * inv);
                }
            }
        }
    }
}

template <typename T, int DPAD>
cudaError_t launch(T const* q, T const* k, T const* v, T* out, int B, int L, int D, float scale, cudaStream_t stream)
{
    using Cfg = Tiling<DPAD>;
    int const row_blocks = (L + Cfg::kRows - 1) / Cfg::kRows;
    int64_t const blocks = static_cast<int64_t>(B) * row_blocks;
    if (blocks > 0x7fffffffLL)
    {
        return cudaErrorInvalidValue;
    }
    constexpr uintptr_t kAlign = 4 * sizeof(T);
    bool const aligned = (reinterpret_cast<uintptr_t>(q) | reinterpret_cast<uintptr_t>(k)
                             | reinterpret_cast<uintptr_t>(v) | reinterpret_cast<uintptr_t>(out))
            % kAlign
        == 0;
    bool const vec = D % 4 == 0 && aligned;
    bool const kv_same = k == v;
    size_t const smem = (kv_same ? 1 : 2) * sizeof(float) * Cfg::kTileKeys * DPAD;  // <= 32 KiB
    saliency_attention_kernel<T, DPAD><<<static_cast<unsigned>(blocks), kThreads, smem, stream>>>(
        q, k, v, out, L, D, row_blocks, scale * kLog2e, vec, kv_same);
    return cudaGetLastError();
}

template <typename T>
cudaError_t dispatch(void const* q, void const* k, void const* v, void* out, int B, int L, int D, float scale,
    cudaStream_t stream)
{
    auto const* tq = static_cast<T const*>(q);
    auto const* tk = static_cast<T const*>(k);
    auto const* tv = static_cast<T const*>(v);
    auto* to = static_cast<T*>(out);
    switch (padded_head(D))
    {
    case 4: return launch<T, 4>(tq, tk, tv, to, B, L, D, scale, stream);
    case 8: return launch<T, 8>(tq, tk, tv, to, B, L, D, scale, stream);
    case 16: return launch<T, 16>(tq, tk, tv, to, B, L, D, scale, stream);
    case 32: return launch<T, 32>(tq, tk, tv, to, B, L, D, scale, stream);
    default: return launch<T, 64>(tq, tk, tv, to, B, L, D, scale, stream);
    }
}

template <int DPAD>
void tiling_of(int* d_pad, int* tile_keys, int* rows_per_block, int* threads_per_row)
{
    *d_pad = DPAD;
    *tile_keys = Tiling<DPAD>::kTileKeys;
    *rows_per_block = Tiling<DPAD>::kRows;
    *threads_per_row = Tiling<DPAD>::kThreadsPerRow;
}

} // namespace

extern "C" int tsiSaliencyAttention(void const* q, void const* k, void const* v, void* out, int B, int L, int D,
    float scale, int dtype, cudaStream_t stream)
{
    if (B < 0 || L < 0 || D < 1 || D > TSI_ATTENTION_MAX_D || (dtype != TSI_DTYPE_FP32 && dtype != TSI_DTYPE_FP16))
    {
        return cudaErrorInvalidValue;
    }
    if (B == 0 || L == 0)
    {
        return cudaSuccess;
    }
    if (q == nullptr || k == nullptr || v == nullptr || out == nullptr || out == q || out == k || out == v)
    {
        return cudaErrorInvalidValue;  // out is written while other blocks still read q, k and v
    }
    if (dtype == TSI_DTYPE_FP16)
    {
        return dispatch<__half>(q, k, v, out, B, L, D, scale, stream);
    }
    return dispatch<float>(q, k, v, out, B, L, D, scale, stream);
}

extern "C" int tsiSaliencyAttentionTiling(
    int D, int* d_pad, int* tile_keys, int* rows_per_block, int* threads_per_row, int* chunk_keys)
{
    if (D < 1 || D > TSI_ATTENTION_MAX_D || !d_pad || !tile_keys || !rows_per_block || !threads_per_row
        || !chunk_keys)
    {
        return cudaErrorInvalidValue;
    }
    switch (padded_head(D))
    {
    case 4: tiling_of<4>(d_pad, tile_keys, rows_per_block, threads_per_row); break;
    case 8: tiling_of<8>(d_pad, tile_keys, rows_per_block, threads_per_row); break;
    case 16: tiling_of<16>(d_pad, tile_keys, rows_per_block, threads_per_row); break;
    case 32: tiling_of<32>(d_pad, tile_keys, rows_per_block, threads_per_row); break;
    default: tiling_of<64>(d_pad, tile_keys, rows_per_block, threads_per_row); break;
    }
    *chunk_keys = kChunk;
    return 0;
}
