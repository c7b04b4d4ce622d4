// SPDX-License-Identifier: MIT
// io_request: one I/O operation as plain data, from co_await to its one completion.
//
// It lives in the awaiting coroutine's frame (inside io_awaitable), or inside a long-lived
// object for multishot operations. Invariant: while `in_flight` is true the kernel (io_uring)
// or the epoll backend may still write into it and into the buffer it names, so it must not
// be destroyed: cancel it, then await the completion. Every request completes exactly once
// (a multishot one: until a completion without `io_more`), also when cancelled
// (-ECANCELED) or past its deadline (-ETIMEDOUT).
#pragma once

#include <cassert>
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "intrusive_list.hpp"

namespace ringchat {

using clock = std::chrono::steady_clock;

enum class opcode : std::uint8_t {
    accept,            ///< fd: listener; buf/addrlen: optional peer address out
    connect,           ///< fd: socket; buf/len: sockaddr
    recv,              ///< fd, buf, len, flags
    send,              ///< fd, buf, len, flags (MSG_NOSIGNAL always added)
    sendmsg,           ///< fd, buf: msghdr*, flags
    read,              ///< fd, buf, len, offset (files)
    write,             ///< fd, buf, len, offset (files)
    sleep,             ///< deadline only; completes with 0 when it passes
    close,             ///< fd
    accept_multishot,  ///< fd: listener; completes once per accepted socket (res = new fd)
    recv_multishot,    ///< fd; each completion carries a provided buffer (buffer_id, res bytes)
    sendfile,          ///< fd: socket; flags: the file's descriptor; offset, len: its bytes
};

/// Flags a completion carries (backend-neutral; each backend translates its own).
enum completion_flags : std::uint32_t {
    io_more = 1u << 0,        ///< a multishot request stays armed; more completions follow
    io_has_buffer = 1u << 1,  ///< `buffer_id` names the provided buffer holding the data
};

struct io_request {
    // TRICKY: the fields are ordered for packing, not by topic (136 bytes, not 152: several of
    // these live in every connection): the one-byte ones first, beside fd.
    opcode op = opcode::recv;
    /// A plain sleep: a graceful stop ends it at once, and refuses new ones, so that a
    /// periodic task ends with the stop (timers that guard I/O go on until the grace ends).
    bool cancel_on_stop = false;
    // Bookkeeping, owned by the backend.
    bool in_flight = false;
    bool cancel_requested = false;
    int fd = -1;
    void* buf = nullptr;
    std::uint32_t len = 0;
    std::uint32_t addrlen = 0;  ///< accept: in/out size of the address at buf
    std::uint64_t offset = 0;
    int flags = 0;

    // Completion.
    std::int32_t res = 0;  ///< >= 0 result, < 0 -errno: one convention, both backends
    std::uint32_t result_flags = 0;
    std::uint16_t buffer_id = 0;
    /// Where in buffer `buffer_id` the bytes start: 0 but for io_uring's incremental
    /// consumption (reactor_options::incremental_buffers), where receives share a buffer.
    std::uint16_t buffer_offset = 0;

    /// Absolute deadline; clock::time_point::max() = none. On io_uring a linked timeout.
    clock::time_point deadline = clock::time_point::max();
    /// A timeout that starts only once the operation has to wait (send, sendmsg, recv): one
    /// that completes at once costs no timer and no clock read. io_uring tries it with
    /// MSG_DONTWAIT first, then sets `deadline` and links it to the retry; epoll sets
    /// `deadline` when it parks the request. 0 = none.
    std::chrono::nanoseconds timeout_if_blocked{0};

    std::coroutine_handle<> waiter;
    /// Multishot requests set this; it is called for each completion (during the harvest,
    /// so it must only record the result and queue waiters on `ready`, never resume).
    void (*on_complete)(io_request&, std::vector<std::coroutine_handle<>>& ready) noexcept =
        nullptr;
    void* owner = nullptr;  ///< for on_complete

    // More bookkeeping, owned by the backend.
    list_hook<io_request> in_flight_link;  ///< the backend's list of requests in flight
    queue_hook<io_request> parked_link;    ///< epoll: in its fd's queue of parked requests
    std::size_t heap_index = 0;  ///< epoll: position in the deadline heap (0 = none)
    alignas(8) std::byte backend_storage[16] = {};  ///< io_uring: the timeout's timespec

    io_request() = default;
    io_request(const io_request&) = delete;
    io_request& operator=(const io_request&) = delete;
    ~io_request() { assert(!in_flight && "io_request destroyed while the kernel owns it"); }

    bool has_deadline() const noexcept { return deadline != clock::time_point::max(); }
};

}  // namespace ringchat
