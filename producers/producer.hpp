// producers/producer.hpp — what a channel's output queue holds: anything with more().
//
// A producer's more() returns the next chunk of output, or an empty chunk once exhausted
// (asynchat's producer protocol). more() may return the chunk at once (a synchronous
// producer: no coroutine frame is made) or a task<chunk> (an asynchronous one: a file read, a
// generator that awaits between chunks). any_producer erases the type for the channel's FIFO.
// Invariant: after more() returned an empty chunk, the producer is not asked again.
#pragma once

#include <concepts>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "core/task.hpp"

namespace ringchat::producers {

/// One chunk of output; empty = the producer is exhausted.
using chunk = std::string;

/// A producer whose more() gives the chunk at once.
template <class P>
concept sync_producer = requires(P& p) {
    { p.more() } -> std::convertible_to<chunk>;
};

/// A producer whose more() is a coroutine.
template <class P>
concept async_producer = requires(P& p) {
    { p.more() } -> std::same_as<task<chunk>>;
};

template <class P>
concept producer = sync_producer<P> || async_producer<P>;

/// A producer of any type, moved into one heap object.
class any_producer {
public:
    any_producer() = default;
    template <producer P>
        requires(!std::same_as<std::remove_cvref_t<P>, any_producer>)
    any_producer(P p) : impl_(std::make_unique<model<P>>(std::move(p))) {}

    explicit operator bool() const noexcept { return impl_ != nullptr; }
    /// True when more() answers at once: call more_now(); otherwise co_await more_later().
    bool is_sync() const noexcept { return impl_->is_sync(); }
    chunk more_now() { return impl_->more_now(); }
    task<chunk> more_later() { return impl_->more_later(); }

private:
    struct concept_t {
        virtual ~concept_t() = default;
        virtual bool is_sync() const noexcept = 0;
        virtual chunk more_now() = 0;
        virtual task<chunk> more_later() = 0;
    };
    template <class P>
    struct model final : concept_t {
        explicit model(P p) : value(std::move(p)) {}
        bool is_sync() const noexcept override { return sync_producer<P>; }
        chunk more_now() override {
            if constexpr (sync_producer<P>) {
                return chunk(value.more());
            } else {
                return {};  // never called: is_sync() is false
            }
        }
        task<chunk> more_later() override {
            if constexpr (async_producer<P>) {
                return value.more();
            } else {
                return ready(chunk(value.more()));
            }
        }
        static task<chunk> ready(chunk c) { co_return c; }
        P value;
    };
    std::unique_ptr<concept_t> impl_;
};

/// asynchat's simple_producer: `data` in chunks of `buffer_size` (512 by default).
class simple {
public:
    explicit simple(std::string data, std::size_t buffer_size = 512)
        : data_(std::move(data)), size_(buffer_size == 0 ? 1 : buffer_size) {}
    chunk more() {
        if (offset_ >= data_.size()) {
            return {};
        }
        const std::size_t n = std::min(size_, data_.size() - offset_);
        chunk out = data_.substr(offset_, n);
        offset_ += n;
        return out;
    }

private:
    std::string data_;
    std::size_t size_;
    std::size_t offset_ = 0;
};

}  // namespace ringchat::producers
