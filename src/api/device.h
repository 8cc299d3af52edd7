// The CUDA side of the API layer: which device owns a tensor, running on it
// and switching back, and turning runtime errors into a Status. Used by
// run() only; validate() never calls CUDA.
#pragma once

#include <cstdint>
#include <initializer_list>

#include <cuda_runtime_api.h>

#include "common/status_util.h"
#include "flashmla/status.h"

namespace flashmla::api {

// The device whose memory `data` is (device or managed memory); invalid
// argument naming `name` for host or unregistered memory.
Status device_of_pointer(const char* name, const void* data, int32_t* device);

struct NamedPointer {
  const char* name;
  const void* data;  // null: absent or empty, not checked
};

// Every non-null pointer lives on `device`, the device of `owner_name`.
Status check_on_device(std::initializer_list<NamedPointer> pointers, int32_t device,
                       const char* owner_name);

// Makes `device` current for the guard's lifetime and restores the caller's
// current device afterwards: the device is taken from the tensors, and the
// caller's state is left as it was (spec section 6).
class DeviceGuard {
 public:
  DeviceGuard() = default;
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;
  ~DeviceGuard();

  Status enter(int32_t device);

 private:
  int previous_ = -1;
  bool switched_ = false;
};

}  // namespace flashmla::api
