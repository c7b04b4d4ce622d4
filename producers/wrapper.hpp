// SPDX-License-Identifier: MIT
// producers/wrapper.hpp — the one more() that every wrapping producer shares, sync or async.
//
// A wrapper (chunked, hooked, globbing, escaping, composite) is a small state machine fed
// with the chunks of the producer it wraps. It supplies:
//     P& first();                            // what it pulls from
//     Q& second();                           // optional: pulled once first() is exhausted
//     std::optional<chunk> feed(chunk in);   // `in` is never empty; nullopt: pull again
//     chunk finish();                        // every source is exhausted: the last output
// and derives from wrapper<Self, Sync>, which supplies more(): a plain function returning a
// chunk when every source is a sync_producer (no coroutine frame per chunk), a task<chunk>
// otherwise. So each wrapper states its protocol once, not once per kind of source.
// Invariants: no source is asked again after it returned an empty chunk; finish() is called
// exactly once; after it, more() returns empty chunks without asking anyone.
#pragma once

#include <coroutine>
#include <cstdint>
#include <optional>
#include <utility>

#include "../core/task.hpp"
#include "producer.hpp"

namespace ringchat::producers::detail {

/// The awaitable of a chunk that is already there (a sync producer's, inside a coroutine).
struct ready_chunk {
    chunk value;
    bool await_ready() const noexcept { return true; }
    void await_suspend(std::coroutine_handle<>) const noexcept {}
    chunk await_resume() noexcept { return std::move(value); }
};

/// `co_await pull(p)`: p's next chunk; a sync producer answers without a coroutine frame.
template <producer P>
auto pull(P& p) {
    if constexpr (sync_producer<P>) {
        return ready_chunk{chunk(p.more())};
    } else {
        return p.more();
    }
}

template <class Self>
concept has_second = requires(Self& s) {
    s.second();
};

/// What sync and async more() share: where the wrapper stands, and what one chunk does.
template <class Self>
class wrapper_state {
protected:
    enum class stage : std::uint8_t { first, second, done };

    /// The output after `in` came from the current source; nullopt: pull again.
    std::optional<chunk> take(chunk in) {
        auto& self = static_cast<Self&>(*this);
        if (!in.empty()) {
            return self.feed(std::move(in));
        }
        if constexpr (has_second<Self>) {
            if (stage_ == stage::first) {
                stage_ = stage::second;
                return std::nullopt;
            }
        }
        stage_ = stage::done;
        return self.finish();
    }

    stage stage_ = stage::first;
};

template <class Self, bool Sync>
class wrapper;

/// Over sync producers: more() returns the chunk at once.
template <class Self>
class wrapper<Self, true> : public wrapper_state<Self> {
    using stage = typename wrapper_state<Self>::stage;

public:
    chunk more() {
        auto& self = static_cast<Self&>(*this);
        while (this->stage_ != stage::done) {
            std::optional<chunk> out;
            if constexpr (has_second<Self>) {
                if (this->stage_ == stage::second) {
                    out = this->take(chunk(self.second().more()));
                } else {
                    out = this->take(chunk(self.first().more()));
                }
            } else {
                out = this->take(chunk(self.first().more()));
            }
            if (out) {
                return std::move(*out);
            }
        }
        return {};
    }
};

/// Over an async producer (any_producer among them): more() is a task.
template <class Self>
class wrapper<Self, false> : public wrapper_state<Self> {
    using stage = typename wrapper_state<Self>::stage;

public:
    /// \note The producer must stay where it is until the task completes.
    task<chunk> more() {
        auto& self = static_cast<Self&>(*this);
        while (this->stage_ != stage::done) {
            // TRICKY: if/else, never `?:` around co_await (GCC 12 miscompiles it), and
            // pull() is awaited as a prvalue (GCC 12 copies awaitables named by reference).
            chunk in;
            if constexpr (has_second<Self>) {
                if (this->stage_ == stage::second) {
                    in = co_await pull(self.second());
                } else {
                    in = co_await pull(self.first());
                }
            } else {
                in = co_await pull(self.first());
            }
            auto out = this->take(std::move(in));
            if (out) {
                co_return std::move(*out);
            }
        }
        co_return chunk{};
    }
};

}  // namespace ringchat::producers::detail
