// Lets a pure function compile for the host (CPU tests, reference) and the
// device (kernels) from one definition.
#pragma once

#if defined(__CUDACC__)
#define FLASHMLA_HOST_DEVICE __host__ __device__
#else
#define FLASHMLA_HOST_DEVICE
#endif
