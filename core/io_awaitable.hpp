// SPDX-License-Identifier: MIT
// The awaitable every operation returns: it holds the io_request inline, so an operation
// costs no allocation, and starts it only when awaited.
//
//     auto n = co_await sock.recv(buf).timeout(2s);   // result<std::size_t>
//
// Invariant: the request completes exactly once before the awaitable dies. If the awaiting
// coroutine is destroyed while the operation is in flight, the destructor cancels it and
// waits for that completion (backend::abandon), so no kernel write lands in freed memory.
#pragma once

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <utility>
#include <vector>

#include "io_request.hpp"
#include "result.hpp"

namespace ringchat {

class reactor;
class cancel_source;

namespace detail {
bool start_io(reactor& r, io_request& req) noexcept;
void cancel_io(reactor& r, io_request& req) noexcept;
void abandon_io(reactor& r, io_request& req) noexcept;
void unschedule(reactor& r, std::coroutine_handle<> h) noexcept;
}  // namespace detail

/// Cancels every operation attached to it (`.cancel_with(source)`); operations attached after
/// cancel() complete at once with ECANCELED. It must outlive the operations attached to it.
class cancel_source {
public:
    cancel_source() = default;
    cancel_source(const cancel_source&) = delete;
    cancel_source& operator=(const cancel_source&) = delete;

    void cancel() noexcept {
        cancelled_ = true;
        for (auto [r, req] : std::exchange(attached_, {})) {
            detail::cancel_io(*r, *req);
        }
    }
    bool cancelled() const noexcept { return cancelled_; }
    /// Makes it usable again (operations already cancelled stay cancelled).
    void reset() noexcept { cancelled_ = false; }

    void attach(reactor& r, io_request& req) { attached_.emplace_back(&r, &req); }
    void detach(io_request& req) noexcept {
        std::erase_if(attached_, [&](const auto& a) { return a.second == &req; });
    }

private:
    std::vector<std::pair<reactor*, io_request*>> attached_;
    bool cancelled_ = false;
};

template <class Op>
class io_ref;

/// The common part of every operation's awaitable; `Derived` supplies await_resume().
template <class Derived>
class io_operation {
public:
    io_operation(reactor& r, opcode op, int fd, void* buf = nullptr, std::uint32_t len = 0,
                 int flags = 0, std::uint64_t offset = 0) noexcept
        : reactor_(&r) {
        req_.op = op;
        req_.fd = fd;
        req_.buf = buf;
        req_.len = len;
        req_.flags = flags;
        req_.offset = offset;
    }
    io_operation(const io_operation&) = delete;
    io_operation& operator=(const io_operation&) = delete;
    ~io_operation() {
        if (source_ != nullptr) {
            source_->detach(req_);
        }
        if (req_.in_flight) {
            detail::abandon_io(*reactor_, req_);
        } else if (req_.waiter) {
            // Completed and queued, but its coroutine is destroyed before it resumed.
            detail::unschedule(*reactor_, req_.waiter);
        }
    }

    /// Ends the operation with ETIMEDOUT unless it completes by `t`.
    io_ref<Derived> deadline(clock::time_point t) && noexcept;
    /// Ends the operation with ETIMEDOUT unless it completes within `d`.
    io_ref<Derived> timeout(std::chrono::nanoseconds d) && noexcept;
    /// Lets `source.cancel()` end the operation with ECANCELED.
    io_ref<Derived> cancel_with(cancel_source& source) && noexcept;

    void set_deadline(clock::time_point t) noexcept { req_.deadline = t; }
    /// A timeout that starts only if the operation has to wait (io_request's
    /// timeout_if_blocked): for the common send that the kernel takes at once.
    void set_timeout_if_blocked(std::chrono::nanoseconds d) noexcept {
        req_.timeout_if_blocked = d;
    }
    void set_cancel_source(cancel_source& source) noexcept { source_ = &source; }
    /// Calls `fn(request, ready)` instead of queuing the waiter when the operation completes
    /// through the backend (during the harvest: `fn` may only record the result and queue
    /// coroutines on `ready`, the waiter, request.waiter, included). Not called when the
    /// operation completes at once inside co_await; await_resume() gives the result either way.
    void set_on_complete(void (*fn)(io_request&, std::vector<std::coroutine_handle<>>&) noexcept,
                         void* owner) noexcept {
        req_.on_complete = fn;
        req_.owner = owner;
    }

    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> h) {
        req_.waiter = h;
        if (source_ != nullptr && source_->cancelled()) {
            req_.res = -ECANCELED;
            return false;
        }
        if (!detail::start_io(*reactor_, req_)) {
            return false;
        }
        if (source_ != nullptr) {
            source_->attach(*reactor_, req_);
        }
        return true;
    }

protected:
    /// The raw result: bytes or a value >= 0, or the error.
    result<std::size_t> raw_result() noexcept {
        req_.waiter = {};  // resumed: nothing of it is queued any more
        if (source_ != nullptr) {
            source_->detach(req_);
            source_ = nullptr;
        }
        if (req_.res < 0) {
            return errno_code(req_.res);
        }
        return static_cast<std::size_t>(req_.res);
    }

    reactor* reactor_;
    io_request req_;
    cancel_source* source_ = nullptr;
};

/// The plain operation: its result is a byte count (or 0 for connect, close, sleep).
class [[nodiscard]] io_awaitable : public io_operation<io_awaitable> {
public:
    using io_operation::io_operation;
    /// A sleep until `t` (reactor::sleep_until): a graceful stop ends it with ECANCELED.
    io_awaitable(reactor& r, clock::time_point t) noexcept : io_operation(r, opcode::sleep, -1) {
        req_.deadline = t;
        req_.cancel_on_stop = true;
    }
    result<std::size_t> await_resume() noexcept { return raw_result(); }
    io_request& request() noexcept { return req_; }
};

/// What deadline(), timeout() and cancel_with() return: a copyable handle to the operation
/// (a temporary that lives to the end of the full-expression), because GCC 12 copies an
/// awaitable named by reference into the frame and operations are not copyable.
template <class Op>
class [[nodiscard]] io_ref {
public:
    explicit io_ref(Op& op) noexcept : op_(&op) {}
    io_ref deadline(clock::time_point t) noexcept {
        op_->set_deadline(t);
        return *this;
    }
    io_ref timeout(std::chrono::nanoseconds d) noexcept { return deadline(clock::now() + d); }
    io_ref cancel_with(cancel_source& source) noexcept {
        op_->set_cancel_source(source);
        return *this;
    }
    bool await_ready() noexcept { return op_->await_ready(); }
    bool await_suspend(std::coroutine_handle<> h) { return op_->await_suspend(h); }
    decltype(auto) await_resume() { return op_->await_resume(); }

private:
    Op* op_;
};

template <class Derived>
io_ref<Derived> io_operation<Derived>::deadline(clock::time_point t) && noexcept {
    set_deadline(t);
    return io_ref<Derived>(static_cast<Derived&>(*this));
}

template <class Derived>
io_ref<Derived> io_operation<Derived>::timeout(std::chrono::nanoseconds d) && noexcept {
    set_deadline(clock::now() + d);
    return io_ref<Derived>(static_cast<Derived&>(*this));
}

template <class Derived>
io_ref<Derived> io_operation<Derived>::cancel_with(cancel_source& source) && noexcept {
    set_cancel_source(source);
    return io_ref<Derived>(static_cast<Derived&>(*this));
}

}  // namespace ringchat
