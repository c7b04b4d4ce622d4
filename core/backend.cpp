// SPDX-License-Identifier: MIT
// What both backends share: the list of requests in flight, completion bookkeeping, and
// the backend kind's names.
#include "backend.hpp"

#include <cerrno>
#include <cstdlib>

namespace ringchat {

std::string_view to_string(backend_kind kind) noexcept {
    switch (kind) {
    case backend_kind::uring:
        return "io_uring";
    case backend_kind::epoll:
        return "epoll";
    case backend_kind::automatic:
        return "auto";
    }
    return "unknown";
}

bool parse_backend_kind(std::string_view text, backend_kind& out) noexcept {
    if (text == "uring" || text == "io_uring") {
        out = backend_kind::uring;
    } else if (text == "epoll") {
        out = backend_kind::epoll;
    } else if (text == "auto" || text == "automatic") {
        out = backend_kind::automatic;
    } else {
        return false;
    }
    return true;
}

reactor_options reactor_options::from_env(reactor_options base) {
    if (const char* env = std::getenv("RINGCHAT_BACKEND"); env != nullptr && *env != '\0') {
        backend_kind kind{};
        if (!parse_backend_kind(env, kind)) {
            throw std::invalid_argument(
                std::string("RINGCHAT_BACKEND must be uring, epoll or auto, not ") + env);
        }
        base.kind = kind;
    }
    return base;
}

void backend::track(io_request& r) noexcept {
    r.in_flight = true;
    tracked_.push_front(r);
    ++in_flight_count_;
}

void backend::finish(io_request& r, std::int32_t res, std::uint32_t flags,
                     ready_queue& ready) noexcept {
    // A request whose deadline fired ends with -ECANCELED from the kernel's linked timeout;
    // one that nobody cancelled was ended by its deadline.
    if (res == -ECANCELED && r.has_deadline() && !r.cancel_requested) {
        res = -ETIMEDOUT;
    }
    r.res = res;
    r.result_flags = flags;
    if ((flags & io_more) == 0 && r.in_flight) {
        r.in_flight = false;
        tracked_.erase(r);
        --in_flight_count_;
    }
    if (r.on_complete != nullptr) {
        r.on_complete(r, ready);
    } else if (r.waiter) {
        ready.push_back(r.waiter);
    }
}

void backend::cancel_all() noexcept {
    for (auto it = tracked_.begin(); it != tracked_.end();) {
        io_request& r = *it++;  // cancel() may complete r at once and unlink it
        if (!r.cancel_requested) {
            r.cancel_requested = true;
            cancel(r);
        }
    }
}

void backend::cancel_on_stop() noexcept {
    for (auto it = tracked_.begin(); it != tracked_.end();) {
        io_request& r = *it++;  // as in cancel_all()
        if (r.cancel_on_stop && !r.cancel_requested) {
            r.cancel_requested = true;
            cancel(r);
        }
    }
}

// TRICKY: waiters are served before each poll, as many as there are free buffers, rather
// than one per release_buffer(): one recv may take several buffers (epoll's recvmsg, io_uring's
// multishot bursts), and a waiter may not receive at once (its reader is not waiting), so a
// hand-over at release time could leave buffers free and receivers starving with no release
// left to wake them. A notified receiver that then takes no buffer (its stream ended) still
// completes, which brings another turn, and the buffer goes to the next waiter then.
void backend::serve_buffer_waiters() noexcept {
    // Each waiter leaves the queue before it is notified: notify() may queue it again.
    for (std::uint32_t n = starving_.empty() ? 0 : free_buffers(); n > 0 && !starving_.empty();) {
        buffer_waiter& w = starving_.pop_front();
        if (w.notify(w)) {
            --n;
        }
    }
}

void backend::wait_for_buffer(buffer_waiter& w) noexcept {
    if (!starving_.linked(w)) {
        starving_.push_back(w);
    }
}

void backend::stop_waiting_for_buffer(buffer_waiter& w) noexcept {
    if (starving_.linked(w)) {
        starving_.erase(w);
    }
}

void backend::abandon(io_request& r) noexcept {
    // TRICKY: the owner of `r` is being destroyed (a task destroyed while suspended on I/O).
    // Nobody may be resumed for it, and its memory must outlive the kernel's last write, so
    // cancel it and wait here for its final completion.
    r.waiter = {};
    r.on_complete = nullptr;
    cancel_and_wait(r);
}

void backend::cancel_and_wait(io_request& r) noexcept {
    if (r.in_flight && !r.cancel_requested) {
        r.cancel_requested = true;
        cancel(r);
    }
    // Other completions harvested meanwhile are kept for the reactor's next turn.
    ready_queue harvested;
    while (r.in_flight) {
        poll(std::chrono::milliseconds(10), harvested);
    }
    deferred_.insert(deferred_.end(), harvested.begin(), harvested.end());
}

}  // namespace ringchat
