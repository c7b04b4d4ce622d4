// SPDX-License-Identifier: MIT
// listener: a bound, listening socket whose accept() is fed by one multishot accept.
//
// io_uring arms IORING_OP_ACCEPT with the multishot flag once and re-arms it when it ends;
// epoll emulates the same. Accepted sockets wait in a short queue (bounded: past it the
// multishot is cancelled and the kernel's backlog holds the rest). When the process runs out
// of descriptors (EMFILE, ENFILE) or memory, accepting pauses for `pause` and resumes, so the
// loop never spins; accept() callers simply wait.
#pragma once

#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "address.hpp"
#include "intrusive_list.hpp"
#include "io_awaitable.hpp"
#include "result.hpp"
#include "socket.hpp"

namespace ringchat {

class reactor;

struct listen_options {
    int backlog = 1024;
    bool reuse_port = false;  ///< SO_REUSEPORT, for one listener per thread
    bool nodelay = true;      ///< TCP_NODELAY on accepted TCP sockets
    std::chrono::milliseconds pause = std::chrono::milliseconds(100);  ///< after EMFILE
    std::size_t max_queued = 256;  ///< accepted sockets waiting for accept()
};

struct listener_stats {
    std::uint64_t accepted = 0;
    std::uint64_t pauses = 0;  ///< times accepting paused for lack of descriptors or memory
    std::uint64_t arms = 0;    ///< multishot accepts armed (re-arms included)
};

class listener {
public:
    struct state;
    class [[nodiscard]] accept_awaitable {
    public:
        explicit accept_awaitable(state& s) noexcept;
        accept_awaitable(const accept_awaitable&) = delete;
        accept_awaitable& operator=(const accept_awaitable&) = delete;
        ~accept_awaitable();

        /// Ends the accept with ETIMEDOUT unless a connection arrives by `t`.
        io_ref<accept_awaitable> deadline(clock::time_point t) && noexcept {
            set_deadline(t);
            return io_ref<accept_awaitable>(*this);
        }
        io_ref<accept_awaitable> timeout(std::chrono::nanoseconds d) && noexcept {
            set_deadline(clock::now() + d);
            return io_ref<accept_awaitable>(*this);
        }
        /// Lets `source.cancel()` end the accept with ECANCELED.
        io_ref<accept_awaitable> cancel_with(cancel_source& source) && noexcept {
            set_cancel_source(source);
            return io_ref<accept_awaitable>(*this);
        }
        void set_deadline(clock::time_point t) noexcept { timer_.deadline = t; }
        void set_cancel_source(cancel_source& source) noexcept { source_ = &source; }

        bool await_ready() noexcept;
        bool await_suspend(std::coroutine_handle<> h) noexcept;
        result<socket> await_resume();

        // The waiting list, owned by the listener's state.
        list_hook<accept_awaitable> link;
        std::coroutine_handle<> waiter;
        int fd = -1;
        std::error_code error;
        bool waiting = false;

    private:
        friend struct state;
        static void on_timer(io_request& r, std::vector<std::coroutine_handle<>>& ready) noexcept;
        state* s_;          // null once the listener is gone
        reactor* owner_;
        io_request timer_;  // the deadline, or the hook a cancel_source cancels
        cancel_source* source_ = nullptr;
    };

    listener() = default;
    listener(listener&&) noexcept;
    listener& operator=(listener&&) noexcept;
    ~listener();

    /// socket, SO_REUSEADDR (and SO_REUSEPORT if asked), bind, listen. A Unix-domain path
    /// that exists as a socket is replaced.
    static result<listener> bind(reactor& r, const address& at, listen_options options = {});

    /// The next connection. \return EBADF/ECANCELED once the listener is closed or the
    /// reactor stops; descriptor exhaustion is not returned (accepting pauses instead).
    accept_awaitable accept() noexcept { return accept_awaitable(*s_); }
    /// The bound address (the real port when bound to port 0).
    const address& local_address() const noexcept;
    const listener_stats& stats() const noexcept;
    /// Stops accepting: waiting accept() calls end with ECANCELED; the socket is closed.
    void close() noexcept;
    bool valid() const noexcept { return s_ != nullptr; }

private:
    std::unique_ptr<state> s_;
};

}  // namespace ringchat
