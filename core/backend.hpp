// SPDX-License-Identifier: MIT
// The seam between the reactor and a kernel interface (io_uring or epoll).
//
// A backend starts io_requests, cancels them, and in poll() submits what is pending, waits
// and moves the waiters of completed requests onto the ready queue; the reactor resumes them
// after the harvest. Both backends have the same operations, results and error codes, so
// code above this file never names one. This header includes no kernel header.
#pragma once

#include <chrono>
#include <coroutine>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <span>
#include <string_view>
#include <vector>

#include "intrusive_list.hpp"
#include "io_request.hpp"

namespace ringchat {

enum class backend_kind : std::uint8_t { uring, epoll, automatic };

std::string_view to_string(backend_kind kind) noexcept;
/// Parses "uring" | "io_uring" | "epoll" | "auto" | "automatic"; false when unknown.
bool parse_backend_kind(std::string_view text, backend_kind& out) noexcept;

/// Waiters to resume after the harvest, in completion order.
using ready_queue = std::vector<std::coroutine_handle<>>;

struct reactor_options {
    backend_kind kind = backend_kind::automatic;
    unsigned queue_depth = 4096;        ///< io_uring SQ entries (CQ gets four times as many)
    unsigned buffer_count = 1024;       ///< provided receive buffers (a power of two)
    unsigned buffer_size = 16 * 1024;   ///< bytes in each
    /// Provided buffers are consumed in pieces, each receive taking only the bytes it brings,
    /// so the small receives of many connections share one buffer's pages instead of each
    /// touching a buffer of its own. io_uring: the kernel does it (IOU_PBUF_RING_INC, Linux
    /// 6.12); epoll: small reads go into the rest of the buffer the last one filled. Where
    /// the kernel refuses it (or buffer_size is over 64 KiB, or buffer_count over 32768) each
    /// receive takes a whole buffer, with a log line. RINGCHAT_INCREMENTAL_BUFFERS=0 turns it
    /// off (to compare).
    bool incremental_buffers = true;
    /// io_uring: the ring's own descriptor registered with it (io_uring_register_ring_fd,
    /// Linux 5.18), so that each io_uring_enter skips looking the descriptor up. Where the
    /// kernel refuses it, the plain descriptor, with a log line. Like the ring (with
    /// SINGLE_ISSUER), valid in the thread that made the reactor only.
    /// RINGCHAT_REGISTERED_RING=0 turns it off (to compare).
    bool registered_ring_fd = true;
    /// io_uring, Linux 6.12: a wait for completions that has one goes on up to this long for
    /// more (up to min_wait_batch), so that a busy server wakes once for several instead of
    /// once for each. It adds up to that much latency where load is light: 0 (the default)
    /// waits for the first completion only. Ignored, with a log line, where the kernel lacks
    /// it (IORING_FEAT_MIN_TIMEOUT). RINGCHAT_MIN_WAIT_US=N sets it.
    std::chrono::microseconds min_wait{0};
    unsigned min_wait_batch = 32;
    /// How long a graceful stop (reactor::stop()) lets work in flight finish before it
    /// cancels what is left.
    std::chrono::nanoseconds grace = std::chrono::seconds(10);
    /// RINGCHAT_BACKEND=uring|epoll|auto overrides `kind`, RINGCHAT_INCREMENTAL_BUFFERS=0|1
    /// `incremental_buffers`, RINGCHAT_REGISTERED_RING=0|1 `registered_ring_fd`,
    /// RINGCHAT_MIN_WAIT_US=N `min_wait` (read here, and only here).
    static reactor_options from_env(reactor_options base);
    static reactor_options from_env() { return from_env(reactor_options()); }
};

class backend {
public:
    virtual ~backend() = default;
    virtual backend_kind kind() const noexcept = 0;
    virtual std::string_view name() const noexcept = 0;

    /// Starts `r`. Returns false when `r` completed at once (r.res is set; resume now).
    virtual bool start(io_request& r) noexcept = 0;
    /// Asks `r` to end early. It still completes exactly once, with -ECANCELED.
    virtual void cancel(io_request& r) noexcept = 0;
    /// Submits pending work, waits up to `timeout` (or until wake()), and queues the waiters
    /// of completed requests on `ready`.
    virtual void poll(std::chrono::nanoseconds timeout, ready_queue& ready) = 0;
    /// Makes a poll() in progress (on another thread, or in a signal handler) return.
    virtual void wake() noexcept = 0;
    /// Makes `target`'s poll() return, from this backend's own thread (a reactor_group's
    /// message): target.wake() (an eventfd write) unless this backend has a cheaper way;
    /// io_uring sends an IORING_OP_MSG_RING with its next submission.
    virtual void wake_peer(backend& target) noexcept { target.wake(); }
    /// Tells the backend `fd` is about to be closed outside an io_request.
    virtual void forget(int fd) noexcept = 0;

    /// The memory of provided buffer `id` (filled by a recv_multishot completion).
    std::span<std::byte> buffer(std::uint16_t id) noexcept {
        return {buffer_memory_ + std::size_t{id} * buffer_size_, buffer_size_};
    }
    std::uint32_t buffer_size() const noexcept { return buffer_size_; }
    /// Gives provided buffer `id` back to the pool once its data is consumed. Receivers
    /// waiting for a buffer are told by serve_buffer_waiters().
    void release_buffer(std::uint16_t id) noexcept { give_back(id); }
    /// Someone whose multishot recv ended with ENOBUFS; notify() runs when a buffer is free
    /// and says whether it receives again now (true) or later (its reader is not waiting).
    struct buffer_waiter {
        bool (*notify)(buffer_waiter&) noexcept = nullptr;
        list_hook<buffer_waiter> link;  ///< in the backend's FIFO of waiters
        void* owner = nullptr;
    };
    /// Queues `w` (at the back; nothing if it is queued already).
    void wait_for_buffer(buffer_waiter& w) noexcept;
    /// Takes `w` out of the queue, if it is there: O(1).
    void stop_waiting_for_buffer(buffer_waiter& w) noexcept;
    /// Before each poll: notifies waiters, first come first served, until as many receive
    /// again as there are free buffers.
    void serve_buffer_waiters() noexcept;
    /// How many provided buffers are free now (with incremental_buffers, the one being
    /// filled counts as free).
    virtual std::uint32_t free_buffers() const noexcept = 0;
    /// Receives share provided buffers (reactor_options::incremental_buffers, in effect).
    virtual bool incremental_buffers() const noexcept { return false; }
    /// io_uring's ring descriptor is registered (reactor_options::registered_ring_fd, in
    /// effect).
    virtual bool registered_ring_fd() const noexcept { return false; }

    /// Cancels every request in flight (reactor::stop()).
    void cancel_all() noexcept;
    /// Cancels the requests in flight marked cancel_on_stop (a graceful stop's first step).
    void cancel_on_stop() noexcept;
    /// Cancels `r` and waits for its final completion without resuming anyone: for owners
    /// destroyed while `r` is in flight.
    void abandon(io_request& r) noexcept;
    /// Cancels `r` and waits for its final completion, which is delivered as usual
    /// (on_complete runs; a waiter is queued on deferred()).
    void cancel_and_wait(io_request& r) noexcept;
    /// Waiters completed outside poll() (a cancel, an inline completion that had to be
    /// queued); poll() moves them onto its ready queue first.
    ready_queue& deferred() noexcept { return deferred_; }
    std::size_t in_flight() const noexcept { return in_flight_count_; }

protected:
    virtual void give_back(std::uint16_t id) noexcept = 0;
    /// Cancels the requests in flight (only_on_stop: those marked cancel_on_stop).
    void cancel_tracked(bool only_on_stop) noexcept;
    /// Every start() that does not complete at once calls track(); finish() untracks.
    void track(io_request& r) noexcept;
    /// Records a completion and queues its waiter (or calls on_complete).
    void finish(io_request& r, std::int32_t res, std::uint32_t flags, ready_queue& ready) noexcept;

    ready_queue deferred_;
    std::byte* buffer_memory_ = nullptr;
    std::uint32_t buffer_size_ = 0;

private:
    intrusive_list<buffer_waiter, &buffer_waiter::link> starving_;  // a FIFO: served from the front
    // Every request in flight, newest first (track() pushes at the front).
    intrusive_list<io_request, &io_request::in_flight_link> tracked_;
    std::size_t in_flight_count_ = 0;
};

}  // namespace ringchat
