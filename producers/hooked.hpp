// SPDX-License-Identifier: MIT
// producers/hooked.hpp — a producer that calls a function once the producer it wraps is
// exhausted (medusa's hooked_producer, which asynchat's users kept beside it): for logging a
// response's size, or starting the next step of a conversation once a reply is queued out.
//
//     producers::hooked(producers::simple(reply), [&](std::uint64_t n) { log_sent(n); })
//
// The function gets the number of bytes produced (or nothing, if it takes no argument). It is
// called exactly once, from the more() call that finds the wrapped producer exhausted, before
// that call returns its empty chunk; an exception it throws leaves more() (a channel then
// closes). It is never called if the producer is dropped before it is exhausted.
#pragma once

#include <concepts>
#include <cstdint>
#include <optional>
#include <type_traits>
#include <utility>

#include "producer.hpp"
#include "wrapper.hpp"

namespace ringchat::producers {

template <producer P, class F>
    requires std::invocable<F&, std::uint64_t> || std::invocable<F&>
class hooked : public detail::wrapper<hooked<P, F>, sync_producer<P>> {
public:
    hooked(P inner, F hook) noexcept(
        std::is_nothrow_move_constructible_v<P> && std::is_nothrow_move_constructible_v<F>)
        : inner_(std::move(inner)), hook_(std::move(hook)) {}

    /// The wrapped producer.
    P& first() noexcept { return inner_; }

private:
    friend detail::wrapper_state<hooked>;

    std::optional<chunk> feed(chunk in) {
        bytes_ += in.size();
        return in;
    }
    chunk finish() {
        if constexpr (std::invocable<F&, std::uint64_t>) {
            hook_(bytes_);
        } else {
            hook_();
        }
        return {};
    }

    P inner_;
    F hook_;
    std::uint64_t bytes_ = 0;
};

}  // namespace ringchat::producers
