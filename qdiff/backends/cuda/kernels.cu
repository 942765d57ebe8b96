// qdiff GPU kernels, compiled at run time by CuPy (cupy.RawModule, NVRTC) for the CuPy backend.
//
// Self-contained: no #include, so the same file compiles with NVRTC, with nvcc (`nvcc --ptx kernels.cu`,
// the test suite does this) and, with -DQDIFF_HOST_EMULATION, as plain host code whose extern "C"
// entry points run every kernel's per-thread code sequentially over its launch grid (tests on machines
// without a GPU call them through ctypes).
//
// Layout: a batch of `batch` states of `dim = 2**n` amplitudes each, contiguous: amplitude i of entry b
// is state[b * dim + i]; wire w is bit (n - 1 - w) of i (wire 0 the most significant).
//
// Index arithmetic (mirrored line by line in gpu_index_model.py):
//   * a thread id t counts the amplitudes (or groups of 2^k amplitudes) a kernel must touch; the amplitude
//     index is t with a 0 bit inserted at every "fixed" bit position (targets and controls), lowest first,
//     OR'ed with `cset` (the control bits whose control value is 1): insert_zero_bits(t, fixed) | cset;
//   * within a group, row r of a 2^k x 2^k gate matrix sits at offset pdep(r, tmask) (bit j of r goes to
//     the j-th lowest set bit of the target mask). The host reorders matrices to ascending target wires
//     first, so r is the usual index with the first (smallest) target wire most significant;
//   * a Pauli word is (xmask: bits flipped by X/Y, pmask: bits with a sign from Y/Z, g = (-i)^#Y):
//     (P psi)[i] = g * (-1)^popcount(i & pmask) * psi[i ^ xmask].
//
// Every kernel is a template on the real type R (float: complex64 states, double: complex128), launched
// with grid (gx, gy) and 1-D blocks: blockIdx.x strides over thread ids, blockIdx.y over batch entries.
// Gate data comes either by value (small unbatched matrices/diagonals, stride -1: no host-to-device copy)
// or through a device pointer with a per-entry stride (0: one shared matrix; d*d: one per batch entry).
// Reductions write per-block partial sums (double precision) that the host sums with a CuPy reduction.

typedef unsigned long long u64;

#if defined(QDIFF_HOST_EMULATION)
#define QD_HD inline
#define QD_DEVICE_CODE 0
#elif defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define QD_HD __host__ __device__ __forceinline__
#define QD_DEVICE_CODE 1
#else
#define QD_HD inline
#define QD_DEVICE_CODE 0
#endif

// ------------------------------------------------------------------------------------------------
// complex numbers (layout-compatible with numpy/CuPy complex64 and complex128)

#if QD_DEVICE_CODE
#define QD_CPLX_ALIGN(R) alignas(2 * sizeof(R))  // 8/16-byte loads and stores on the device
#else
#define QD_CPLX_ALIGN(R)  // host emulation: plain C layout, as ctypes passes it by value
#endif
template <typename R>
struct QD_CPLX_ALIGN(R) cplx {
    R re;
    R im;
};

template <typename R>
QD_HD cplx<R> mk(R re, R im) {
    cplx<R> z;
    z.re = re;
    z.im = im;
    return z;
}
template <typename R>
QD_HD cplx<R> operator+(cplx<R> a, cplx<R> b) { return mk<R>(a.re + b.re, a.im + b.im); }
template <typename R>
QD_HD cplx<R> operator-(cplx<R> a) { return mk<R>(-a.re, -a.im); }
template <typename R>
QD_HD cplx<R> operator*(cplx<R> a, cplx<R> b) {
    return mk<R>(a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re);
}
template <typename R>
QD_HD cplx<R> operator*(R s, cplx<R> a) { return mk<R>(s * a.re, s * a.im); }

// double-precision complex, for accumulating reductions of either precision
struct dcplx {
    double re;
    double im;
};
template <typename R>
QD_HD dcplx widen(cplx<R> a) {
    dcplx z;
    z.re = (double)a.re;
    z.im = (double)a.im;
    return z;
}
QD_HD dcplx dmul(dcplx a, dcplx b) {
    dcplx z;
    z.re = a.re * b.re - a.im * b.im;
    z.im = a.re * b.im + a.im * b.re;
    return z;
}
QD_HD dcplx dconj_mul(dcplx a, dcplx b) {  // conj(a) * b
    dcplx z;
    z.re = a.re * b.re + a.im * b.im;
    z.im = a.re * b.im - a.im * b.re;
    return z;
}

// ------------------------------------------------------------------------------------------------
// bit arithmetic

QD_HD int parity(u64 x) {
#if QD_DEVICE_CODE && defined(__CUDA_ARCH__)
    return __popcll(x) & 1;
#else
    return __builtin_popcountll(x) & 1;
#endif
}

// t with a 0 inserted at every set bit position of `mask`, lowest position first
QD_HD u64 insert_zero_bits(u64 t, u64 mask) {
    while (mask) {
        const u64 low = mask & (~mask + 1);  // lowest set bit
        t = ((t & ~(low - 1)) << 1) | (t & (low - 1));
        mask &= mask - 1;
    }
    return t;
}

// deposit the low bits of r into the set bit positions of mask (bit j of r -> j-th lowest set bit)
QD_HD u64 pdep(u64 r, u64 mask) {
    u64 out = 0;
    for (u64 bit = 1; mask; bit <<= 1) {
        const u64 low = mask & (~mask + 1);
        if (r & bit) out |= low;
        mask &= mask - 1;
    }
    return out;
}

// gather the bits of i at the set positions of mask into the low bits of the result (inverse of pdep)
QD_HD u64 pext(u64 i, u64 mask) {
    u64 out = 0;
    for (u64 bit = 1; mask; bit <<= 1) {
        const u64 low = mask & (~mask + 1);
        if (i & low) out |= bit;
        mask &= mask - 1;
    }
    return out;
}

// ------------------------------------------------------------------------------------------------
// launch coordinates: filled from the CUDA builtins on the device, by loops in the host emulation

struct QdIdx {
    u64 bx, by, tx, gx, gy, bd;  // blockIdx.x, blockIdx.y, threadIdx.x, gridDim.x, gridDim.y, blockDim.x
    QD_HD u64 first() const { return bx * bd + tx; }
    QD_HD u64 stride() const { return gx * bd; }
};

#if QD_DEVICE_CODE
__device__ __forceinline__ QdIdx qd_idx() {
    QdIdx id;
    id.bx = blockIdx.x;
    id.by = blockIdx.y;
    id.tx = threadIdx.x;
    id.gx = gridDim.x;
    id.gy = gridDim.y;
    id.bd = blockDim.x;
    return id;
}

// sum of v over the block (blockDim.x a multiple of 32); the result is valid in thread 0
__device__ double block_sum(double v) {
    __shared__ double warp_sums[32];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) warp_sums[warp] = v;
    __syncthreads();
    const int nwarps = (blockDim.x + 31) >> 5;
    v = (int)threadIdx.x < nwarps ? warp_sums[threadIdx.x] : 0.0;
    if (warp == 0)
        for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    __syncthreads();  // warp_sums may be reused by the next call
    return v;
}
#endif

// ================================================================================================
// gate kernels: each is <name>_thread (the work of one thread: a grid-stride loop over thread ids for
// every batch entry it owns) and a __global__ wrapper. Parameter lists are macros so the device kernel,
// the thread function and the host emulation share them.

// ---- dense one-qubit matrix, with controls ------------------------------------------------------
#define QD_APPLY_1Q_PARAMS(R)                                                                          \
    cplx<R>*state, u64 dim, u64 nthreads, int batch, u64 fixed, u64 cset, u64 tbit,                    \
        const cplx<R>*mats, long long mstride, cplx<R> m0, cplx<R> m1, cplx<R> m2, cplx<R> m3
#define QD_APPLY_1Q_ARGS state, dim, nthreads, batch, fixed, cset, tbit, mats, mstride, m0, m1, m2, m3

template <typename R>
QD_HD void apply_1q_thread(const QdIdx& id, QD_APPLY_1Q_PARAMS(R)) {
    for (u64 b = id.by; b < (u64)batch; b += id.gy) {
        cplx<R> m[4] = {m0, m1, m2, m3};
        if (mstride >= 0)
            for (int e = 0; e < 4; ++e) m[e] = mats[b * (u64)mstride + e];
        cplx<R>* psi = state + b * dim;
        for (u64 t = id.first(); t < nthreads; t += id.stride()) {
            const u64 i0 = insert_zero_bits(t, fixed) | cset;
            const u64 i1 = i0 | tbit;
            const cplx<R> a0 = psi[i0], a1 = psi[i1];
            psi[i0] = m[0] * a0 + m[1] * a1;
            psi[i1] = m[2] * a0 + m[3] * a1;
        }
    }
}

// ---- dense two-qubit matrix (targets in ascending wire order: hi = first target's bit) -----------
#define QD_APPLY_2Q_PARAMS(R)                                                                          \
    cplx<R>*state, u64 dim, u64 nthreads, int batch, u64 fixed, u64 cset, u64 hi, u64 lo,              \
        const cplx<R>*mats, long long mstride, cplx<R> m0, cplx<R> m1, cplx<R> m2, cplx<R> m3,         \
        cplx<R> m4, cplx<R> m5, cplx<R> m6, cplx<R> m7, cplx<R> m8, cplx<R> m9, cplx<R> m10,           \
        cplx<R> m11, cplx<R> m12, cplx<R> m13, cplx<R> m14, cplx<R> m15
#define QD_APPLY_2Q_ARGS                                                                               \
    state, dim, nthreads, batch, fixed, cset, hi, lo, mats, mstride, m0, m1, m2, m3, m4, m5, m6, m7,    \
        m8, m9, m10, m11, m12, m13, m14, m15

template <typename R>
QD_HD void apply_2q_thread(const QdIdx& id, QD_APPLY_2Q_PARAMS(R)) {
    for (u64 b = id.by; b < (u64)batch; b += id.gy) {
        cplx<R> m[16] = {m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, m10, m11, m12, m13, m14, m15};
        if (mstride >= 0)
            for (int e = 0; e < 16; ++e) m[e] = mats[b * (u64)mstride + e];
        cplx<R>* psi = state + b * dim;
        for (u64 t = id.first(); t < nthreads; t += id.stride()) {
            const u64 i0 = insert_zero_bits(t, fixed) | cset;
            const u64 idx[4] = {i0, i0 | lo, i0 | hi, i0 | hi | lo};
            cplx<R> a[4];
            for (int r = 0; r < 4; ++r) a[r] = psi[idx[r]];
            for (int r = 0; r < 4; ++r)
                psi[idx[r]] = m[4 * r] * a[0] + m[4 * r + 1] * a[1] + m[4 * r + 2] * a[2] + m[4 * r + 3] * a[3];
        }
    }
}

// ---- diagonal on k targets (entry pext(i, tmask)), with controls --------------------------------
#define QD_APPLY_DIAG_PARAMS(R)                                                                        \
    cplx<R>*state, u64 dim, u64 nthreads, int batch, u64 cmask, u64 cset, u64 tmask,                   \
        const cplx<R>*diags, long long dstride, cplx<R> d0, cplx<R> d1, cplx<R> d2, cplx<R> d3
#define QD_APPLY_DIAG_ARGS state, dim, nthreads, batch, cmask, cset, tmask, diags, dstride, d0, d1, d2, d3

template <typename R>
QD_HD void apply_diag_thread(const QdIdx& id, QD_APPLY_DIAG_PARAMS(R)) {
    for (u64 b = id.by; b < (u64)batch; b += id.gy) {
        const cplx<R>* dg = diags + b * (u64)(dstride >= 0 ? dstride : 0);
        cplx<R>* psi = state + b * dim;
        for (u64 t = id.first(); t < nthreads; t += id.stride()) {
            const u64 i = insert_zero_bits(t, cmask) | cset;
            const u64 r = pext(i, tmask);
            const cplx<R> f = dstride >= 0 ? dg[r] : (r < 2 ? (r == 0 ? d0 : d1) : (r == 2 ? d2 : d3));
            psi[i] = f * psi[i];
        }
    }
}

// ---- bit flip of one target (PauliX, CNOT, Toffoli, ...): swaps, no arithmetic -------------------
#define QD_SWAP_PARAMS(R) cplx<R>*state, u64 dim, u64 nthreads, int batch, u64 fixed, u64 cset, u64 tbit
#define QD_SWAP_ARGS state, dim, nthreads, batch, fixed, cset, tbit

template <typename R>
QD_HD void swap_thread(const QdIdx& id, QD_SWAP_PARAMS(R)) {
    for (u64 b = id.by; b < (u64)batch; b += id.gy) {
        cplx<R>* psi = state + b * dim;
        for (u64 t = id.first(); t < nthreads; t += id.stride()) {
            const u64 i0 = insert_zero_bits(t, fixed) | cset;
            const u64 i1 = i0 | tbit;
            const cplx<R> a0 = psi[i0];
            psi[i0] = psi[i1];
            psi[i1] = a0;
        }
    }
}

// ---- Pauli word, out of place: out = P in --------------------------------------------------------
#define QD_PAULI_APPLY_PARAMS(R) \
    const cplx<R>*in, cplx<R>*out, u64 dim, int batch, u64 xmask, u64 pmask, cplx<R> g
#define QD_PAULI_APPLY_ARGS in, out, dim, batch, xmask, pmask, g

template <typename R>
QD_HD void pauli_apply_thread(const QdIdx& id, QD_PAULI_APPLY_PARAMS(R)) {
    for (u64 b = id.by; b < (u64)batch; b += id.gy) {
        const cplx<R>* src = in + b * dim;
        cplx<R>* dst = out + b * dim;
        for (u64 i = id.first(); i < dim; i += id.stride()) {
            const cplx<R> v = g * src[i ^ xmask];
            dst[i] = parity(i & pmask) ? -v : v;
        }
    }
}

// ---- Pauli rotation in place: psi <- cos(t/2) psi - i sin(t/2) P psi on the controlled subspace --
// xmask == 0: one amplitude per thread (fixed = controls); else one pair (i, i ^ xmask) per thread,
// i having a 0 at the lowest set bit of xmask (fixed = controls | that bit).
#define QD_PAULI_ROT_PARAMS(R)                                                                         \
    cplx<R>*state, u64 dim, u64 nthreads, int batch, u64 fixed, u64 cset, u64 xmask, u64 pmask,        \
        cplx<R> g, const R*cs, long long csstride, R c, R s
#define QD_PAULI_ROT_ARGS state, dim, nthreads, batch, fixed, cset, xmask, pmask, g, cs, csstride, c, s

template <typename R>
QD_HD void pauli_rot_thread(const QdIdx& id, QD_PAULI_ROT_PARAMS(R)) {
    for (u64 b = id.by; b < (u64)batch; b += id.gy) {
        R cb = c, sb = s;
        if (csstride >= 0) {
            cb = cs[b * (u64)csstride];
            sb = cs[b * (u64)csstride + 1];
        }
        const cplx<R> f = mk<R>(sb * g.im, -sb * g.re);  // -i sin(t/2) g
        cplx<R>* psi = state + b * dim;
        for (u64 t = id.first(); t < nthreads; t += id.stride()) {
            const u64 i = insert_zero_bits(t, fixed) | cset;
            const cplx<R> fi = parity(i & pmask) ? -f : f;
            if (xmask == 0) {
                psi[i] = cb * psi[i] + fi * psi[i];
            } else {
                const u64 j = i ^ xmask;
                const cplx<R> fj = parity(j & pmask) ? -f : f;
                const cplx<R> a = psi[i], z = psi[j];
                psi[i] = cb * a + fi * z;
                psi[j] = cb * z + fj * a;
            }
        }
    }
}

// ---- general k-qubit matrix / permutation through shared memory ---------------------------------
// A block handles chunks of gpb = max(1, blockDim / d) groups (span = gpb * d amplitudes): it loads the
// chunk into shared memory, synchronises, then writes each row. Chunks never split a group.
#define QD_APPLY_KQ_PARAMS(R)                                                                          \
    cplx<R>*state, u64 dim, u64 ngroups, int batch, u64 fixed, u64 cset, u64 tmask, int d,             \
        const cplx<R>*mats, long long mstride
#define QD_APPLY_KQ_ARGS state, dim, ngroups, batch, fixed, cset, tmask, d, mats, mstride

QD_HD u64 qd_gpb(u64 bd, int d) { return bd >= (u64)d ? bd / (u64)d : 1; }

template <typename R>
QD_HD void kq_load(const QdIdx& id, u64 b, u64 chunk, cplx<R>* buf, QD_APPLY_KQ_PARAMS(R)) {
    const u64 gpb = qd_gpb(id.bd, d), span = gpb * d;
    const cplx<R>* psi = state + b * dim;
    for (u64 l = id.tx; l < span; l += id.bd) {
        const u64 g = chunk * gpb + l / d;
        if (g < ngroups) buf[l] = psi[insert_zero_bits(g, fixed) | cset | pdep(l % d, tmask)];
    }
}

template <typename R>
QD_HD void kq_store(const QdIdx& id, u64 b, u64 chunk, const cplx<R>* buf, QD_APPLY_KQ_PARAMS(R)) {
    const u64 gpb = qd_gpb(id.bd, d), span = gpb * d;
    cplx<R>* psi = state + b * dim;
    const cplx<R>* m = mats + b * (u64)mstride;
    for (u64 l = id.tx; l < span; l += id.bd) {
        const u64 g = chunk * gpb + l / d;
        if (g >= ngroups) continue;
        const u64 r = l % d, base = l - r;
        cplx<R> acc = mk<R>(0, 0);
        for (int j = 0; j < d; ++j) acc = acc + m[r * d + j] * buf[base + j];
        psi[insert_zero_bits(g, fixed) | cset | pdep(r, tmask)] = acc;
    }
}

// permutation new[r] = old[perm[r]]: perm packed 4 bits per entry when d <= 16, else read from `perm`
#define QD_PERM_PARAMS(R)                                                                              \
    cplx<R>*state, u64 dim, u64 ngroups, int batch, u64 fixed, u64 cset, u64 tmask, int d,             \
        const int *perm, u64 packed
#define QD_PERM_ARGS state, dim, ngroups, batch, fixed, cset, tmask, d, perm, packed

template <typename R>
QD_HD void perm_load(const QdIdx& id, u64 b, u64 chunk, cplx<R>* buf, QD_PERM_PARAMS(R)) {
    const u64 gpb = qd_gpb(id.bd, d), span = gpb * d;
    const cplx<R>* psi = state + b * dim;
    for (u64 l = id.tx; l < span; l += id.bd) {
        const u64 g = chunk * gpb + l / d;
        if (g < ngroups) buf[l] = psi[insert_zero_bits(g, fixed) | cset | pdep(l % d, tmask)];
    }
}

template <typename R>
QD_HD void perm_store(const QdIdx& id, u64 b, u64 chunk, const cplx<R>* buf, QD_PERM_PARAMS(R)) {
    const u64 gpb = qd_gpb(id.bd, d), span = gpb * d;
    cplx<R>* psi = state + b * dim;
    for (u64 l = id.tx; l < span; l += id.bd) {
        const u64 g = chunk * gpb + l / d;
        if (g >= ngroups) continue;
        const u64 r = l % d, base = l - r;
        const u64 src = d <= 16 ? (packed >> (4 * r)) & 15u : (u64)perm[r];
        psi[insert_zero_bits(g, fixed) | cset | pdep(r, tmask)] = buf[base + src];
    }
}

// ================================================================================================
// reductions: each thread accumulates (double precision) over a grid-stride loop; the block sums and
// writes partial[(b * gridDim.x + blockIdx.x) * width + e]

// ---- <psi| P |psi> (real part), P a Pauli word ---------------------------------------------------
#define QD_PAULI_EXPVAL_PARAMS(R) \
    const cplx<R>*state, u64 dim, int batch, u64 xmask, u64 pmask, cplx<R> g, double *partial
#define QD_PAULI_EXPVAL_ARGS state, dim, batch, xmask, pmask, g, partial

template <typename R>
QD_HD double pauli_expval_thread(const QdIdx& id, u64 b, QD_PAULI_EXPVAL_PARAMS(R)) {
    const cplx<R>* psi = state + b * dim;
    const dcplx gd = widen(g);
    double acc = 0.0;
    for (u64 i = id.first(); i < dim; i += id.stride()) {
        const dcplx v = dmul(gd, dconj_mul(widen(psi[i]), widen(psi[i ^ xmask])));
        acc += parity(i & pmask) ? -v.re : v.re;
    }
    return acc;
}

// ---- sum over the controlled subspace of <bra_g| M |ket_g> (M on the targets, ascending order) ---
#define QD_MATEL_PARAMS(R)                                                                             \
    const cplx<R>*bra, const cplx<R>*ket, u64 dim, u64 ngroups, int batch, u64 fixed, u64 cset,        \
        u64 tmask, int d, const cplx<R>*mats, long long mstride, double *partial
#define QD_MATEL_ARGS bra, ket, dim, ngroups, batch, fixed, cset, tmask, d, mats, mstride, partial

template <typename R>
QD_HD dcplx matel_thread(const QdIdx& id, u64 b, QD_MATEL_PARAMS(R)) {
    const cplx<R>* bp = bra + b * dim;
    const cplx<R>* kp = ket + b * dim;
    const cplx<R>* m = mats + b * (u64)mstride;
    dcplx acc;
    acc.re = 0.0;
    acc.im = 0.0;
    for (u64 g = id.first(); g < ngroups; g += id.stride()) {
        const u64 base = insert_zero_bits(g, fixed) | cset;
        for (int i = 0; i < d; ++i) {
            dcplx row;
            row.re = 0.0;
            row.im = 0.0;
            for (int j = 0; j < d; ++j) {
                const dcplx p = dmul(widen(m[i * d + j]), widen(kp[base | pdep(j, tmask)]));
                row.re += p.re;
                row.im += p.im;
            }
            const dcplx v = dconj_mul(widen(bp[base | pdep(i, tmask)]), row);
            acc.re += v.re;
            acc.im += v.im;
        }
    }
    return acc;
}

// ---- reduced outer product R[i][j] = sum_rest conj(bra[i, rest]) ket[j, rest] over the controlled
// subspace, D = 2^k targets (fixed = targets | controls) ---------------------------------------------
#define QD_OUTER_PARAMS(R)                                                                             \
    const cplx<R>*bra, const cplx<R>*ket, u64 dim, u64 ngroups, int batch, u64 fixed, u64 cset, u64 tmask, \
        double *partial
#define QD_OUTER_ARGS bra, ket, dim, ngroups, batch, fixed, cset, tmask, partial

template <typename R, int D>
QD_HD void outer_thread(const QdIdx& id, u64 b, double* acc, QD_OUTER_PARAMS(R)) {
    const cplx<R>* bp = bra + b * dim;
    const cplx<R>* kp = ket + b * dim;
    for (int e = 0; e < 2 * D * D; ++e) acc[e] = 0.0;
    for (u64 g = id.first(); g < ngroups; g += id.stride()) {
        const u64 base = insert_zero_bits(g, fixed) | cset;
        dcplx bv[D], kv[D];
        for (int r = 0; r < D; ++r) {
            bv[r] = widen(bp[base | pdep(r, tmask)]);
            kv[r] = widen(kp[base | pdep(r, tmask)]);
        }
        for (int i = 0; i < D; ++i)
            for (int j = 0; j < D; ++j) {
                const dcplx v = dconj_mul(bv[i], kv[j]);
                acc[2 * (i * D + j)] += v.re;
                acc[2 * (i * D + j) + 1] += v.im;
            }
    }
}

// ---- sampling: first index with cdf > u (numpy searchsorted side='right'), clipped to K-1 --------
#define QD_SEARCH_PARAMS const double *cdf, u64 K, const double *u, u64 shots, int batch, long long *out
#define QD_SEARCH_ARGS cdf, K, u, shots, batch, out

QD_HD void search_cdf_thread(const QdIdx& id, QD_SEARCH_PARAMS) {
    for (u64 b = id.by; b < (u64)batch; b += id.gy) {
        const double* row = cdf + b * K;
        for (u64 s = id.first(); s < shots; s += id.stride()) {
            const double x = u[b * shots + s];
            u64 lo = 0, hi = K;
            while (lo < hi) {
                const u64 mid = lo + (hi - lo) / 2;
                if (row[mid] <= x) lo = mid + 1;
                else hi = mid;
            }
            out[b * shots + s] = (long long)(lo < K ? lo : K - 1);
        }
    }
}

// ================================================================================================
// fused passes (the cupy-blocked executor): a CUDA block owns chunks of 2^m amplitudes that differ only
// in the pass's local bits (`lmask`, m set bits): chunk c is the amplitudes base(c) | pdep(l, lmask),
// base(c) = insert_zero_bits(c, lmask), l = 0..2^m-1. A chunk is loaded into shared memory, every op of
// the pass is applied to it in order (one __syncthreads between ops), and it is written back. Ops are
// QD_OP_FIELDS ints each: code, a, b, c, d, matrix offset, R slot (codes and fields as qdiff.fusion and
// qdiff/backends/cuda/passes.py):
//   U1 (0): 2x2 matrix on local bit b;              CU1 (1): 2x2 on bit b where local bit a equals c;
//   CSEL (2): 2x2 on bit b, matrix 0 where bit a is 0, matrix 1 (4 entries on) where it is 1;
//   U2 (3): 4x4 on bits (a, b), a the matrix's more significant target;
//   SWAP_SUB (4): for every local index i with bits a, b clear, swap buf[i + c] and buf[i + d].
// Matrices (row-major, per batch entry at mats + b * mstride) start at the op's matrix offset.

#define QD_OP_FIELDS 7
#define QD_OP_U1 0
#define QD_OP_CU1 1
#define QD_OP_CSEL 2
#define QD_OP_U2 3

template <typename R>
QD_HD void fused_load_thread(const QdIdx& id, const cplx<R>* psi, cplx<R>* buf, u64 base, u64 lmask, int m) {
    for (u64 l = id.tx; l < ((u64)1 << m); l += id.bd) buf[l] = psi[base | pdep(l, lmask)];
}

template <typename R>
QD_HD void fused_store_thread(const QdIdx& id, cplx<R>* psi, const cplx<R>* buf, u64 base, u64 lmask, int m) {
    for (u64 l = id.tx; l < ((u64)1 << m); l += id.bd) psi[base | pdep(l, lmask)] = buf[l];
}

template <typename R>
QD_HD void fused_pair(cplx<R>* buf, u64 i0, u64 i1, const cplx<R>* u) {
    const cplx<R> a0 = buf[i0], a1 = buf[i1];
    buf[i0] = u[0] * a0 + u[1] * a1;
    buf[i1] = u[2] * a0 + u[3] * a1;
}

// one op of a pass on the chunk in buf (2^m amplitudes); mat: the op's matrices
template <typename R>
QD_HD void fused_op_thread(const QdIdx& id, cplx<R>* buf, int m, const int* op, const cplx<R>* mat) {
    const int code = op[0];
    const u64 size = (u64)1 << m;
    const u64 sb = (u64)1 << op[2];
    if (code == QD_OP_U1 || code == QD_OP_CSEL) {
        const int nmat = code == QD_OP_CSEL ? 8 : 4;
        cplx<R> u[8];
        for (int e = 0; e < nmat; ++e) u[e] = mat[e];
        for (int e = nmat; e < 8; ++e) u[e] = u[e - 4];
        for (u64 p = id.tx; p < size / 2; p += id.bd) {
            const u64 i0 = insert_zero_bits(p, sb);
            const int half = code == QD_OP_CSEL ? (int)((i0 >> op[1]) & 1) : 0;
            fused_pair<R>(buf, i0, i0 | sb, u + 4 * half);
        }
        return;
    }
    const u64 sa = (u64)1 << op[1];
    if (code == QD_OP_CU1) {
        cplx<R> u[4];
        for (int e = 0; e < 4; ++e) u[e] = mat[e];
        const u64 cset = op[3] ? sa : 0;
        for (u64 p = id.tx; p < size / 4; p += id.bd) {
            const u64 i0 = insert_zero_bits(p, sa | sb) | cset;
            fused_pair<R>(buf, i0, i0 | sb, u);
        }
        return;
    }
    if (code == QD_OP_U2) {
        cplx<R> u[16];
        for (int e = 0; e < 16; ++e) u[e] = mat[e];
        for (u64 p = id.tx; p < size / 4; p += id.bd) {
            const u64 i0 = insert_zero_bits(p, sa | sb);
            const u64 idx[4] = {i0, i0 | sb, i0 | sa, i0 | sa | sb};
            cplx<R> x[4];
            for (int r = 0; r < 4; ++r) x[r] = buf[idx[r]];
            for (int r = 0; r < 4; ++r)
                buf[idx[r]] = u[4 * r] * x[0] + u[4 * r + 1] * x[1] + u[4 * r + 2] * x[2] + u[4 * r + 3] * x[3];
        }
        return;
    }
    const u64 offa = (u64)op[3], offb = (u64)op[4];  // SWAP_SUB
    for (u64 p = id.tx; p < size / 4; p += id.bd) {
        const u64 i = insert_zero_bits(p, sa | sb);
        const cplx<R> t = buf[i + offa];
        buf[i + offa] = buf[i + offb];
        buf[i + offb] = t;
    }
}

// this thread's share of R[x][y] = sum conj(bra_x) ket_y on the op's targets (CU1: its control half only),
// as a 4x4 complex matrix in 32 doubles (row-major (re, im) pairs; one-target ops fill the 2x2 corner)
template <typename R>
QD_HD void fused_reduce_thread(const QdIdx& id, const cplx<R>* bb, const cplx<R>* kb, int m, const int* op,
                               double* acc) {
    for (int e = 0; e < 32; ++e) acc[e] = 0.0;
    const int code = op[0];
    const u64 size = (u64)1 << m;
    const u64 sb = (u64)1 << op[2];
    int nrow = 2;
    u64 fixed = sb, cset = 0, offs[4] = {0, sb, 0, 0};
    if (code == QD_OP_U2) {
        const u64 sa = (u64)1 << op[1];
        nrow = 4;
        fixed = sa | sb;
        offs[2] = sa;
        offs[3] = sa | sb;
    } else if (code == QD_OP_CU1) {
        fixed = sb | ((u64)1 << op[1]);
        cset = op[3] ? ((u64)1 << op[1]) : 0;
    }
    const u64 ngroups = size >> (fixed == sb ? 1 : 2);
    for (u64 p = id.tx; p < ngroups; p += id.bd) {
        const u64 i0 = insert_zero_bits(p, fixed) | cset;
        dcplx bv[4], kv[4];
        for (int r = 0; r < nrow; ++r) {
            bv[r] = widen(bb[i0 | offs[r]]);
            kv[r] = widen(kb[i0 | offs[r]]);
        }
        for (int x = 0; x < nrow; ++x)
            for (int y = 0; y < nrow; ++y) {
                const dcplx v = dconj_mul(bv[x], kv[y]);
                acc[2 * (4 * x + y)] += v.re;
                acc[2 * (4 * x + y) + 1] += v.im;
            }
    }
}

// parameters: state(s), sizes, local bits, ops (nops x QD_OP_FIELDS), matrices; the adjoint adds R partials
// partial[((b * gridDim.x + blockIdx.x) * nslots + slot) * 32 + e] (zeroed by the host, accumulated over chunks)
#define QD_FUSED_PASS_PARAMS(R)                                                                        \
    cplx<R>*state, u64 dim, int batch, u64 nchunks, u64 lmask, int m, int nops, const int *ops,        \
        const cplx<R>*mats, long long mstride
#define QD_FUSED_PASS_ARGS state, dim, batch, nchunks, lmask, m, nops, ops, mats, mstride
#define QD_FUSED_ADJOINT_PARAMS(R)                                                                     \
    cplx<R>*bra, cplx<R>*ket, u64 dim, int batch, u64 nchunks, u64 lmask, int m, int nops,             \
        const int *ops, const cplx<R>*mats, long long mstride, int nslots, double *partial

// ================================================================================================
// device kernels

#if QD_DEVICE_CODE

template <typename R>
__global__ void qd_apply_1q(QD_APPLY_1Q_PARAMS(R)) { apply_1q_thread<R>(qd_idx(), QD_APPLY_1Q_ARGS); }

template <typename R>
__global__ void qd_apply_2q(QD_APPLY_2Q_PARAMS(R)) { apply_2q_thread<R>(qd_idx(), QD_APPLY_2Q_ARGS); }

template <typename R>
__global__ void qd_apply_diag(QD_APPLY_DIAG_PARAMS(R)) { apply_diag_thread<R>(qd_idx(), QD_APPLY_DIAG_ARGS); }

template <typename R>
__global__ void qd_swap(QD_SWAP_PARAMS(R)) { swap_thread<R>(qd_idx(), QD_SWAP_ARGS); }

template <typename R>
__global__ void qd_pauli_apply(QD_PAULI_APPLY_PARAMS(R)) { pauli_apply_thread<R>(qd_idx(), QD_PAULI_APPLY_ARGS); }

template <typename R>
__global__ void qd_pauli_rot(QD_PAULI_ROT_PARAMS(R)) { pauli_rot_thread<R>(qd_idx(), QD_PAULI_ROT_ARGS); }

// dynamic shared memory: span * sizeof(cplx<R>) bytes
template <typename R>
__global__ void qd_apply_kq(QD_APPLY_KQ_PARAMS(R)) {
    extern __shared__ __align__(16) unsigned char qd_smem[];
    cplx<R>* buf = reinterpret_cast<cplx<R>*>(qd_smem);
    const QdIdx id = qd_idx();
    const u64 nchunks = (ngroups + qd_gpb(id.bd, d) - 1) / qd_gpb(id.bd, d);
    for (u64 b = id.by; b < (u64)batch; b += id.gy)
        for (u64 chunk = id.bx; chunk < nchunks; chunk += id.gx) {
            kq_load<R>(id, b, chunk, buf, QD_APPLY_KQ_ARGS);
            __syncthreads();
            kq_store<R>(id, b, chunk, buf, QD_APPLY_KQ_ARGS);
            __syncthreads();
        }
}

template <typename R>
__global__ void qd_perm(QD_PERM_PARAMS(R)) {
    extern __shared__ __align__(16) unsigned char qd_smem[];
    cplx<R>* buf = reinterpret_cast<cplx<R>*>(qd_smem);
    const QdIdx id = qd_idx();
    const u64 nchunks = (ngroups + qd_gpb(id.bd, d) - 1) / qd_gpb(id.bd, d);
    for (u64 b = id.by; b < (u64)batch; b += id.gy)
        for (u64 chunk = id.bx; chunk < nchunks; chunk += id.gx) {
            perm_load<R>(id, b, chunk, buf, QD_PERM_ARGS);
            __syncthreads();
            perm_store<R>(id, b, chunk, buf, QD_PERM_ARGS);
            __syncthreads();
        }
}

template <typename R>
__global__ void qd_pauli_expval(QD_PAULI_EXPVAL_PARAMS(R)) {
    const QdIdx id = qd_idx();
    for (u64 b = id.by; b < (u64)batch; b += id.gy) {
        const double v = block_sum(pauli_expval_thread<R>(id, b, QD_PAULI_EXPVAL_ARGS));
        if (threadIdx.x == 0) partial[b * id.gx + id.bx] = v;
    }
}

template <typename R>
__global__ void qd_matel(QD_MATEL_PARAMS(R)) {
    const QdIdx id = qd_idx();
    for (u64 b = id.by; b < (u64)batch; b += id.gy) {
        const dcplx v = matel_thread<R>(id, b, QD_MATEL_ARGS);
        const double re = block_sum(v.re);
        const double im = block_sum(v.im);
        if (threadIdx.x == 0) {
            partial[2 * (b * id.gx + id.bx)] = re;
            partial[2 * (b * id.gx + id.bx) + 1] = im;
        }
    }
}

template <typename R, int D>
__global__ void qd_outer(QD_OUTER_PARAMS(R)) {
    const QdIdx id = qd_idx();
    for (u64 b = id.by; b < (u64)batch; b += id.gy) {
        double acc[2 * D * D];
        outer_thread<R, D>(id, b, acc, QD_OUTER_ARGS);
        for (int e = 0; e < 2 * D * D; ++e) {
            const double v = block_sum(acc[e]);
            if (threadIdx.x == 0) partial[(b * id.gx + id.bx) * (2 * D * D) + e] = v;
        }
    }
}

// sum of each thread's acc[0..31] over the block, added by threads 0..31 into out[0..31] (blockDim.x a
// multiple of 32, at most 1024); every thread of the block must call it
__device__ void fused_block_add(const double* acc, double* out) {
    __shared__ double qd_red[32 * 32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = (blockDim.x + 31) >> 5;
    for (int e = 0; e < 32; ++e) {
        double v = acc[e];
        for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
        if (lane == 0) qd_red[warp * 32 + e] = v;
    }
    __syncthreads();
    if (threadIdx.x < 32) {
        double v = 0.0;
        for (int w = 0; w < nwarps; ++w) v += qd_red[w * 32 + threadIdx.x];
        out[threadIdx.x] += v;
    }
    __syncthreads();
}

// dynamic shared memory: 2^m * sizeof(cplx<R>) bytes
template <typename R>
__global__ void qd_fused_pass(QD_FUSED_PASS_PARAMS(R)) {
    extern __shared__ __align__(16) unsigned char qd_smem[];
    cplx<R>* buf = reinterpret_cast<cplx<R>*>(qd_smem);
    const QdIdx id = qd_idx();
    for (u64 b = id.by; b < (u64)batch; b += id.gy) {
        cplx<R>* psi = state + b * dim;
        const cplx<R>* mb = mats + b * (u64)mstride;
        for (u64 chunk = id.bx; chunk < nchunks; chunk += id.gx) {
            const u64 base = insert_zero_bits(chunk, lmask);
            fused_load_thread<R>(id, psi, buf, base, lmask, m);
            __syncthreads();
            for (int g = 0; g < nops; ++g) {
                const int* op = ops + g * QD_OP_FIELDS;
                fused_op_thread<R>(id, buf, m, op, mb + op[5]);
                __syncthreads();
            }
            fused_store_thread<R>(id, psi, buf, base, lmask, m);
            __syncthreads();
        }
    }
}

// dynamic shared memory: 2 * 2^m * sizeof(cplx<R>) bytes (bra chunk, then ket chunk)
template <typename R>
__global__ void qd_fused_adjoint(QD_FUSED_ADJOINT_PARAMS(R)) {
    extern __shared__ __align__(16) unsigned char qd_smem[];
    cplx<R>* bb = reinterpret_cast<cplx<R>*>(qd_smem);
    cplx<R>* kb = bb + ((u64)1 << m);
    const QdIdx id = qd_idx();
    double acc[32];
    for (u64 b = id.by; b < (u64)batch; b += id.gy) {
        cplx<R>* bpsi = bra + b * dim;
        cplx<R>* kpsi = ket + b * dim;
        const cplx<R>* mb = mats + b * (u64)mstride;
        double* rows = partial + (b * id.gx + id.bx) * (u64)nslots * 32;
        for (u64 chunk = id.bx; chunk < nchunks; chunk += id.gx) {
            const u64 base = insert_zero_bits(chunk, lmask);
            fused_load_thread<R>(id, bpsi, bb, base, lmask, m);
            fused_load_thread<R>(id, kpsi, kb, base, lmask, m);
            __syncthreads();
            for (int g = 0; g < nops; ++g) {
                const int* op = ops + g * QD_OP_FIELDS;
                fused_op_thread<R>(id, kb, m, op, mb + op[5]);
                __syncthreads();
                if (op[6] >= 0) {
                    fused_reduce_thread<R>(id, bb, kb, m, op, acc);
                    fused_block_add(acc, rows + (u64)op[6] * 32);
                }
                fused_op_thread<R>(id, bb, m, op, mb + op[5]);
                __syncthreads();
            }
            fused_store_thread<R>(id, bpsi, bb, base, lmask, m);
            fused_store_thread<R>(id, kpsi, kb, base, lmask, m);
            __syncthreads();
        }
    }
}

extern "C" __global__ void qd_search_cdf(QD_SEARCH_PARAMS) { search_cdf_thread(qd_idx(), QD_SEARCH_ARGS); }

// explicit instantiations, so that nvcc compiles every kernel (CuPy instantiates through name expressions)
#if !defined(__CUDACC_RTC__)
#define QD_INSTANTIATE(R)                                                                              \
    template __global__ void qd_apply_1q<R>(QD_APPLY_1Q_PARAMS(R));                                    \
    template __global__ void qd_apply_2q<R>(QD_APPLY_2Q_PARAMS(R));                                    \
    template __global__ void qd_apply_diag<R>(QD_APPLY_DIAG_PARAMS(R));                                \
    template __global__ void qd_swap<R>(QD_SWAP_PARAMS(R));                                            \
    template __global__ void qd_pauli_apply<R>(QD_PAULI_APPLY_PARAMS(R));                              \
    template __global__ void qd_pauli_rot<R>(QD_PAULI_ROT_PARAMS(R));                                  \
    template __global__ void qd_apply_kq<R>(QD_APPLY_KQ_PARAMS(R));                                    \
    template __global__ void qd_perm<R>(QD_PERM_PARAMS(R));                                            \
    template __global__ void qd_pauli_expval<R>(QD_PAULI_EXPVAL_PARAMS(R));                            \
    template __global__ void qd_matel<R>(QD_MATEL_PARAMS(R));                                          \
    template __global__ void qd_outer<R, 2>(QD_OUTER_PARAMS(R));                                       \
    template __global__ void qd_outer<R, 4>(QD_OUTER_PARAMS(R));                                       \
    template __global__ void qd_fused_pass<R>(QD_FUSED_PASS_PARAMS(R));                                \
    template __global__ void qd_fused_adjoint<R>(QD_FUSED_ADJOINT_PARAMS(R));
QD_INSTANTIATE(float)
QD_INSTANTIATE(double)
#endif

#endif  // QD_DEVICE_CODE

// ================================================================================================
// host emulation (tests without a GPU): entry h_<kernel>_<f|d>(gx, gy, bd, <kernel arguments>) runs
// the kernel's thread code for every (blockIdx, threadIdx) of the launch, sequentially; the shared
// memory kernels run each phase for all threads of a block before the next (what __syncthreads
// guarantees), the reductions write the same per-block partial sums as the device.

#if defined(QDIFF_HOST_EMULATION)
#define QD_HOST_SIMPLE(NAME, SUFFIX, R, PARAMS, ARGS, THREAD)                                          \
    extern "C" void h_##NAME##_##SUFFIX(int gx, int gy, int bd, PARAMS(R)) {                           \
        for (u64 by = 0; by < (u64)gy; ++by)                                                           \
            for (u64 bx = 0; bx < (u64)gx; ++bx)                                                       \
                for (u64 tx = 0; tx < (u64)bd; ++tx) {                                                 \
                    const QdIdx id = {bx, by, tx, (u64)gx, (u64)gy, (u64)bd};                          \
                    THREAD<R>(id, ARGS);                                                               \
                }                                                                                      \
    }

#define QD_HOST_SMEM(NAME, SUFFIX, R, PARAMS, ARGS, LOAD, STORE)                                       \
    extern "C" void h_##NAME##_##SUFFIX(int gx, int gy, int bd, PARAMS(R)) {                           \
        const u64 gpb = qd_gpb((u64)bd, d), span = gpb * d, nchunks = (ngroups + gpb - 1) / gpb;       \
        cplx<R>* buf = new cplx<R>[span];                                                              \
        for (u64 by = 0; by < (u64)gy; ++by)                                                           \
            for (u64 bx = 0; bx < (u64)gx; ++bx)                                                       \
                for (u64 b = by; b < (u64)batch; b += (u64)gy)                                         \
                    for (u64 chunk = bx; chunk < nchunks; chunk += (u64)gx) {                          \
                        for (u64 tx = 0; tx < (u64)bd; ++tx) {                                         \
                            const QdIdx id = {bx, by, tx, (u64)gx, (u64)gy, (u64)bd};                  \
                            LOAD<R>(id, b, chunk, buf, ARGS);                                          \
                        }                                                                              \
                        for (u64 tx = 0; tx < (u64)bd; ++tx) {                                         \
                            const QdIdx id = {bx, by, tx, (u64)gx, (u64)gy, (u64)bd};                  \
                            STORE<R>(id, b, chunk, buf, ARGS);                                         \
                        }                                                                              \
                    }                                                                                  \
        delete[] buf;                                                                                  \
    }

#define QD_HOST_ALL(SUFFIX, R)                                                                         \
    QD_HOST_SIMPLE(qd_apply_1q, SUFFIX, R, QD_APPLY_1Q_PARAMS, QD_APPLY_1Q_ARGS, apply_1q_thread)      \
    QD_HOST_SIMPLE(qd_apply_2q, SUFFIX, R, QD_APPLY_2Q_PARAMS, QD_APPLY_2Q_ARGS, apply_2q_thread)      \
    QD_HOST_SIMPLE(qd_apply_diag, SUFFIX, R, QD_APPLY_DIAG_PARAMS, QD_APPLY_DIAG_ARGS, apply_diag_thread) \
    QD_HOST_SIMPLE(qd_swap, SUFFIX, R, QD_SWAP_PARAMS, QD_SWAP_ARGS, swap_thread)                      \
    QD_HOST_SIMPLE(qd_pauli_apply, SUFFIX, R, QD_PAULI_APPLY_PARAMS, QD_PAULI_APPLY_ARGS,              \
                   pauli_apply_thread)                                                                 \
    QD_HOST_SIMPLE(qd_pauli_rot, SUFFIX, R, QD_PAULI_ROT_PARAMS, QD_PAULI_ROT_ARGS, pauli_rot_thread)  \
    QD_HOST_SMEM(qd_apply_kq, SUFFIX, R, QD_APPLY_KQ_PARAMS, QD_APPLY_KQ_ARGS, kq_load, kq_store)      \
    QD_HOST_SMEM(qd_perm, SUFFIX, R, QD_PERM_PARAMS, QD_PERM_ARGS, perm_load, perm_store)              \
    extern "C" void h_qd_pauli_expval_##SUFFIX(int gx, int gy, int bd, QD_PAULI_EXPVAL_PARAMS(R)) {    \
        for (u64 by = 0; by < (u64)gy; ++by)                                                           \
            for (u64 bx = 0; bx < (u64)gx; ++bx)                                                       \
                for (u64 b = by; b < (u64)batch; b += (u64)gy) {                                       \
                    double sum = 0.0;                                                                  \
                    for (u64 tx = 0; tx < (u64)bd; ++tx) {                                             \
                        const QdIdx id = {bx, by, tx, (u64)gx, (u64)gy, (u64)bd};                      \
                        sum += pauli_expval_thread<R>(id, b, QD_PAULI_EXPVAL_ARGS);                    \
                    }                                                                                  \
                    partial[b * gx + bx] = sum;                                                        \
                }                                                                                      \
    }                                                                                                  \
    extern "C" void h_qd_matel_##SUFFIX(int gx, int gy, int bd, QD_MATEL_PARAMS(R)) {                  \
        for (u64 by = 0; by < (u64)gy; ++by)                                                           \
            for (u64 bx = 0; bx < (u64)gx; ++bx)                                                       \
                for (u64 b = by; b < (u64)batch; b += (u64)gy) {                                       \
                    double re = 0.0, im = 0.0;                                                         \
                    for (u64 tx = 0; tx < (u64)bd; ++tx) {                                             \
                        const QdIdx id = {bx, by, tx, (u64)gx, (u64)gy, (u64)bd};                      \
                        const dcplx v = matel_thread<R>(id, b, QD_MATEL_ARGS);                         \
                        re += v.re;                                                                    \
                        im += v.im;                                                                    \
                    }                                                                                  \
                    partial[2 * (b * gx + bx)] = re;                                                   \
                    partial[2 * (b * gx + bx) + 1] = im;                                               \
                }                                                                                      \
    }                                                                                                  \
    QD_HOST_OUTER(SUFFIX, R, 2)                                                                        \
    QD_HOST_OUTER(SUFFIX, R, 4)

#define QD_HOST_OUTER(SUFFIX, R, D)                                                                    \
    extern "C" void h_qd_outer##D##_##SUFFIX(int gx, int gy, int bd, QD_OUTER_PARAMS(R)) {             \
        double acc[2 * D * D];                                                                         \
        for (u64 by = 0; by < (u64)gy; ++by)                                                           \
            for (u64 bx = 0; bx < (u64)gx; ++bx)                                                       \
                for (u64 b = by; b < (u64)batch; b += (u64)gy) {                                       \
                    double* out = partial + (b * gx + bx) * (2 * D * D);                               \
                    for (int e = 0; e < 2 * D * D; ++e) out[e] = 0.0;                                  \
                    for (u64 tx = 0; tx < (u64)bd; ++tx) {                                             \
                        const QdIdx id = {bx, by, tx, (u64)gx, (u64)gy, (u64)bd};                      \
                        outer_thread<R, D>(id, b, acc, QD_OUTER_ARGS);                                 \
                        for (int e = 0; e < 2 * D * D; ++e) out[e] += acc[e];                          \
                    }                                                                                  \
                }                                                                                      \
    }

QD_HOST_ALL(f, float)
QD_HOST_ALL(d, double)

// fused passes: every phase (load, each op, each reduction, store) for all threads of a block before the next
#define QD_HOST_FUSED(SUFFIX, R)                                                                       \
    extern "C" void h_qd_fused_pass_##SUFFIX(int gx, int gy, int bd, QD_FUSED_PASS_PARAMS(R)) {        \
        cplx<R>* buf = new cplx<R>[(u64)1 << m];                                                       \
        for (u64 by = 0; by < (u64)gy; ++by)                                                           \
            for (u64 bx = 0; bx < (u64)gx; ++bx)                                                       \
                for (u64 b = by; b < (u64)batch; b += (u64)gy)                                         \
                    for (u64 chunk = bx; chunk < nchunks; chunk += (u64)gx) {                          \
                        const u64 base = insert_zero_bits(chunk, lmask);                               \
                        cplx<R>* psi = state + b * dim;                                                \
                        const cplx<R>* mb = mats + b * (u64)mstride;                                   \
                        for (u64 tx = 0; tx < (u64)bd; ++tx) {                                         \
                            const QdIdx id = {bx, by, tx, (u64)gx, (u64)gy, (u64)bd};                  \
                            fused_load_thread<R>(id, psi, buf, base, lmask, m);                        \
                        }                                                                              \
                        for (int g = 0; g < nops; ++g)                                                 \
                            for (u64 tx = 0; tx < (u64)bd; ++tx) {                                     \
                                const QdIdx id = {bx, by, tx, (u64)gx, (u64)gy, (u64)bd};              \
                                const int* op = ops + g * QD_OP_FIELDS;                                \
                                fused_op_thread<R>(id, buf, m, op, mb + op[5]);                        \
                            }                                                                          \
                        for (u64 tx = 0; tx < (u64)bd; ++tx) {                                         \
                            const QdIdx id = {bx, by, tx, (u64)gx, (u64)gy, (u64)bd};                  \
                            fused_store_thread<R>(id, psi, buf, base, lmask, m);                       \
                        }                                                                              \
                    }                                                                                  \
        delete[] buf;                                                                                  \
    }                                                                                                  \
    extern "C" void h_qd_fused_adjoint_##SUFFIX(int gx, int gy, int bd, QD_FUSED_ADJOINT_PARAMS(R)) {  \
        cplx<R>* bb = new cplx<R>[(u64)1 << m];                                                        \
        cplx<R>* kb = new cplx<R>[(u64)1 << m];                                                        \
        double acc[32];                                                                                \
        for (u64 by = 0; by < (u64)gy; ++by)                                                           \
            for (u64 bx = 0; bx < (u64)gx; ++bx)                                                       \
                for (u64 b = by; b < (u64)batch; b += (u64)gy)                                         \
                    for (u64 chunk = bx; chunk < nchunks; chunk += (u64)gx) {                          \
                        const u64 base = insert_zero_bits(chunk, lmask);                               \
                        cplx<R>* bpsi = bra + b * dim;                                                 \
                        cplx<R>* kpsi = ket + b * dim;                                                 \
                        const cplx<R>* mb = mats + b * (u64)mstride;                                   \
                        double* rows = partial + (b * (u64)gx + bx) * (u64)nslots * 32;                \
                        for (u64 tx = 0; tx < (u64)bd; ++tx) {                                         \
                            const QdIdx id = {bx, by, tx, (u64)gx, (u64)gy, (u64)bd};                  \
                            fused_load_thread<R>(id, bpsi, bb, base, lmask, m);                        \
                            fused_load_thread<R>(id, kpsi, kb, base, lmask, m);                        \
                        }                                                                              \
                        for (int g = 0; g < nops; ++g) {                                               \
                            const int* op = ops + g * QD_OP_FIELDS;                                    \
                            for (u64 tx = 0; tx < (u64)bd; ++tx) {                                     \
                                const QdIdx id = {bx, by, tx, (u64)gx, (u64)gy, (u64)bd};              \
                                fused_op_thread<R>(id, kb, m, op, mb + op[5]);                         \
                            }                                                                          \
                            if (op[6] >= 0)                                                            \
                                for (u64 tx = 0; tx < (u64)bd; ++tx) {                                 \
                                    const QdIdx id = {bx, by, tx, (u64)gx, (u64)gy, (u64)bd};          \
                                    fused_reduce_thread<R>(id, bb, kb, m, op, acc);                    \
                                    for (int e = 0; e < 32; ++e) rows[(u64)op[6] * 32 + e] += acc[e];  \
                                }                                                                      \
                            for (u64 tx = 0; tx < (u64)bd; ++tx) {                                     \
                                const QdIdx id = {bx, by, tx, (u64)gx, (u64)gy, (u64)bd};              \
                                fused_op_thread<R>(id, bb, m, op, mb + op[5]);                         \
                            }                                                                          \
                        }                                                                              \
                        for (u64 tx = 0; tx < (u64)bd; ++tx) {                                         \
                            const QdIdx id = {bx, by, tx, (u64)gx, (u64)gy, (u64)bd};                  \
                            fused_store_thread<R>(id, bpsi, bb, base, lmask, m);                       \
                            fused_store_thread<R>(id, kpsi, kb, base, lmask, m);                       \
                        }                                                                              \
                    }                                                                                  \
        delete[] bb;                                                                                   \
        delete[] kb;                                                                                   \
    }

QD_HOST_FUSED(f, float)
QD_HOST_FUSED(d, double)

extern "C" void h_qd_search_cdf(int gx, int gy, int bd, QD_SEARCH_PARAMS) {
    for (u64 by = 0; by < (u64)gy; ++by)
        for (u64 bx = 0; bx < (u64)gx; ++bx)
            for (u64 tx = 0; tx < (u64)bd; ++tx) {
                const QdIdx id = {bx, by, tx, (u64)gx, (u64)gy, (u64)bd};
                search_cdf_thread(id, QD_SEARCH_ARGS);
            }
}

// the bit helpers themselves, to compare with gpu_index_model.py
extern "C" u64 h_insert_zero_bits(u64 t, u64 mask) { return insert_zero_bits(t, mask); }
extern "C" u64 h_pdep(u64 r, u64 mask) { return pdep(r, mask); }
extern "C" u64 h_pext(u64 i, u64 mask) { return pext(i, mask); }
extern "C" int h_parity(u64 x) { return parity(x); }
#endif  // QDIFF_HOST_EMULATION
