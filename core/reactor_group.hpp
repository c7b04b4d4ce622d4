// SPDX-License-Identifier: MIT
// reactor_group: a reactor per thread (thread per core), and calls between them.
//
//     reactor_group g({.threads = 4});
//     g.run([&](reactor& r, unsigned k) -> task<> { ... });      // on each reactor
//     int n = co_await g.on(2, [&] { return table.size(); });    // on reactor 2, back here
//     g.post(1, [fd] { ... });                                    // fire and forget
//
// run() makes a reactor on each of size() threads (reactor 0 on the calling thread: a group
// of one starts no thread), from the same reactor_options (the same backend choice and fall
// back), optionally pinned to a CPU each, and runs start(r, k) on each. Work never
// migrates: a task runs on the reactor that spawned it. A reactor with no task left stays
// up to answer the others; run() returns once no reactor has a task and no message is on
// its way.
//
// Messages: each reactor has one inbox, a lock-free list many threads push onto (one CAS)
// and its owner takes whole (one exchange) at the start of a loop turn. A sender wakes the
// target only when the target's flag goes from "nothing new" to "mail" (one wake-up for a
// batch): on io_uring with an IORING_OP_MSG_RING that leaves with the sender's next
// submission (Linux 6.3 and later), else, and on epoll, with a write to its eventfd. A call
// (on()) is a message that lives in the caller's frame: it costs no allocation unless the
// function returns a task (which the target spawns). A reactor by itself has no inbox and
// pays nothing: the flag shares the exchange per turn request_stop() already had.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "backend.hpp"
#include "log.hpp"
#include "reactor.hpp"
#include "task.hpp"

namespace ringchat {

struct group_options {
    /// Reactors, one thread each; 0 = one per CPU this process may run on.
    unsigned threads = 1;
    /// Pins reactor k's thread to the k-th CPU this process may run on (modulo their count).
    bool pin = false;
    reactor_options reactor = reactor_options::from_env();
};

namespace detail {

/// One message to a reactor of a group: run() is called on that reactor's thread, once.
struct remote_message {
    remote_message* next = nullptr;
    void (*run)(remote_message&, reactor& here) noexcept = nullptr;
};

template <class R>
struct unwrap_task {
    using type = R;
    static constexpr bool is_task = false;
};
template <class T>
struct unwrap_task<task<T>> {
    using type = T;
    static constexpr bool is_task = true;
};

}  // namespace detail

class reactor_group {
public:
    explicit reactor_group(group_options options = {});
    ~reactor_group();
    reactor_group(const reactor_group&) = delete;
    reactor_group& operator=(const reactor_group&) = delete;

    unsigned size() const noexcept { return size_; }

    /// Runs start(r, k) on each reactor k (each its own call), until every reactor has no
    /// task left; rethrows the first reactor's construction failure (no reactor runs then).
    /// A task that throws is logged on its reactor; the others go on.
    void run(std::function<task<>(reactor&, unsigned)> start);

    /// The index of the calling thread's reactor. \pre the caller runs on this group (in_group()).
    unsigned here() const noexcept;
    /// Whether the calling thread runs one of this group's reactors.
    bool in_group() const noexcept;
    /// Reactor k, during run(): to be used only on its own thread (or request_stop()).
    reactor& at(unsigned k) const noexcept;

    /// Awaitable: runs `fn()` on reactor k and resumes the caller, on its own reactor, with
    /// the result; if `fn` returns a task<T>, that task runs on reactor k (spawned there) and
    /// its T comes back. An exception `fn` throws is rethrown in the caller. The call cannot
    /// be cancelled: it completes, also when reactor k is stopping (its operations then fail
    /// with ECANCELED). `fn` is kept in the caller's frame and runs on reactor k's thread.
    /// \pre in_group(), k < size().
    template <class F>
    auto on(unsigned k, F fn);

    /// Runs `fn()` on reactor k, from any thread, during run(); an exception is logged.
    template <class F>
    void post(unsigned k, F fn);

    /// Thread- and signal-safe: a graceful stop of every reactor (each with its own grace
    /// period, reactor_options::grace); before they are made, they stop as they start.
    void request_stop() noexcept;
    /// SIGINT and SIGTERM call request_stop() on this group (the last one to ask), until
    /// run() returns.
    void stop_on_signals();

private:
    struct member;
    template <class F>
    class call;

    void run_member(unsigned k, const std::function<task<>(reactor&, unsigned)>& start);
    /// Queues `m` on reactor k's inbox and wakes it if need be.
    void send(unsigned k, detail::remote_message& m) noexcept;
    /// The last reactor went idle with nothing on its way: every loop may return.
    void finish() noexcept;

    group_options options_;
    unsigned size_;
    std::vector<std::unique_ptr<member>> members_;
    // Reactors with a task, plus messages sent and not yet run: run() ends at 0.
    std::atomic<std::size_t> outstanding_{0};
    std::atomic<bool> done_{false};
    std::atomic<bool> stop_requested_{false};
    std::atomic<bool> failed_{false};  // a reactor could not be made
};

struct reactor_group::member : reactor::remote_link {
    reactor_group* group = nullptr;
    unsigned index = 0;
    std::atomic<reactor*> r{nullptr};
    std::atomic<detail::remote_message*> inbox{nullptr};
    bool busy = true;  // counted in outstanding_ (owner thread only)
    std::exception_ptr error;  // its reactor could not be made
};

inline reactor& reactor_group::at(unsigned k) const noexcept { return *members_[k]->r.load(); }

template <class F>
class [[nodiscard]] reactor_group::call : detail::remote_message {
    using returned = std::invoke_result_t<F&>;
    using unwrap = detail::unwrap_task<returned>;
    using value_type = typename unwrap::type;
    using stored = std::conditional_t<std::is_void_v<value_type>, std::monostate, value_type>;

public:
    call(reactor_group& g, unsigned k, F fn) : group_(&g), target_(k), fn_(std::move(fn)) {}

    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) noexcept {
        waiter_ = h;
        origin_ = group_->here();
        run = &at_target;
        group_->send(target_, *this);
    }
    value_type await_resume() {
        if (error_) {
            std::rethrow_exception(error_);
        }
        if constexpr (!std::is_void_v<value_type>) {
            return std::move(*value_);
        }
    }

private:
    static void at_target(detail::remote_message& m, reactor& here) noexcept {
        auto& self = static_cast<call&>(m);
        if constexpr (unwrap::is_task) {
            here.spawn(drive(self));
        } else {
            try {
                if constexpr (std::is_void_v<value_type>) {
                    self.fn_();
                } else {
                    self.value_.emplace(self.fn_());
                }
            } catch (...) {
                self.error_ = std::current_exception();
            }
            self.reply();
        }
    }
    static task<> drive(call& self) {
        try {
            if constexpr (std::is_void_v<value_type>) {
                co_await self.fn_();
            } else {
                self.value_.emplace(co_await self.fn_());
            }
        } catch (...) {
            self.error_ = std::current_exception();
        }
        self.reply();  // the last touch: the caller may resume (and free this) at once
    }
    void reply() noexcept {
        run = &at_origin;
        group_->send(origin_, *this);
    }
    static void at_origin(detail::remote_message& m, reactor& here) noexcept {
        here.schedule(static_cast<call&>(m).waiter_);
    }

    reactor_group* group_;
    unsigned target_;
    unsigned origin_ = 0;
    F fn_;
    std::coroutine_handle<> waiter_;
    std::optional<stored> value_;
    std::exception_ptr error_;
};

template <class F>
auto reactor_group::on(unsigned k, F fn) {
    return call<F>(*this, k, std::move(fn));
}

template <class F>
void reactor_group::post(unsigned k, F fn) {
    struct posted : detail::remote_message {
        F fn;
        explicit posted(F f) : fn(std::move(f)) {}
    };
    auto* p = new posted(std::move(fn));
    p->run = [](detail::remote_message& m, reactor&) noexcept {
        std::unique_ptr<posted> self(static_cast<posted*>(&m));
        try {
            self->fn();
        } catch (const std::exception& e) {
            log::error("reactor_group: a posted function failed: {}", e.what());
        } catch (...) {
            log::error("reactor_group: a posted function failed with a non-standard exception");
        }
    };
    send(k, *p);
}

}  // namespace ringchat
