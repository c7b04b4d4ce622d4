// SPDX-License-Identifier: MIT
// producers/producer.hpp — what a channel's output queue holds: anything with more().
//
// A producer's more() returns the next chunk of output, or an empty chunk once exhausted
// (asynchat's producer protocol). more() may return the chunk at once (a synchronous
// producer: no coroutine frame is made) or a task<chunk> (an asynchronous one: a file read, a
// generator that awaits between chunks). any_producer erases the type for the channel's FIFO.
// A producer that streams a file may also offer its rest as a file_region, which the channel
// sends without copying (sendfile or splice).
// Invariant: after more() returned an empty chunk, the producer is not asked again.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "../core/task.hpp"

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

/// What a producer can hand the channel instead of bytes: `length` bytes of the regular file
/// `fd` from `offset`, for the channel to send with sendfile/splice (no copy through user
/// space). The producer keeps owning `fd`.
struct file_region {
    int fd = -1;
    std::uint64_t offset = 0;
    std::uint64_t length = 0;
};

/// A producer that can also give its rest as a file region (see file_region). The channel
/// asks region() before more(); after sending n bytes of it, it calls advance(n). A producer
/// whose region() is empty is asked for more() as usual.
template <class P>
concept region_producer = producer<P> && requires(P& p, std::uint64_t n) {
    { p.region() } -> std::same_as<std::optional<file_region>>;
    p.advance(n);
};

/// A producer of any type. Small producers that move without throwing (up to
/// inline_capacity bytes: simple, the wrappers around it, file) are stored inside it, so
/// pushing one allocates nothing; larger ones are moved into one heap object.
/// any_producer is itself an async_producer (more() is a task), so wrappers take it too.
class any_producer {
public:
    static constexpr std::size_t inline_capacity = 96;

    any_producer() noexcept = default;
    template <producer P>
        requires(!std::same_as<std::remove_cvref_t<P>, any_producer>)
    any_producer(P p) {
        if constexpr (fits_inline<P>) {
            impl_ = ::new (static_cast<void*>(storage_)) model<P>(std::move(p));
        } else {
            impl_ = new model<P>(std::move(p));
        }
    }
    any_producer(any_producer&& other) noexcept { take(other); }
    any_producer& operator=(any_producer&& other) noexcept {
        if (this != &other) {
            reset();
            take(other);
        }
        return *this;
    }
    any_producer(const any_producer&) = delete;
    any_producer& operator=(const any_producer&) = delete;
    ~any_producer() { reset(); }

    explicit operator bool() const noexcept { return impl_ != nullptr; }
    /// True when more() answers at once: call more_now(); otherwise co_await more_later().
    bool is_sync() const noexcept { return impl_->is_sync(); }
    chunk more_now() { return impl_->more_now(); }
    task<chunk> more_later() { return impl_->more_later(); }
    /// Either of the above, as a task (one coroutine frame per call: the channel does not
    /// use it; wrappers holding an any_producer do).
    task<chunk> more() {
        if (is_sync()) {
            return ready(more_now());
        }
        return more_later();
    }
    /// The rest as a file region, for producers that offer one (region_producer).
    std::optional<file_region> region() { return impl_->region(); }
    void advance(std::uint64_t n) { impl_->advance(n); }
    /// Whether the producer sits inside this object (no heap allocation was made for it).
    bool stored_inline() const noexcept {
        return impl_ == reinterpret_cast<const concept_t*>(storage_);
    }

private:
    struct concept_t {
        virtual ~concept_t() = default;
        virtual bool is_sync() const noexcept = 0;
        virtual chunk more_now() = 0;
        virtual task<chunk> more_later() = 0;
        virtual std::optional<file_region> region() = 0;
        virtual void advance(std::uint64_t n) = 0;
        /// Move-constructs this into `where` (inline storage of another any_producer).
        virtual concept_t* move_to(void* where) noexcept = 0;
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
        std::optional<file_region> region() override {
            if constexpr (region_producer<P>) {
                return value.region();
            } else {
                return std::nullopt;
            }
        }
        void advance(std::uint64_t n) override {
            if constexpr (region_producer<P>) {
                value.advance(n);
            }
        }
        concept_t* move_to(void* where) noexcept override {
            if constexpr (fits_inline<P>) {
                return ::new (where) model(std::move(value));
            } else {
                return nullptr;  // never called: heap models move by pointer
            }
        }
        P value;
    };
    template <class P>
    static constexpr bool fits_inline = sizeof(model<P>) <= inline_capacity &&
                                        alignof(model<P>) <= alignof(std::max_align_t) &&
                                        std::is_nothrow_move_constructible_v<P>;

    static task<chunk> ready(chunk c) { co_return c; }
    void take(any_producer& other) noexcept {
        if (other.stored_inline()) {
            impl_ = other.impl_->move_to(storage_);
            other.reset();
        } else {
            impl_ = std::exchange(other.impl_, nullptr);
        }
    }
    void reset() noexcept {
        if (stored_inline()) {
            impl_->~concept_t();
        } else {
            delete impl_;
        }
        impl_ = nullptr;
    }

    alignas(std::max_align_t) std::byte storage_[inline_capacity];
    concept_t* impl_ = nullptr;
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
