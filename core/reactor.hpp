// SPDX-License-Identifier: MIT
// The reactor: one event loop per thread. It owns a backend, the detached tasks it runs, and
// the queue of coroutines to resume.
//
// run() alternates two phases: resume everything ready (then what was deferred to the turn's
// end), then poll the backend (which only harvests completions and queues waiters; nothing is
// resumed inside the harvest). It returns when no task is left.
//
// stop() is graceful, in two steps. First the stop hooks run: listeners stop accepting, and
// channels end their input at the next frame boundary (a read() that has to wait for a new
// frame ends with errc::stopped) while their output goes on, so sessions finish what they
// queued and return. What is still running when the grace period ends is cancelled: every
// operation in flight ends with ECANCELED and new ones fail at once (close excepted), so
// tasks unwind and run() returns. stop(0s) is that second step at once.
#pragma once

#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <type_traits>
#include <string_view>

#include "backend.hpp"
#include "frame_cache.hpp"
#include "intrusive_list.hpp"
#include "io_awaitable.hpp"
#include "task.hpp"

namespace ringchat {

/// What a detached task (reactor::spawn) is linked by in its reactor's list of unfinished
/// tasks: the base of its promise, so that tracking a task allocates nothing.
struct detached_node {
    list_hook<detached_node> link;
};

class reactor {
public:
    /// Makes the backend `options.kind` asks for. `automatic` picks io_uring, or epoll where
    /// io_uring_setup fails with ENOSYS, EPERM, EACCES or ENOMEM (one log line says so).
    /// \throws std::system_error when the backend asked for explicitly cannot be created.
    /// SIGPIPE, where it has its default action, is set to be ignored: sendfile(2) (the
    /// zero-copy path) cannot be told MSG_NOSIGNAL, and a peer that goes away must cost an
    /// EPIPE, not the process.
    explicit reactor(reactor_options options = reactor_options::from_env());
    ~reactor();
    reactor(const reactor&) = delete;
    reactor& operator=(const reactor&) = delete;

    /// The backend in use: backend_kind::uring or backend_kind::epoll, never automatic.
    backend_kind kind() const noexcept { return backend_->kind(); }
    std::string_view backend_name() const noexcept { return backend_->name(); }
    class backend& io() noexcept { return *backend_; }

    /// A coroutine for work nobody awaits, owned by the reactor once spawned: a function
    /// returning reactor::detached, its result given to spawn(). It is one frame, where
    /// spawn(task<>) costs two (the task's and a detached one that awaits it): for what runs
    /// per connection. Not awaitable; an exception escaping it is logged; one never spawned
    /// frees its frame when it goes.
    class detached;
    /// Starts `d` as work the reactor owns (resumed at the next turn).
    void spawn(detached d);
    /// Starts `t` as detached work the reactor owns. An exception escaping it is logged.
    void spawn(task<> t);
    /// Runs until no spawned task is left (after stop(): until all have unwound).
    void run();
    /// Runs `t` (and whatever else is spawned) until `t` finishes; returns its result.
    template <class T>
    T block_on(task<T> t);

    /// Graceful stop with the grace period of reactor_options::grace (see above). A stop
    /// during the grace period ends it at once (a second Ctrl-C).
    void stop() noexcept { stop(grace_); }
    /// Graceful stop with `grace`; 0: every operation in flight is cancelled now, and later
    /// ones fail with ECANCELED.
    void stop(std::chrono::nanoseconds grace) noexcept;
    /// A stop has begun (the grace period included).
    bool stopping() const noexcept { return stopping_; }
    /// The grace period is over (or was 0): operations are cancelled and refused.
    bool stopped_hard() const noexcept { return hard_stop_; }

    /// Acts when a graceful stop begins: a listener stops accepting, a channel ends its
    /// input at the next frame boundary. Called from stop(), never inside a harvest; it must
    /// not resume anyone (queue on io().deferred() instead).
    struct stop_hook {
        void (*on_stop)(stop_hook&) noexcept = nullptr;
        void* owner = nullptr;  ///< for on_stop
        list_hook<stop_hook> link{};  ///< the reactor's list; {}: stop_hook{fn, owner} omits it
    };
    /// Adds `h` (nothing if it is added already); the hook added last runs first.
    void add_stop_hook(stop_hook& h) noexcept;
    /// Removes `h`, if it is there.
    void remove_stop_hook(stop_hook& h) noexcept;
    /// Thread- and signal-safe: stop() at the next loop turn.
    /// \note From another thread, the reactor must outlive this call (it may stop and
    /// return from run() before the call has returned).
    void request_stop() noexcept;
    /// SIGINT and SIGTERM call request_stop() on this reactor (the last one to ask).
    void stop_on_signals();
    std::size_t tasks() const noexcept { return task_count_; }

    /// Completes after `d` (0) or with ECANCELED.
    io_awaitable sleep_for(std::chrono::nanoseconds d) noexcept;
    io_awaitable sleep_until(clock::time_point t) noexcept;

    /// Resumes `h` at the next turn (after the current harvest).
    void schedule(std::coroutine_handle<> h) { ready_.push_back(h); }
    /// Resumes `h` later in this turn: after everything that is ready now, before the backend
    /// is polled. For work that batches what this turn's coroutines queue: a channel's writer
    /// sends once for all of a turn's pushes, and its send goes to the kernel with the poll
    /// (one io_uring_enter or epoll_wait less per wake than schedule() would cost).
    void defer(std::coroutine_handle<> h) { after_turn_.push_back(h); }
    /// Counts the loop's turns (each resumes what is ready, then polls): for work that is
    /// bounded per turn, such as a channel's input (fairness between connections).
    std::uint64_t turn() const noexcept { return turn_; }
    /// Takes `h` back out of the ready queue (its frame is being destroyed before it ran).
    void unschedule(std::coroutine_handle<> h) noexcept;

    /// Starts `r` for io_awaitable: false when it completed at once.
    bool start(io_request& r) noexcept;

private:
    friend class reactor_group;
    /// A reactor_group's hold on a reactor of its own (null for a reactor by itself, which
    /// then pays nothing for it): drain() runs the messages other reactors sent, at the start
    /// of a turn after notify_remote(); idle() is asked when no task is left, and run()
    /// returns only when it says so (the group is done), so a reactor answers calls until
    /// then.
    struct remote_link {
        void (*drain)(remote_link&) noexcept = nullptr;
        bool (*idle)(remote_link&) noexcept = nullptr;
    };
    /// Thread-safe: messages are waiting for link_->drain(); wakes the loop unless already
    /// told since its last turn began (one wake-up for a batch). `from` is the calling
    /// thread's reactor (its backend may wake this one more cheaply), or null.
    void notify_remote(reactor* from) noexcept;

    static detached run_detached(task<> t);
    void resume_ready();
    /// Polls the backend: waits for a completion unless something is ready already.
    void poll_once();

    std::unique_ptr<class backend> backend_;
    ready_queue ready_;
    ready_queue resuming_;
    ready_queue after_turn_;  // defer(): resumed once ready_'s batch is done
    // The detached tasks not finished, linked through their promises (no allocation).
    intrusive_list<detached_node, &detached_node::link> tasks_;
    std::size_t task_count_ = 0;
    bool stopping_ = false;
    bool hard_stop_ = false;
    std::chrono::nanoseconds grace_;
    clock::time_point grace_ends_ = clock::time_point::max();
    intrusive_list<stop_hook, &stop_hook::link> hooks_;  // newest first
    // What other threads asked for, taken with one exchange per turn (as a lone flag for
    // request_stop() was before): remote_stop, remote_mail.
    enum : std::uint8_t { remote_stop = 1, remote_mail = 2 };
    std::atomic<std::uint8_t> remote_{0};
    remote_link* link_ = nullptr;
    std::uint64_t turn_ = 0;
};

class [[nodiscard]] reactor::detached {
public:
    struct promise_type : detached_node, detail::cached_frame {
        reactor* owner = nullptr;  // set by spawn(): the reactor whose list holds this

        detached get_return_object() noexcept {
            return detached(std::coroutine_handle<promise_type>::from_promise(*this));
        }
        std::suspend_always initial_suspend() noexcept { return {}; }
        // Never suspends: the frame goes when the body ends, and with it this promise,
        // which takes the task out of its reactor's list.
        std::suspend_never final_suspend() noexcept { return {}; }
        void return_void() noexcept {}
        void unhandled_exception() noexcept;  // logs it
        ~promise_type() {
            if (owner != nullptr) {
                owner->tasks_.erase(*this);
                --owner->task_count_;
            }
        }
    };

    detached(detached&& other) noexcept : handle_(std::exchange(other.handle_, {})) {}
    detached& operator=(detached&&) = delete;
    ~detached() {
        if (handle_) {
            handle_.destroy();  // never spawned
        }
    }

private:
    friend class reactor;
    explicit detached(std::coroutine_handle<promise_type> h) noexcept : handle_(h) {}
    std::coroutine_handle<promise_type> handle_;
};

template <class T>
T reactor::block_on(task<T> t) {
    bool done = false;
    std::exception_ptr error;
    std::optional<std::conditional_t<std::is_void_v<T>, bool, T>> value;
    auto wrapper = [](task<T> inner, bool& finished, std::exception_ptr& failure,
                      decltype(value)& out) -> detached {
        try {
            if constexpr (std::is_void_v<T>) {
                co_await std::move(inner);
                out.emplace(true);
            } else {
                out.emplace(co_await std::move(inner));
            }
        } catch (...) {
            failure = std::current_exception();
        }
        finished = true;
    };
    spawn(wrapper(std::move(t), done, error, value));
    for (;;) {
        resume_ready();
        if (done) {
            break;
        }
        poll_once();
    }
    if (error) {
        std::rethrow_exception(error);
    }
    if constexpr (!std::is_void_v<T>) {
        return std::move(*value);
    }
}

}  // namespace ringchat
