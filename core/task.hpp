// SPDX-License-Identifier: MIT
// task<T>: a lazy coroutine that starts when awaited and resumes its awaiter when done.
//
// Awaiting a task runs it at once, inside the awaiter's await_suspend; a task that completes
// without suspending is noticed there and its awaiter goes on without suspending at all, so a
// loop that awaits a task per message keeps the stack flat at any optimisation level. (The
// textbook design, symmetric transfer both ways, relies on the compiler turning the returned
// handle's resume() into a tail call; GCC 12 does not at -O0 nor under ASan, and there each
// such await nested a frame until the stack overflowed.) A task that suspended resumes its
// awaiter by symmetric transfer when it ends, which nests at most once per task in the chain
// of awaiters, not once per message. An exception thrown in the body is stored and rethrown
// in the awaiter. A task owns its frame: destroying a task that never ran, or that finished,
// frees it (its frame is cached for the next one: core/frame_cache.hpp). Destroying a task
// suspended on I/O is a bug (see io_request).
#pragma once

#include <coroutine>
#include <exception>
#include <utility>
#include <variant>

#include "frame_cache.hpp"

namespace ringchat {

template <class T = void>
class task;

namespace detail {

// Its frames come from the per-thread frame cache (frame_cache.hpp).
struct task_promise_base : cached_frame {
    std::coroutine_handle<> continuation = std::noop_coroutine();
    std::exception_ptr exception;
    // True while the awaiter's await_suspend is running the body: if the body ends then, it
    // leaves its awaiter to go on by itself instead of resuming it (a frame deeper).
    bool started_inline = false;

    std::suspend_always initial_suspend() noexcept { return {}; }

    struct final_awaiter {
        bool await_ready() const noexcept { return false; }
        template <class Promise>
        std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> h) noexcept {
            auto& p = h.promise();
            if (p.started_inline) {
                return std::noop_coroutine();  // back into the awaiter's await_suspend
            }
            return p.continuation;
        }
        void await_resume() const noexcept {}
    };
    final_awaiter final_suspend() noexcept { return {}; }
    void unhandled_exception() noexcept { exception = std::current_exception(); }
};

template <class T>
struct task_promise : task_promise_base {
    std::variant<std::monostate, T> value;

    task<T> get_return_object() noexcept;
    template <class U>
    void return_value(U&& v) {
        value.template emplace<1>(std::forward<U>(v));
    }
    T take() {
        if (exception) {
            std::rethrow_exception(exception);
        }
        return std::move(std::get<1>(value));
    }
};

template <>
struct task_promise<void> : task_promise_base {
    task<void> get_return_object() noexcept;
    void return_void() noexcept {}
    void take() {
        if (exception) {
            std::rethrow_exception(exception);
        }
    }
};

}  // namespace detail

template <class T>
class [[nodiscard]] task {
public:
    using promise_type = detail::task_promise<T>;
    using handle_type = std::coroutine_handle<promise_type>;

    task() noexcept = default;
    explicit task(handle_type h) noexcept : handle_(h) {}
    task(task&& other) noexcept : handle_(std::exchange(other.handle_, {})) {}
    task& operator=(task&& other) noexcept {
        if (this != &other) {
            reset();
            handle_ = std::exchange(other.handle_, {});
        }
        return *this;
    }
    task(const task&) = delete;
    task& operator=(const task&) = delete;
    ~task() { reset(); }

    bool valid() const noexcept { return static_cast<bool>(handle_); }
    bool done() const noexcept { return !handle_ || handle_.done(); }

    auto operator co_await() && noexcept {
        struct awaiter {
            handle_type handle;
            bool await_ready() const noexcept { return !handle || handle.done(); }
            // TRICKY: false resumes the awaiter at once, on this stack frame: the task has
            // finished inside resume() (its final_awaiter saw started_inline and did not
            // resume the awaiter). true: it suspended, and resumes the awaiter when it ends.
            bool await_suspend(std::coroutine_handle<> awaiting) noexcept {
                auto& p = handle.promise();
                p.continuation = awaiting;
                p.started_inline = true;
                handle.resume();
                if (handle.done()) {
                    return false;
                }
                p.started_inline = false;
                return true;
            }
            T await_resume() { return handle.promise().take(); }
        };
        return awaiter{handle_};
    }

    /// Runs the task up to its first suspension with nobody awaiting it; the task keeps
    /// owning the frame (for owners that start work and keep it, like a channel's writer).
    void start() noexcept {
        if (handle_ && !handle_.done()) {
            handle_.resume();
        }
    }

    /// Gives up ownership of the frame (used by the reactor to run detached work).
    handle_type release() noexcept { return std::exchange(handle_, {}); }

private:
    void reset() noexcept {
        if (handle_) {
            handle_.destroy();
            handle_ = {};
        }
    }
    handle_type handle_;
};

namespace detail {

template <class T>
task<T> task_promise<T>::get_return_object() noexcept {
    return task<T>(std::coroutine_handle<task_promise<T>>::from_promise(*this));
}

inline task<void> task_promise<void>::get_return_object() noexcept {
    return task<void>(std::coroutine_handle<task_promise<void>>::from_promise(*this));
}

}  // namespace detail

}  // namespace ringchat
