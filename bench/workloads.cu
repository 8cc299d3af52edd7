#include "workloads.h"

#include <algorithm>
#include <limits>
#include <numeric>
#include <thread>

#include <cuda_fp8.h>

#include "flashmla_ref/fp8_format.h"
#include "values.h"

namespace flashmla::bench {

// ----- DeviceBuffer ------------------------------------------------------------------

DeviceBuffer::DeviceBuffer(DeviceBuffer&& other) noexcept { *this = static_cast<DeviceBuffer&&>(other); }

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
  if (this != &other) {
    release();
    ptr_ = other.ptr_;
    bytes_ = other.bytes_;
    other.ptr_ = nullptr;
    other.bytes_ = 0;
  }
  return *this;
}

cudaError_t DeviceBuffer::allocate(size_t bytes) {
  release();
  // Never a zero-byte allocation: an empty tensor still gets a valid pointer.
  const cudaError_t err = cudaMalloc(&ptr_, std::max<size_t>(bytes, 256));
  if (err != cudaSuccess) {
    ptr_ = nullptr;
    cudaGetLastError();
    return err;
  }
  bytes_ = bytes;
  return cudaSuccess;
}

void DeviceBuffer::release() {
  if (ptr_ != nullptr) cudaFree(ptr_);
  ptr_ = nullptr;
  bytes_ = 0;
}

// ----- index data ----------------------------------------------------------------------

namespace {

constexpr uint64_t kSeedPagePermutation = 0x70616765ull;  // "page"
constexpr uint64_t kSeedIndices = 0x696E6478ull;          // "indx"

// A sequential generator on top of mix64 (splitmix64). Deterministic on
// every platform, unlike the distributions of <random>.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    state_ += 0x9E3779B97F4A7C15ull;
    return mix64(state_);
  }
  // Uniform in [0, n) by a 64x64 -> 128 multiply; the bias is n / 2^64.
  uint64_t below(uint64_t n) { return uint64_t((static_cast<unsigned __int128>(next()) * n) >> 64); }

 private:
  uint64_t state_;
};

// Draws `count` distinct values of [0, n), uniformly, by a partial
// Fisher-Yates shuffle that is undone afterwards, so every draw starts from
// the identity and costs O(count), not O(n).
class DistinctSampler {
 public:
  explicit DistinctSampler(int64_t n) : pool_(size_t(n)), swapped_with_() {
    std::iota(pool_.begin(), pool_.end(), 0);
  }
  void draw(int64_t count, Rng& rng, int32_t* out) {
    const int64_t n = int64_t(pool_.size());
    swapped_with_.resize(size_t(count));
    for (int64_t k = 0; k < count; ++k) {
      const int64_t j = k + int64_t(rng.below(uint64_t(n - k)));
      std::swap(pool_[size_t(k)], pool_[size_t(j)]);
      swapped_with_[size_t(k)] = j;
      out[k] = pool_[size_t(k)];
    }
    for (int64_t k = count - 1; k >= 0; --k) std::swap(pool_[size_t(k)], pool_[size_t(swapped_with_[size_t(k)])]);
  }

 private:
  std::vector<int32_t> pool_;
  std::vector<int64_t> swapped_with_;
};

int64_t pages_for(int64_t tokens) { return (tokens + kPageBlockSize - 1) / kPageBlockSize; }

}  // namespace

IndexData make_index_data(const Case& c) {
  IndexData d;
  if (c.op == Op::kSparsePrefill) {
    d.indices.resize(size_t(c.s_q * c.topk));
    DistinctSampler sampler(c.s_kv);
    Rng rng(kSeedIndices);
    for (int64_t t = 0; t < c.s_q; ++t) sampler.draw(c.topk, rng, d.indices.data() + t * c.topk);
    return d;
  }

  d.lengths = request_lengths(c);
  int64_t total_pages = 0;
  d.max_blocks = 1;
  for (int32_t len : d.lengths) {
    total_pages += pages_for(len);
    d.max_blocks = std::max(d.max_blocks, pages_for(len));
  }
  d.num_blocks = std::max<int64_t>(total_pages, 1);

  std::vector<int32_t> permutation(static_cast<size_t>(total_pages));
  std::iota(permutation.begin(), permutation.end(), 0);
  Rng perm_rng(kSeedPagePermutation);
  for (int64_t i = total_pages - 1; i > 0; --i) {
    std::swap(permutation[size_t(i)], permutation[size_t(perm_rng.below(uint64_t(i + 1)))]);
  }
  d.block_table.assign(size_t(c.b * d.max_blocks), 0);
  int64_t next_page = 0;
  for (int64_t i = 0; i < c.b; ++i) {
    for (int64_t j = 0; j < pages_for(d.lengths[size_t(i)]); ++j) {
      d.block_table[size_t(i * d.max_blocks + j)] = permutation[size_t(next_page++)];
    }
  }

  if (c.op == Op::kSparseDecode) {
    d.indices.resize(size_t(c.b * c.s_q * c.topk));
    DistinctSampler sampler(c.s_k);
    Rng rng(kSeedIndices);
    std::vector<int32_t> positions(size_t(c.topk));
    for (int64_t i = 0; i < c.b; ++i) {
      const int32_t* row = d.block_table.data() + i * d.max_blocks;
      for (int64_t j = 0; j < c.s_q; ++j) {
        sampler.draw(c.topk, rng, positions.data());
        int32_t* out = d.indices.data() + (i * c.s_q + j) * c.topk;
        for (int64_t k = 0; k < c.topk; ++k) {
          const int32_t pos = positions[size_t(k)];
          out[k] = row[pos / kPageBlockSize] * int32_t(kPageBlockSize) + pos % int32_t(kPageBlockSize);
        }
      }
    }
  }
  return d;
}

TensorSizes tensor_sizes(const Case& c, const IndexData& index) {
  TensorSizes s;
  const int64_t rows = (c.op == Op::kSparsePrefill ? 1 : c.b) * c.s_q * c.h_q;  // query rows
  s.q = rows * c.d_qk;
  s.out = rows * c.d_v;
  s.lse = rows;
  switch (c.op) {
    case Op::kDenseDecode:
      if (c.fp8_kv) {
        s.kv_tokens = index.num_blocks * kPageBlockSize;
        s.kv_bytes = s.kv_tokens * kV32TokenBytes;
        break;
      }
      s.kv_values = index.num_blocks * kPageBlockSize * c.h_kv * c.d_qk;
      s.kv_bytes = s.kv_values * 2;
      break;
    case Op::kSparseDecode:
      s.kv_tokens = index.num_blocks * kPageBlockSize;
      s.kv_bytes = s.kv_tokens * kV32TokenBytes;
      break;
    case Op::kSparsePrefill:
      s.kv_values = c.s_kv * c.h_kv * c.d_qk;
      s.kv_bytes = s.kv_values * 2;
      s.max_logits = rows;
      break;
  }
  return s;
}

// ----- host values ------------------------------------------------------------------------

namespace {

// Runs fn(begin, end) over [0, count) in contiguous chunks on all cores.
// Each element depends only on its index, so the result does not depend on
// the number of threads.
// min_chunk keeps small jobs on one thread.
template <typename Fn>
void parallel_chunks(int64_t count, int64_t min_chunk, Fn fn) {
  const int64_t hardware = std::max<int64_t>(1, int64_t(std::thread::hardware_concurrency()));
  const int64_t threads = std::clamp<int64_t>(count / min_chunk, 1, hardware);
  const int64_t chunk = (count + threads - 1) / threads;
  std::vector<std::thread> workers;
  for (int64_t t = 1; t < threads; ++t) {
    workers.emplace_back(fn, std::min(count, t * chunk), std::min(count, (t + 1) * chunk));
  }
  fn(int64_t(0), std::min(count, chunk));
  for (std::thread& w : workers) w.join();
}

void fill_bf16_host(std::vector<uint16_t>* dst, int64_t count, uint64_t stream) {
  dst->resize(size_t(count));
  uint16_t* out = dst->data();
  parallel_chunks(count, int64_t(1) << 16, [=](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) out[i] = normal_bf16(stream, uint64_t(i));
  });
}

void encode_v32_pool_host(std::vector<uint8_t>* dst, int64_t tokens, uint64_t stream) {
  dst->resize(size_t(tokens * kV32TokenBytes));
  uint8_t* out = dst->data();
  parallel_chunks(tokens, 128, [=](int64_t begin, int64_t end) {
    uint16_t values[576];
    for (int64_t t = begin; t < end; ++t) {
      for (int d = 0; d < 576; ++d) values[d] = normal_bf16(stream, uint64_t(t * 576 + d));
      ref::encode_v32_token(values, out + t * kV32TokenBytes);
    }
  });
}

}  // namespace

HostWorkload make_host_workload(const Case& c) {
  HostWorkload hw;
  hw.shape = c;
  hw.index = make_index_data(c);
  const TensorSizes s = tensor_sizes(c, hw.index);
  fill_bf16_host(&hw.q, s.q, kStreamQ);
  if (v32_pool(c)) {
    encode_v32_pool_host(&hw.kv_fp8, s.kv_tokens, kStreamKvPool0);
  } else {
    fill_bf16_host(&hw.kv, s.kv_values, kStreamKvPool0);
  }
  const float nan = std::numeric_limits<float>::quiet_NaN();
  hw.out.assign(size_t(s.out), 0xFFFF);  // bf16 NaN
  hw.lse.assign(size_t(s.lse), nan);
  hw.max_logits.assign(size_t(s.max_logits), nan);
  return hw;
}

// ----- device values ------------------------------------------------------------------------

namespace {

__global__ void fill_bf16_kernel(uint16_t* dst, int64_t count, uint64_t stream) {
  const int64_t step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += step) {
    dst[i] = normal_bf16(stream, uint64_t(i));
  }
}

// One warp per V32 token: lane l quantizes NoPE dims 16l .. 16l+15 (tile
// l / 8 of four 128-dim tiles) and copies RoPE dims 512 + 2l, 513 + 2l.
// Mirrors ref::encode_v32_token; check_device_generator compares the bytes.
__global__ void encode_v32_kernel(uint8_t* dst, int64_t tokens, uint64_t stream) {
  const int lane = int(threadIdx.x) & 31;
  const int64_t warps = int64_t(gridDim.x) * (blockDim.x / 32);
  for (int64_t t = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32; t < tokens; t += warps) {
    float x[16];
    float amax = 0.0f;
#pragma unroll
    for (int k = 0; k < 16; ++k) {
      x[k] = bf16_bits_to_float(normal_bf16(stream, uint64_t(t * 576 + 16 * lane + k)));
      amax = fmaxf(amax, fabsf(x[k]));
    }
    // Eight lanes share a tile.
#pragma unroll
    for (int offset = 1; offset < 8; offset <<= 1) amax = fmaxf(amax, __shfl_xor_sync(0xFFFFFFFFu, amax, offset));
    // scale = 2^ceil(log2(max(amax / 448, 1e-4))), exactly: ratio = m * 2^e
    // with m in [0.5, 1), so the ceiling is e - 1 when m == 0.5, else e.
    int e = 0;
    const double m = frexp(fmax(double(amax) / 448.0, 1e-4), &e);
    const int exponent = m == 0.5 ? e - 1 : e;
    uint8_t* token = dst + t * kV32TokenBytes;
    // x / 2^exponent is exact; the e4m3 cast rounds to nearest even and never
    // saturates (|x| / scale <= 448 by the choice of scale).
    uint32_t words[4] = {0, 0, 0, 0};
#pragma unroll
    for (int k = 0; k < 16; ++k) {
      const uint32_t code = __nv_cvt_float_to_fp8(ldexpf(x[k], -exponent), __NV_SATFINITE, __NV_E4M3);
      words[k / 4] |= code << (8 * (k % 4));
    }
    *reinterpret_cast<uint4*>(token + 16 * lane) = make_uint4(words[0], words[1], words[2], words[3]);
    if (lane % 8 == 0) reinterpret_cast<float*>(token + 512)[lane / 8] = ldexpf(1.0f, exponent);
    const uint32_t rope_lo = normal_bf16(stream, uint64_t(t * 576 + 512 + 2 * lane));
    const uint32_t rope_hi = normal_bf16(stream, uint64_t(t * 576 + 513 + 2 * lane));
    reinterpret_cast<uint32_t*>(token + 528)[lane] = rope_lo | (rope_hi << 16);
  }
}

int grid_for(int64_t threads) {
  const int64_t blocks = (threads + 255) / 256;
  return int(std::min<int64_t>(std::max<int64_t>(blocks, 1), 132 * 16));
}

std::string cuda_message(const char* what, cudaError_t err) {
  return std::string(what) + ": " + cudaGetErrorString(err);
}

cudaError_t encode_v32_device(uint8_t* dst, int64_t tokens, uint64_t stream) {
  encode_v32_kernel<<<grid_for(tokens * 32), 256>>>(dst, tokens, stream);
  return cudaGetLastError();
}

template <typename T>
std::string upload(const std::vector<T>& host, DeviceBuffer* dst, const char* what) {
  cudaError_t err = dst->allocate(host.size() * sizeof(T));
  if (err != cudaSuccess) return cuda_message(what, err);
  if (!host.empty()) {
    err = cudaMemcpy(dst->get(), host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice);
    if (err != cudaSuccess) return cuda_message(what, err);
  }
  return "";
}

std::string allocate_outputs(const TensorSizes& s, DeviceWorkload* dw) {
  cudaError_t err = dw->out.allocate(size_t(s.out) * 2);
  if (err == cudaSuccess) err = dw->lse.allocate(size_t(s.lse) * 4);
  if (err == cudaSuccess) err = dw->max_logits.allocate(size_t(s.max_logits) * 4);
  return err == cudaSuccess ? "" : cuda_message("output allocation", err);
}

std::string upload_index(const IndexData& index, DeviceWorkload* dw) {
  std::string error = upload(index.block_table, &dw->block_table, "block table");
  if (error.empty()) error = upload(index.lengths, &dw->lengths, "lengths");
  if (error.empty()) error = upload(index.indices, &dw->indices, "indices");
  return error;
}

}  // namespace

cudaError_t fill_bf16_device(uint16_t* dst, int64_t count, uint64_t stream, cudaStream_t cuda_stream) {
  fill_bf16_kernel<<<grid_for(count), 256, 0, cuda_stream>>>(dst, count, stream);
  return cudaGetLastError();
}

std::string make_device_workload(const Case& c, const IndexData& index, int64_t num_pools,
                                 DeviceWorkload* dw) {
  const TensorSizes s = tensor_sizes(c, index);
  std::string error = upload_index(index, dw);
  if (!error.empty()) return error;
  cudaError_t err = dw->q.allocate(size_t(s.q) * 2);
  if (err == cudaSuccess) err = fill_bf16_device(dw->q.as<uint16_t>(), s.q, kStreamQ, nullptr);
  if (err != cudaSuccess) return cuda_message("q", err);
  dw->kv_pools.clear();
  dw->kv_pools.resize(size_t(num_pools));
  for (int64_t p = 0; p < num_pools; ++p) {
    DeviceBuffer& pool = dw->kv_pools[size_t(p)];
    err = pool.allocate(size_t(s.kv_bytes));
    if (err != cudaSuccess) return cuda_message("KV pool allocation", err);
    const uint64_t stream = kStreamKvPool0 + uint64_t(p);
    err = v32_pool(c) ? encode_v32_device(pool.as<uint8_t>(), s.kv_tokens, stream)
                      : fill_bf16_device(pool.as<uint16_t>(), s.kv_values, stream, nullptr);
    if (err != cudaSuccess) return cuda_message("KV pool fill", err);
  }
  error = allocate_outputs(s, dw);
  if (!error.empty()) return error;
  err = cudaDeviceSynchronize();
  return err == cudaSuccess ? "" : cuda_message("workload generation", err);
}

std::string upload_host_workload(const HostWorkload& hw, DeviceWorkload* dw) {
  std::string error = upload_index(hw.index, dw);
  if (error.empty()) error = upload(hw.q, &dw->q, "q");
  dw->kv_pools.clear();
  dw->kv_pools.resize(1);
  if (error.empty()) {
    error = v32_pool(hw.shape) ? upload(hw.kv_fp8, &dw->kv_pools[0], "kv") : upload(hw.kv, &dw->kv_pools[0], "kv");
  }
  if (error.empty()) error = allocate_outputs(tensor_sizes(hw.shape, hw.index), dw);
  return error;
}

// The generators and memsets run on the legacy default stream, which a
// non-blocking stream does not wait for: every producer below ends with a
// device-wide synchronization before the kernels read its results.

std::string poison_device_outputs(DeviceWorkload* dw) {
  for (DeviceBuffer* b : {&dw->out, &dw->lse, &dw->max_logits}) {
    const cudaError_t err = cudaMemset(b->get(), 0xFF, b->bytes());
    if (err != cudaSuccess) return cuda_message("poisoning outputs", err);
  }
  const cudaError_t err = cudaDeviceSynchronize();
  return err == cudaSuccess ? "" : cuda_message("poisoning outputs", err);
}

namespace {

template <typename T>
std::string compare_bytes(const std::vector<T>& host, const DeviceBuffer& device, const char* what) {
  std::vector<T> copy(host.size());
  const cudaError_t err = cudaMemcpy(copy.data(), device.get(), host.size() * sizeof(T), cudaMemcpyDeviceToHost);
  if (err != cudaSuccess) return cuda_message(what, err);
  for (size_t i = 0; i < host.size(); ++i) {
    if (copy[i] != host[i]) {
      return std::string(what) + ": GPU generator differs from the host one at element " + std::to_string(i) +
             " (host " + std::to_string(int64_t(host[i])) + ", GPU " + std::to_string(int64_t(copy[i])) + ")";
    }
  }
  return "";
}

}  // namespace

std::string check_device_generator(const HostWorkload& hw) {
  DeviceBuffer q;
  DeviceBuffer pool;
  cudaError_t err = q.allocate(hw.q.size() * 2);
  if (err == cudaSuccess) err = fill_bf16_device(q.as<uint16_t>(), int64_t(hw.q.size()), kStreamQ, nullptr);
  if (err == cudaSuccess) {
    if (v32_pool(hw.shape)) {
      err = pool.allocate(hw.kv_fp8.size());
      if (err == cudaSuccess) {
        err = encode_v32_device(pool.as<uint8_t>(), int64_t(hw.kv_fp8.size()) / kV32TokenBytes, kStreamKvPool0);
      }
    } else {
      err = pool.allocate(hw.kv.size() * 2);
      if (err == cudaSuccess) {
        err = fill_bf16_device(pool.as<uint16_t>(), int64_t(hw.kv.size()), kStreamKvPool0, nullptr);
      }
    }
  }
  if (err == cudaSuccess) err = cudaDeviceSynchronize();
  if (err != cudaSuccess) return cuda_message("generator check", err);
  std::string error = compare_bytes(hw.q, q, "q");
  if (error.empty()) {
    error = v32_pool(hw.shape) ? compare_bytes(hw.kv_fp8, pool, "V32 kv") : compare_bytes(hw.kv, pool, "kv");
  }
  return error;
}

}  // namespace flashmla::bench
