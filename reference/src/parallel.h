// A tiny parallel-for: the reference also checks benchmark-sized cases
// (b = 128, 8k keys), which take minutes on one core in fp64.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

namespace flashmla::ref {

// Calls fn(u) for every u in [0, num_units), each exactly once, on up to
// hardware_concurrency threads. Units must write disjoint memory.
// `work_per_unit` (rough multiply-adds) keeps small cases single-threaded,
// where starting threads would cost more than the work.
template <typename Fn>
void parallel_for(int64_t num_units, double work_per_unit, Fn fn) {
  const int64_t kMinWorkPerThread = 1 << 20;
  const int64_t hardware = std::max<int64_t>(1, std::thread::hardware_concurrency());
  const int64_t by_work = int64_t(double(num_units) * work_per_unit / double(kMinWorkPerThread));
  const int64_t num_threads = std::clamp<int64_t>(std::min(by_work, num_units), 1, hardware);
  if (num_threads <= 1) {
    for (int64_t u = 0; u < num_units; ++u) fn(u);
    return;
  }
  std::atomic<int64_t> next{0};
  auto worker = [&] {
    for (int64_t u = next.fetch_add(1); u < num_units; u = next.fetch_add(1)) fn(u);
  };
  std::vector<std::thread> threads;
  for (int64_t t = 1; t < num_threads; ++t) threads.emplace_back(worker);
  worker();
  for (std::thread& thread : threads) thread.join();
}

}  // namespace flashmla::ref
