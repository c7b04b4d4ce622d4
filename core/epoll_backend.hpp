// SPDX-License-Identifier: MIT
// The epoll backend: non-blocking syscalls tried at once, readiness waited for only on
// EAGAIN, deadlines in a binary heap. With epoll_backend.cpp, the only file that includes
// <sys/epoll.h>.
//
// Each fd is registered once (EPOLLIN|EPOLLOUT|EPOLLRDHUP|EPOLLET) and keeps a readiness bit
// and a FIFO of parked requests per direction. Multishot operations are emulated: they stay
// parked and complete once per accepted socket or received buffer, as io_uring's do.
#pragma once

#include <chrono>
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
    std::uint32_t free_buffers() const noexcept override {
        return static_cast<std::uint32_t>(free_.size());
    }

protected:
    void give_back(std::uint16_t id) noexcept override { free_.push_back(id); }

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
    std::size_t memory_bytes_ = 0;
    unsigned inline_budget_ = 64;  // reset by every poll()
    bool has_pwait2_ = true;       // false once epoll_pwait2 said ENOSYS
};

}  // namespace ringchat
