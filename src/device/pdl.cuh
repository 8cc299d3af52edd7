// Programmatic dependent launch (PDL): a kernel launched with
// cudaLaunchAttributeProgrammaticStreamSerialization may start before the
// previous kernel in the stream finishes; it must wait before reading that
// kernel's results.
#pragma once

namespace flashmla::device {

// PTX ISA "Parallel Synchronization and Communication Instructions: griddepcontrol"
// (.wait): blocks until every prerequisite grid has completed and its memory
// operations are visible. A no-op when the kernel was launched without PDL.
__device__ __forceinline__ void grid_dependency_wait() {
  asm volatile("griddepcontrol.wait;" ::: "memory");
}

// PTX ISA "Parallel Synchronization and Communication Instructions: griddepcontrol"
// (.launch_dependents): lets the dependent grid be scheduled once every CTA
// of this grid has executed it (or exited). It orders nothing: the dependent
// still calls grid_dependency_wait before reading this grid's output.
__device__ __forceinline__ void grid_dependency_launch_dependents() {
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
}

}  // namespace flashmla::device
