// SPDX-License-Identifier: MIT
// What both backends share: the list of requests in flight, completion bookkeeping, and
// the backend kind's names.
#include "backend.hpp"

#include <cerrno>
#include <charconv>
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

namespace {

/// A switch from the environment: `name`=0 or 1 sets `on`; unset or empty leaves it.
void env_switch(const char* name, bool& on) {
    const char* env = std::getenv(name);
    if (env == nullptr || *env == '\0') {
        return;
    }
    const std::string_view v(env);
    if (v != "0" && v != "1") {
        throw std::invalid_argument(std::string(name) + " must be 0 or 1, not " + env);
    }
    on = v == "1";
}

}  // namespace

reactor_options reactor_options::from_env(reactor_options base) {
    if (const char* env = std::getenv("RINGCHAT_BACKEND"); env != nullptr && *env != '\0') {
        backend_kind kind{};
        if (!parse_backend_kind(env, kind)) {
            throw std::invalid_argument(
                std::string("RINGCHAT_BACKEND must be uring, epoll or auto, not ") + env);
        }
        base.kind = kind;
    }
    env_switch("RINGCHAT_INCREMENTAL_BUFFERS", base.incremental_buffers);
    env_switch("RINGCHAT_REGISTERED_RING", base.registered_ring_fd);
    if (const char* env = std::getenv("RINGCHAT_MIN_WAIT_US"); env != nullptr && *env != '\0') {
        const std::string_view v(env);
        unsigned long us = 0;
        const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), us);
        if (ec != std::errc() || end != v.data() + v.size() || us > 1'000'000) {
            throw std::invalid_argument(
                std::string("RINGCHAT_MIN_WAIT_US must be microseconds from 0 to 1000000, not ") +
                env);
        }
        base.min_wait = std::chrono::microseconds(us);
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

void backend::cancel_all() noexcept { cancel_tracked(false); }

void backend::cancel_on_stop() noexcept { cancel_tracked(true); }

// TRICKY: cancel() may complete requests at once, inside this walk: on epoll always (the
// request itself, then whatever its callback cancels in turn: a receiver's recv cancels its
// timer), on io_uring when the SQ is full and make_room() reaps. The request cancelled is
// why the walk takes its successor first; when the successor went too, the walk went on from
// it (unlinked, so no next) and ended there, and a stop left the requests after it running.
// A lost successor now sends the walk back to the front, from where it passes over again only
// what is still in flight and either cancelled already or not to be cancelled. Each restart
// follows a cancel, and a stop refuses new requests (reactor::start(), closes excepted), so
// the walk ends. Callbacks resume nobody, so the lost successor's memory is there to ask.
void backend::cancel_tracked(bool only_on_stop) noexcept {
    for (auto it = tracked_.begin(); it != tracked_.end();) {
        io_request& r = *it++;
        if (r.cancel_requested || (only_on_stop && !r.cancel_on_stop)) {
            continue;
        }
        r.cancel_requested = true;
        cancel(r);
        if (it != tracked_.end() && !tracked_.linked(*it)) {
            it = tracked_.begin();
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
