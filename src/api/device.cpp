// get_device_info, check_device_supported and the device plumbing of run().
#include "api/device.h"

#include <cstring>

#include "api/check.h"
#include "flashmla/flashmla.h"

namespace flashmla {
namespace api {
namespace {

unsigned long long address_of(const void* p) {
  return static_cast<unsigned long long>(reinterpret_cast<uintptr_t>(p));
}

const char* memory_type_name(cudaMemoryType type) {
  switch (type) {
    case cudaMemoryTypeUnregistered: return "unregistered host memory";
    case cudaMemoryTypeHost: return "pinned host memory";
    case cudaMemoryTypeDevice: return "device memory";
    case cudaMemoryTypeManaged: return "managed memory";
  }
  return "memory of an unknown type";
}

Status check_device_index(int32_t device) {
  int count = 0;
  const cudaError_t error = cudaGetDeviceCount(&count);
  if (error != cudaSuccess) return make_cuda_status("cudaGetDeviceCount", error);
  if (device < 0 || device >= count) {
    return invalid_argument("device: expected 0..%d (the CUDA devices present), got %d", count - 1,
                            device);
  }
  return ok_status();
}

}  // namespace

Status device_of_pointer(const char* name, const void* data, int32_t* device) {
  cudaPointerAttributes attributes{};
  const cudaError_t error = cudaPointerGetAttributes(&attributes, data);
  if (error != cudaSuccess) return make_cuda_status("cudaPointerGetAttributes", error);
  if (attributes.type != cudaMemoryTypeDevice && attributes.type != cudaMemoryTypeManaged) {
    return invalid_argument("%s: expected device memory, got %s (%#llx)", name,
                            memory_type_name(attributes.type), address_of(data));
  }
  *device = attributes.device;
  return ok_status();
}

Status check_on_device(std::initializer_list<NamedPointer> pointers, int32_t device,
                       const char* owner_name) {
  for (const NamedPointer& pointer : pointers) {
    if (pointer.data == nullptr) continue;
    int32_t pointer_device = -1;
    FLASHMLA_TRY(device_of_pointer(pointer.name, pointer.data, &pointer_device));
    if (pointer_device != device) {
      return invalid_argument("%s: expected memory of device %d (the device of %s), got device %d",
                              pointer.name, device, owner_name, pointer_device);
    }
  }
  return ok_status();
}

DeviceGuard::~DeviceGuard() {
  // Failure here cannot be reported; the previous device was valid when read.
  if (switched_) cudaSetDevice(previous_);
}

Status DeviceGuard::enter(int32_t device) {
  int current = -1;
  cudaError_t error = cudaGetDevice(&current);
  if (error != cudaSuccess) return make_cuda_status("cudaGetDevice", error);
  if (current == device) return ok_status();
  error = cudaSetDevice(device);
  if (error != cudaSuccess) return make_cuda_status("cudaSetDevice", error);
  previous_ = current;
  switched_ = true;
  return ok_status();
}

}  // namespace api

Status get_device_info(int32_t device, DeviceInfo* info) {
  if (info == nullptr) return api::invalid_argument("info: expected a non-null pointer, got nullptr");
  FLASHMLA_TRY(api::check_device_index(device));
  cudaDeviceProp properties{};
  const cudaError_t error = cudaGetDeviceProperties(&properties, device);
  if (error != cudaSuccess) return make_cuda_status("cudaGetDeviceProperties", error);
  *info = DeviceInfo{};
  info->device = device;
  info->sm_count = properties.multiProcessorCount;
  info->cc_major = properties.major;
  info->cc_minor = properties.minor;
  info->smem_per_block_optin = int64_t(properties.sharedMemPerBlockOptin);
  info->l2_bytes = properties.l2CacheSize;
  info->global_memory_bytes = int64_t(properties.totalGlobalMem);
  static_assert(sizeof(info->name) >= sizeof(properties.name), "DeviceInfo::name holds the CUDA name");
  std::memcpy(info->name, properties.name, sizeof(properties.name));
  info->name[sizeof(info->name) - 1] = '\0';
  return api::ok_status();
}

Status check_device_supported(int32_t device) {
  FLASHMLA_TRY(api::check_device_index(device));
  // Attributes, not cudaGetDeviceProperties: run() calls this every time and
  // attribute queries are cheap.
  int major = 0;
  int minor = 0;
  cudaError_t error = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
  if (error != cudaSuccess) return make_cuda_status("cudaDeviceGetAttribute", error);
  error = cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device);
  if (error != cudaSuccess) return make_cuda_status("cudaDeviceGetAttribute", error);
  if (major == 9 && minor == 0) return api::ok_status();
  return api::not_supported(
      "device %d: expected compute capability 9.0 (the kernels are built for sm_90a), got %d.%d",
      device, major, minor);
}

}  // namespace flashmla
