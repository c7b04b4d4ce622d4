// SPDX-License-Identifier: MIT
// The epoll backend: non-blocking syscalls tried at once, readiness waited for only on
// EAGAIN, deadlines in a binary heap. With epoll_backend.cpp, the only file that includes
// <sys/epoll.h>.
//
// Each fd is registered once (EPOLLIN|EPOLLOUT|EPOLLRDHUP|EPOLLET) and keeps a readiness bit
// and a FIFO of parked requests per direction. Multishot operations are emulated: they stay
// parked and complete once per accepted socket or received buffer, as io_uring's do.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "backend.hpp"
#include "result.hpp"

struct epoll_event;  // <sys/epoll.h>, which only epoll_backend.cpp includes

namespace ringchat {

class epoll_backend final : public backend {
public:
    static result<std::unique_ptr<backend>> create(const reactor_options& options);
    ~epoll_backend() override;

    backend_kind kind() const noexcept override { return backend_kind::epoll; }
    std::string_view name() const noexcept override { return "epoll"; }
    bool start(io_request& r) noexcept override;
    void cancel(io_request& r) noexcept override;
    void poll(std::chrono::nanoseconds timeout, ready_queue& ready) override;
    void wake() noexcept override;
    void forget(int fd) noexcept override;
    /// The buffer small receives are filling counts as free (it has room).
    std::uint32_t free_buffers() const noexcept override {
        return static_cast<std::uint32_t>(free_.size()) + (filling_ != no_buffer ? 1 : 0);
    }
    bool incremental_buffers() const noexcept override { return incremental_; }

protected:
    void give_back(std::uint16_t id) noexcept override;

private:
    using parked_queue = intrusive_queue<io_request, &io_request::parked_link>;
    struct fd_state {
        bool registered = false;
        bool readable = false;
        bool writable = false;
        bool queued = false;  // in retry_
        bool hung_up = false;  // an event said EPOLLRDHUP/HUP/ERR: an EOF or error may wait
        bool bulk = false;     // the last recv filled all its buffers: gather several next
        // FIFOs: the front is tried first; a multishot request stays there until it ends.
        parked_queue readers;
        parked_queue writers;
    };
    epoll_backend() = default;

    fd_state& state_of(int fd);
    bool ensure_registered(int fd, fd_state& st) noexcept;
    void park(io_request& r, fd_state& st) noexcept;
    void unpark(io_request& r) noexcept;
    void schedule_retry(int fd, fd_state& st) noexcept;
    void try_direction(int fd, bool reading, ready_queue& ready) noexcept;
    /// What one recv of a recv_multishot request did: nothing was there (EAGAIN), bytes
    /// came (a completion per buffer), or the request ended (end of stream, an error,
    /// ENOBUFS).
    enum class received : std::uint8_t { nothing, data, ended };
    /// One recv of a recv_multishot request into pool buffers.
    received receive(io_request& r, fd_state& st, bool& is_ready, ready_queue& ready) noexcept;
    /// incremental_: a small read into the rest of buffer filling_ (a buffer taken from
    /// free_ first if none is being filled).
    received receive_shared(io_request& r, fd_state& st, bool& is_ready,
                            ready_queue& ready) noexcept;
    /// After a recv into `room` bytes that returned n: nothing (EAGAIN), the request ended
    /// (completed with the end of stream or the error), or data (and then whether the next
    /// read gathers several buffers, and whether the socket is drained).
    received after_read(io_request& r, fd_state& st, bool& is_ready, ssize_t n,
                        std::size_t room, ready_queue& ready) noexcept;
    void complete(io_request& r, std::int32_t res, std::uint32_t flags,
                  ready_queue& ready) noexcept;
    /// epoll_pwait2 (nanosecond timeouts), or epoll_wait where the kernel lacks it.
    int wait(::epoll_event* events, int size, std::chrono::nanoseconds timeout);

    void heap_push(io_request& r);
    void heap_remove(io_request& r) noexcept;
    void heap_swap(std::size_t a, std::size_t b) noexcept;
    void heap_sift(std::size_t i) noexcept;

    int epfd_ = -1;
    int wake_fd_ = -1;
    std::vector<fd_state> fds_;
    std::vector<io_request*> heap_{nullptr};  // 1-based; heap_index 0 means "not in it"
    std::vector<int> retry_;
    std::vector<std::uint16_t> free_;
    // incremental_ (reactor_options::incremental_buffers, as io_uring's IOU_PBUF_RING_INC):
    // small receives fill buffer filling_ one after another, from filling_used_; a buffer
    // goes back to free_ once its chunks are all released (chunks_) and it is not filling_.
    static constexpr std::uint16_t no_buffer = UINT16_MAX;
    bool incremental_ = false;
    std::uint16_t filling_ = no_buffer;
    std::uint32_t filling_used_ = 0;
    // Per buffer: chunks handed out, not released yet. 16 bits hold them: a buffer stops
    // being filled with under an eighth of it left, so it has at most 7/8 of 64 KiB chunks.
    std::vector<std::uint16_t> chunks_;
    std::size_t memory_bytes_ = 0;
    unsigned inline_budget_ = 64;  // reset by every poll()
    bool has_pwait2_ = true;       // false once epoll_pwait2 said ENOSYS
};

}  // namespace ringchat
