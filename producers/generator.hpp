// SPDX-License-Identifier: MIT
// producers/generator.hpp — a producer written as a coroutine: it co_yields its chunks and may
// co_await anything between them (a task, a timer, a database query).
//
//     producers::generator countdown(reactor& r, int n) {
//         for (; n > 0; --n) {
//             co_yield fmt::format("{}\r\n", n);
//             co_await r.sleep_for(1s);
//         }
//         co_yield "liftoff\r\n";
//     }
//     ch.push_with_producer(countdown(r, 10));
//
// The body is lazy: it starts at the first more(), runs to its next co_yield, and rests
// there until the next more(). more() returns task<chunk>: the yielded chunk, an empty one
// once the body has returned, or the body's exception, rethrown. Yielding an empty chunk
// yields nothing (an empty chunk means exhausted); the body just goes on.
// Lifetime: a generator owns its frame. Destroying it is safe before the first more() and
// while the body rests at a co_yield (its locals are destroyed). Destroying it while the body
// awaits something (a more() in progress) is not allowed, as for task (core/task.hpp).
// Parameters are taken by value unless they outlive the generator (a reactor&).
#pragma once

#include <coroutine>
#include <exception>
#include <string_view>
#include <utility>

#include "../core/task.hpp"
#include "producer.hpp"

namespace ringchat::producers {

class [[nodiscard]] generator {
public:
    struct promise_type;
    using handle_type = std::coroutine_handle<promise_type>;

    /// Where the body goes when it yields or returns: back to the more() that resumed it.
    struct to_consumer {
        bool skip;  // an empty chunk was yielded: go on without suspending
        bool await_ready() const noexcept { return skip; }
        std::coroutine_handle<> await_suspend(handle_type h) noexcept {
            return h.promise().consumer;
        }
        void await_resume() const noexcept {}
    };

    struct promise_type : ringchat::detail::cached_frame {
        chunk current;  // the chunk yielded last, until more() takes it
        std::exception_ptr error;
        std::coroutine_handle<> consumer = std::noop_coroutine();

        generator get_return_object() noexcept {
            return generator(handle_type::from_promise(*this));
        }
        std::suspend_always initial_suspend() noexcept { return {}; }
        to_consumer final_suspend() noexcept { return {false}; }
        to_consumer yield_value(chunk c) noexcept {
            current = std::move(c);
            return {current.empty()};
        }
        to_consumer yield_value(std::string_view s) { return yield_value(chunk(s)); }
        to_consumer yield_value(const char* s) { return yield_value(chunk(s)); }
        void return_void() noexcept {}
        void unhandled_exception() noexcept { error = std::current_exception(); }
    };

    generator(generator&& other) noexcept : handle_(std::exchange(other.handle_, {})) {}
    generator& operator=(generator&& other) noexcept {
        if (this != &other) {
            reset();
            handle_ = std::exchange(other.handle_, {});
        }
        return *this;
    }
    generator(const generator&) = delete;
    generator& operator=(const generator&) = delete;
    ~generator() { reset(); }

    /// Runs the body to its next co_yield: that chunk; empty once the body has returned.
    /// \throws what the body threw (once; then the generator is exhausted).
    task<chunk> more();

private:
    explicit generator(handle_type h) noexcept : handle_(h) {}
    void reset() noexcept {
        if (handle_) {
            handle_.destroy();
            handle_ = {};
        }
    }

    handle_type handle_;
};

}  // namespace ringchat::producers
