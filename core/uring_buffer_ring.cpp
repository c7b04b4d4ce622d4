// SPDX-License-Identifier: MIT
// The provided-buffer ring, registered by hand (liburing 2.3 lacks io_uring_setup_buf_ring).
#include "uring_buffer_ring.hpp"

#include <sys/mman.h>

#include <cerrno>

namespace ringchat::detail {

namespace {
// IOU_PBUF_RING_INC (Linux 6.12), written here by hand: liburing 2.3's headers predate it.
constexpr std::uint16_t pbuf_ring_inc = 2;
}  // namespace

void uring_buffer_ring::reset() noexcept {
    if (br_ != nullptr) {
        if (ring_ != nullptr) {
            io_uring_unregister_buf_ring(ring_, group_);
        }
        munmap(br_, ring_bytes_);
        br_ = nullptr;
    }
    if (memory_ != nullptr) {
        munmap(memory_, memory_bytes_);
        memory_ = nullptr;
    }
    ring_ = nullptr;
}

result<void> uring_buffer_ring::setup(io_uring& ring, std::uint16_t group, unsigned count,
                                      unsigned size, bool incremental) {
    if (count == 0 || count > 32768 || (count & (count - 1)) != 0) {
        return std::error_code(EINVAL, std::system_category());
    }
    // liburing 2.3: what io_uring_setup_buf_ring does in 2.4 — page-aligned ring memory
    // (mmap gives that), io_uring_buf_ring_init, then IORING_REGISTER_PBUF_RING (5.19).
    ring_bytes_ = std::size_t{count} * sizeof(io_uring_buf);
    void* mem = mmap(nullptr, ring_bytes_, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE,
                     -1, 0);
    if (mem == MAP_FAILED) {
        return std::error_code(errno, std::system_category());
    }
    br_ = static_cast<io_uring_buf_ring*>(mem);
    io_uring_buf_ring_init(br_);

    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<std::uint64_t>(br_);
    reg.ring_entries = count;
    reg.bgid = group;
    // A chunk's offset in its buffer travels in 16 bits (io_request::buffer_offset).
    incremental_ = incremental && size <= 65536;
    // The flags field; liburing 2.3 still calls it `pad`.
    reg.pad = incremental_ ? pbuf_ring_inc : 0;
    int rc = io_uring_register_buf_ring(&ring, &reg, 0);
    if (rc == -EINVAL && incremental_) {
        incremental_ = false;  // a kernel before 6.12: the flag is unknown to it
        reg.pad = 0;
        rc = io_uring_register_buf_ring(&ring, &reg, 0);
    }
    if (rc < 0) {
        munmap(br_, ring_bytes_);
        br_ = nullptr;
        return errno_code(rc);
    }
    ring_ = &ring;
    group_ = group;
    count_ = count;
    size_ = size;

    // Untouched pages cost no memory: the pool's RSS grows only with the buffers in use.
    memory_bytes_ = std::size_t{count} * size;
    mem = mmap(nullptr, memory_bytes_, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1,
               0);
    if (mem == MAP_FAILED) {
        return std::error_code(errno, std::system_category());
    }
    memory_ = static_cast<std::byte*>(mem);
    usage_ = std::make_unique<usage[]>(count);
    const int mask = io_uring_buf_ring_mask(count);
    for (unsigned id = 0; id < count; ++id) {
        io_uring_buf_ring_add(br_, memory_ + std::size_t{id} * size, size,
                              static_cast<unsigned short>(id), mask, static_cast<int>(id));
    }
    io_uring_buf_ring_advance(br_, static_cast<int>(count));
    free_ = count;
    return {};
}

std::uint32_t uring_buffer_ring::filled(std::uint16_t id, std::int32_t res, bool more) noexcept {
    usage& u = usage_[id];
    if (!incremental_) {
        // The receive took the whole buffer, for itself.
        --free_;
        if (res <= 0) {
            hand_over(id);  // no bytes in it, so no chunk to release it later: straight back
        } else {
            u = {0, 1, false};  // one chunk, from the start
        }
        return 0;
    }
    if (res <= 0) {
        // TRICKY: no bytes, so nothing of the buffer was consumed and it stays at the ring's
        // head, whatever the flags say: kernels without upstream commit 3ecd3e03144b left
        // IORING_CQE_F_BUF_MORE off here, as if the buffer were finished.
        return u.filled;
    }
    const std::uint32_t at = u.filled;
    u.filled += static_cast<std::uint32_t>(res);
    ++u.chunks;
    if (!more) {
        u.kernel = false;  // full: the kernel has moved on to the next buffer
        --free_;
    }
    return at;
}

void uring_buffer_ring::release(std::uint16_t id) noexcept {
    usage& u = usage_[id];
    if (--u.chunks > 0 || u.kernel) {
        return;  // other chunks of it are still held, or the kernel is still filling it
    }
    hand_over(id);
}

void uring_buffer_ring::hand_over(std::uint16_t id) noexcept {
    usage_[id] = {};
    io_uring_buf_ring_add(br_, memory_ + std::size_t{id} * size_, size_, id,
                          io_uring_buf_ring_mask(count_), 0);
    io_uring_buf_ring_advance(br_, 1);
    ++free_;
}

}  // namespace ringchat::detail
