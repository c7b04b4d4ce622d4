// SPDX-License-Identifier: MIT
// A provided-buffer ring for multishot recv: `count` buffers of `size` bytes that the kernel
// picks from as data arrives, so an idle connection holds no receive buffer.
//
// Consumed whole (each receive takes the next buffer) or, where the kernel has it (6.12),
// incrementally: the kernel fills the buffer at the ring's head piece by piece, one receive
// after another, whichever connection it is for, and says in each completion whether it goes
// on filling that buffer (IORING_CQE_F_BUF_MORE). Then several chunks share a buffer, and it
// goes back to the ring once the kernel has finished with it and every chunk of it has been
// released: this counts both, per buffer.
//
// liburing 2.3 has io_uring_register_buf_ring but not io_uring_setup_buf_ring (2.4), so the
// ring memory is mapped and registered here by hand. Only uring_backend uses this.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
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
    /// them as buffer group `group` of `ring`, for incremental consumption if `incremental`
    /// and the kernel takes it (incremental() says).
    result<void> setup(io_uring& ring, std::uint16_t group, unsigned count, unsigned size,
                       bool incremental);

    std::byte* memory() const noexcept { return memory_; }
    bool incremental() const noexcept { return incremental_; }
    /// A recv completion carried buffer `id` (IORING_CQE_F_BUFFER) with `res` bytes; `more`:
    /// the kernel goes on filling it (IORING_CQE_F_BUF_MORE). Returns where the bytes start
    /// in the buffer; a chunk with them is released with release(id).
    std::uint32_t filled(std::uint16_t id, std::int32_t res, bool more) noexcept;
    /// A chunk of buffer `id` is done with; the last one hands the buffer back to the kernel
    /// (once the kernel has finished filling it).
    void release(std::uint16_t id) noexcept;
    std::uint32_t free_count() const noexcept { return free_; }

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
    bool incremental_ = false;
    struct usage {
        std::uint32_t filled = 0;  // incremental: bytes the kernel put in it since handed over
        std::uint32_t chunks = 0;  // chunks of it not released yet
        bool kernel = true;        // in the ring: the kernel may still write to it
    };
    std::unique_ptr<usage[]> usage_;
    void hand_over(std::uint16_t id) noexcept;
};

}  // namespace ringchat::detail
