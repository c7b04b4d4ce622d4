// chat/ring_deque.hpp — a double-ended queue in one circular array, for the channel's output.
//
// std::deque allocates a block when push_back crosses into a new one and frees it when
// pop_front empties it; with a queue that goes 0 → 1 → 0 entries per message (ping-pong echo),
// that is an allocation and a free every few messages. Here the array keeps its capacity while
// entries come and go, and is freed when the queue empties after it grew past `kept_capacity`
// (a burst does not pin its memory to an idle connection).
#pragma once

#include <cassert>
#include <cstddef>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

namespace ringchat::chat {

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

    void push_back(T&& v) {
        make_room();
        ::new (static_cast<void*>(slots_ + ((head_ + size_) & (capacity_ - 1)))) T(std::move(v));
        ++size_;
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
        const std::size_t grown = capacity_ == 0 ? 4 : capacity_ * 2;
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

}  // namespace ringchat::chat
