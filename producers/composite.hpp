// SPDX-License-Identifier: MIT
// producers/composite.hpp — a head producer, then a body producer (an HTTP response's header
// block then its body; medusa's composite_producer for two).
//
//     producers::composite(producers::simple(headers), producers::file(...))
//
// The result is sync when both are sync, async otherwise. Invariant: the body is not asked
// for anything before the head is exhausted, nor the head after.
#pragma once

#include <optional>
#include <type_traits>
#include <utility>

#include "producer.hpp"
#include "wrapper.hpp"

namespace ringchat::producers {

template <producer H, producer B>
class composite : public detail::wrapper<composite<H, B>, sync_producer<H> && sync_producer<B>> {
public:
    composite(H head, B body) noexcept(
        std::is_nothrow_move_constructible_v<H> && std::is_nothrow_move_constructible_v<B>)
        : head_(std::move(head)), body_(std::move(body)) {}

    /// The head producer.
    H& first() noexcept { return head_; }
    /// The body producer.
    B& second() noexcept { return body_; }

private:
    friend detail::wrapper_state<composite>;

    std::optional<chunk> feed(chunk in) { return in; }
    chunk finish() { return {}; }

    H head_;
    B body_;
};

}  // namespace ringchat::producers
