// SPDX-License-Identifier: MIT
// A provided-buffer ring for multishot recv: `count` buffers of `size` bytes that the kernel
// picks from as data arrives, so an idle connection holds no receive buffer.
//
// liburing 2.3 has io_uring_register_buf_ring but not io_uring_setup_buf_ring (2.4), so the
// ring memory is mapped and registered here by hand. Only uring_backend uses this.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include <liburing.h>

#include "result.hpp"

namespace ringchat::detail {

class uring_buffer_ring {
public:
    uring_buffer_ring() = default;
    uring_buffer_ring(const uring_buffer_ring&) = delete;
    uring_buffer_ring& operator=(const uring_buffer_ring&) = delete;
    ~uring_buffer_ring() { reset(); }
    /// Unregisters and unmaps; the ring must still be alive.
    void reset() noexcept;

    /// Maps `count` (a power of two, at most 32768) buffers of `size` bytes and registers
    /// them as buffer group `group` of `ring`.
    result<void> setup(io_uring& ring, std::uint16_t group, unsigned count, unsigned size);

    std::byte* memory() const noexcept { return memory_; }
    /// Hands buffer `id` back to the kernel.
    void release(std::uint16_t id) noexcept;
    std::uint32_t free_count() const noexcept { return free_; }
    /// The kernel filled a buffer (one recv completion with IORING_CQE_F_BUFFER).
    void taken() noexcept { --free_; }

private:
    io_uring* ring_ = nullptr;
    io_uring_buf_ring* br_ = nullptr;
    std::byte* memory_ = nullptr;
    std::size_t ring_bytes_ = 0;
    std::size_t memory_bytes_ = 0;
    unsigned count_ = 0;
    unsigned size_ = 0;
    std::uint16_t group_ = 0;
    std::uint32_t free_ = 0;
};

}  // namespace ringchat::detail
