// SPDX-License-Identifier: MIT
// core/ring_deque.hpp — a double-ended queue in one circular array: a receiver's chunks, a
// channel's output.
//
// std::deque allocates its map and a 512-byte block when it is made, even if it stays empty
// (an idle connection's receiver), and a block when push_back crosses into a new one, freed
// when pop_front empties it: with a queue that goes 0 → 1 → 0 entries per message (ping-pong
// echo), an allocation and a free every few messages. This one allocates nothing until its
// first entry, keeps its array while entries come and go, and frees it when the queue empties
// after it grew past `kept_capacity` (a burst does not pin its memory to an idle connection).
#pragma once

#include <cassert>
#include <cstddef>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

namespace ringchat {

template <class T>
class ring_deque {
    static_assert(std::is_nothrow_move_constructible_v<T>, "growing moves every entry");

public:
    /// Capacity (a power of two) kept while empty; larger arrays are freed when emptied.
    static constexpr std::size_t kept_capacity = 8;

    ring_deque() = default;
    ring_deque(const ring_deque&) = delete;
    ring_deque& operator=(const ring_deque&) = delete;
    ~ring_deque() {
        clear();
        release();
    }

    bool empty() const noexcept { return size_ == 0; }
    std::size_t size() const noexcept { return size_; }
    std::size_t capacity() const noexcept { return capacity_; }

    /// The i-th entry from the front.
    T& operator[](std::size_t i) noexcept {
        assert(i < size_);
        return slots_[(head_ + i) & (capacity_ - 1)];
    }
    T& front() noexcept { return (*this)[0]; }
    T& back() noexcept { return (*this)[size_ - 1]; }

    void push_back(T&& v) { emplace_back(std::move(v)); }
    /// Makes the new last entry in place; returns it.
    template <class... Args>
    T& emplace_back(Args&&... args) {
        make_room();
        T* at = slots_ + ((head_ + size_) & (capacity_ - 1));
        ::new (static_cast<void*>(at)) T(std::forward<Args>(args)...);
        ++size_;
        return *at;
    }
    void push_front(T&& v) {
        make_room();
        const std::size_t at = (head_ + capacity_ - 1) & (capacity_ - 1);
        ::new (static_cast<void*>(slots_ + at)) T(std::move(v));
        head_ = at;
        ++size_;
    }
    void pop_front() noexcept {
        assert(size_ > 0);
        slots_[head_].~T();
        head_ = (head_ + 1) & (capacity_ - 1);
        --size_;
        release_if_empty();
    }
    void pop_back() noexcept {
        assert(size_ > 0);
        back().~T();
        --size_;
        release_if_empty();
    }
    void clear() noexcept {
        while (size_ > 0) {
            back().~T();
            --size_;
        }
        head_ = 0;
        release_if_empty();
    }

private:
    void make_room() {
        if (size_ < capacity_) {
            return;
        }
        // From 2: an echo-like session queues one output entry at a time (pushes coalesce
        // into it), and an idle connection keeps this array.
        const std::size_t grown = capacity_ == 0 ? 2 : capacity_ * 2;
        T* moved = std::allocator<T>().allocate(grown);
        for (std::size_t i = 0; i < size_; ++i) {
            T& from = (*this)[i];
            ::new (static_cast<void*>(moved + i)) T(std::move(from));
            from.~T();
        }
        release();
        slots_ = moved;
        capacity_ = grown;
        head_ = 0;
    }
    void release_if_empty() noexcept {
        if (size_ == 0 && capacity_ > kept_capacity) {
            release();
        }
    }
    void release() noexcept {
        if (slots_ != nullptr) {
            std::allocator<T>().deallocate(slots_, capacity_);
        }
        slots_ = nullptr;
        capacity_ = 0;
        head_ = 0;
    }

    T* slots_ = nullptr;
    std::size_t capacity_ = 0;  // 0 or a power of two
    std::size_t head_ = 0;
    std::size_t size_ = 0;
};

}  // namespace ringchat
