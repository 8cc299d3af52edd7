#include "timing.h"

#include <algorithm>

#include <cublas_v2.h>

#include "values.h"
#include "workloads.h"

namespace flashmla::bench {

double median(std::vector<double> values) {
  if (values.empty()) return 0.0;
  std::sort(values.begin(), values.end());
  const size_t mid = values.size() / 2;
  return values.size() % 2 == 1 ? values[mid] : 0.5 * (values[mid - 1] + values[mid]);
}

namespace {

std::string cuda_message(const char* what, cudaError_t err) {
  return std::string(what) + ": " + cudaGetErrorString(err);
}

// Events around `work`, repeated; microseconds per repetition.
template <typename Work>
std::string time_repeated(int repeats, cudaStream_t stream, Work work, std::vector<double>* us) {
  cudaEvent_t start = nullptr;
  cudaEvent_t stop = nullptr;
  cudaError_t err = cudaEventCreate(&start);
  if (err == cudaSuccess) err = cudaEventCreate(&stop);
  for (int r = 0; r < repeats && err == cudaSuccess; ++r) {
    err = cudaEventRecord(start, stream);
    if (err == cudaSuccess) err = work();
    if (err == cudaSuccess) err = cudaEventRecord(stop, stream);
    if (err == cudaSuccess) err = cudaEventSynchronize(stop);
    float ms = 0.0f;
    if (err == cudaSuccess) err = cudaEventElapsedTime(&ms, start, stop);
    if (err == cudaSuccess) us->push_back(double(ms) * 1e3);
  }
  if (start != nullptr) cudaEventDestroy(start);
  if (stop != nullptr) cudaEventDestroy(stop);
  return err == cudaSuccess ? "" : cuda_message("timing", err);
}

}  // namespace

std::string time_calls_in_graph(int64_t n, const EnqueueCall& call, cudaStream_t stream,
                                GraphTiming* timing, Status* call_status) {
  *call_status = Status{};
  cudaGraph_t graph = nullptr;
  cudaError_t err = cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal);
  if (err != cudaSuccess) return cuda_message("begin capture", err);
  for (int64_t k = 0; k < n; ++k) {
    const Status status = call(k, stream);
    if (!status.ok()) {
      cudaStreamEndCapture(stream, &graph);
      if (graph != nullptr) cudaGraphDestroy(graph);
      cudaGetLastError();
      *call_status = status;
      return "";
    }
  }
  err = cudaStreamEndCapture(stream, &graph);
  if (err != cudaSuccess) return cuda_message("end capture", err);
  cudaGraphExec_t exec = nullptr;
  err = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);
  if (err != cudaSuccess) return cuda_message("graph instantiate", err);

  // One warm replay (first-touch, instruction cache, clocks), then the timed ones.
  err = cudaGraphLaunch(exec, stream);
  if (err == cudaSuccess) err = cudaStreamSynchronize(stream);
  std::string error = err == cudaSuccess ? "" : cuda_message("warm replay", err);
  timing->replay_us.clear();
  if (error.empty()) {
    error = time_repeated(kTimedReplays, stream, [&] { return cudaGraphLaunch(exec, stream); }, &timing->replay_us);
  }
  cudaGraphExecDestroy(exec);
  if (!error.empty()) return error;
  timing->calls = n;
  timing->per_call_us = median(timing->replay_us) / double(n);
  return "";
}

namespace {

std::string measure_copy(cudaStream_t stream, Ceilings* c) {
  constexpr size_t kBytes = size_t(2) << 30;  // 2 GiB
  DeviceBuffer src;
  DeviceBuffer dst;
  cudaError_t err = src.allocate(kBytes);
  if (err == cudaSuccess) err = dst.allocate(kBytes);
  if (err == cudaSuccess) err = cudaMemsetAsync(src.get(), 0x3C, kBytes, stream);
  if (err == cudaSuccess) err = cudaMemsetAsync(dst.get(), 0, kBytes, stream);
  auto copy = [&] { return cudaMemcpyAsync(dst.get(), src.get(), kBytes, cudaMemcpyDeviceToDevice, stream); };
  if (err == cudaSuccess) err = copy();  // warm
  if (err == cudaSuccess) err = cudaStreamSynchronize(stream);
  if (err != cudaSuccess) return cuda_message("copy ceiling", err);
  const std::string error = time_repeated(7, stream, copy, &c->copy_runs_us);
  if (!error.empty()) return error;
  c->copy_gbps = 2.0 * double(kBytes) / (median(c->copy_runs_us) * 1e-6) / 1e9;
  return "";
}

std::string measure_gemm(cudaStream_t stream, Ceilings* c) {
  constexpr int kN = 8192;
  constexpr int64_t kElems = int64_t(kN) * kN;
  DeviceBuffer a;
  DeviceBuffer b;
  DeviceBuffer d;
  cudaError_t err = a.allocate(size_t(kElems) * 2);
  if (err == cudaSuccess) err = b.allocate(size_t(kElems) * 2);
  if (err == cudaSuccess) err = d.allocate(size_t(kElems) * 2);
  // Realistic operands (zeros would flatter the power-limited clock).
  if (err == cudaSuccess) err = fill_bf16_device(a.as<uint16_t>(), kElems, kStreamGemm, stream);
  if (err == cudaSuccess) err = fill_bf16_device(b.as<uint16_t>(), kElems, kStreamGemm + 1, stream);
  if (err == cudaSuccess) err = cudaStreamSynchronize(stream);
  if (err != cudaSuccess) return cuda_message("GEMM ceiling", err);

  cublasHandle_t handle = nullptr;
  if (cublasCreate(&handle) != CUBLAS_STATUS_SUCCESS) return "GEMM ceiling: cublasCreate failed";
  cublasSetStream(handle, stream);
  const float alpha = 1.0f;
  const float beta = 0.0f;
  cublasStatus_t blas = CUBLAS_STATUS_SUCCESS;
  auto gemm = [&] {
    blas = cublasGemmEx(handle, CUBLAS_OP_N, CUBLAS_OP_N, kN, kN, kN, &alpha, a.get(), CUDA_R_16BF, kN, b.get(),
                        CUDA_R_16BF, kN, &beta, d.get(), CUDA_R_16BF, kN, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    return blas == CUBLAS_STATUS_SUCCESS ? cudaSuccess : cudaErrorUnknown;
  };
  std::string error;
  for (int warm = 0; warm < 3 && blas == CUBLAS_STATUS_SUCCESS; ++warm) gemm();
  err = cudaStreamSynchronize(stream);
  if (blas != CUBLAS_STATUS_SUCCESS) {
    error = std::string("GEMM ceiling: cublasGemmEx failed: ") + cublasGetStatusString(blas);
  } else if (err != cudaSuccess) {
    error = cuda_message("GEMM ceiling", err);
  } else {
    error = time_repeated(10, stream, gemm, &c->gemm_runs_us);
    if (error.empty()) {
      c->gemm_tflops = 2.0 * double(kN) * kN * kN / (median(c->gemm_runs_us) * 1e-6) / 1e12;
    } else if (blas != CUBLAS_STATUS_SUCCESS) {
      error = std::string("GEMM ceiling: cublasGemmEx failed: ") + cublasGetStatusString(blas);
    }
  }
  cublasDestroy(handle);
  return error;
}

}  // namespace

Ceilings measure_ceilings(cudaStream_t stream) {
  Ceilings c;
  std::string error = measure_copy(stream, &c);
  const std::string gemm_error = measure_gemm(stream, &c);
  if (!gemm_error.empty()) error += (error.empty() ? "" : "; ") + gemm_error;
  c.error = error;
  return c;
}

}  // namespace flashmla::bench
