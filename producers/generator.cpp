// SPDX-License-Identifier: MIT
// generator::more(): resume the body until it yields or returns (see generator.hpp).
#include "generator.hpp"

namespace ringchat::producers {

namespace {

/// Resumes the body with the awaiting more() as the consumer to come back to.
struct resume_body {
    generator::handle_type body;
    bool await_ready() const noexcept { return false; }
    std::coroutine_handle<> await_suspend(std::coroutine_handle<> consumer) noexcept {
        body.promise().consumer = consumer;
        return body;
    }
    chunk await_resume() {
        auto& promise = body.promise();
        if (promise.error) {
            std::rethrow_exception(std::exchange(promise.error, {}));
        }
        return std::exchange(promise.current, {});
    }
};

}  // namespace

task<chunk> generator::more() {
    if (!handle_ || handle_.done()) {
        co_return chunk{};
    }
    // TRICKY: after the await only the awaiter's copy of the handle is used, not `this`.
    chunk next = co_await resume_body{handle_};
    co_return next;
}

}  // namespace ringchat::producers
