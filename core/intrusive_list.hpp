// SPDX-License-Identifier: MIT
// core/intrusive_list.hpp — lists whose links live in the elements: the backend's requests in
// flight, the waiters for a receive buffer, the reactor's stop hooks, a listener's accept()
// callers, the epoll backend's requests parked on a descriptor.
//
// Linking and unlinking allocate nothing and cannot fail, so they are done inside noexcept
// code and completion callbacks. Two kinds, both named by the element type and its hook
// member, which the element declares (`list_hook<T> link;`, then
// `intrusive_list<T, &T::link>`):
//
//   intrusive_list   doubly linked (list_hook: prev, next). O(1) push_front, push_back,
//                    pop_front, erase of any element, linked(); forward iteration.
//   intrusive_queue  a FIFO singly linked in a circle (queue_hook: next), for an element that
//                    has room for one link only (io_request: it is also in the backend's
//                    list). O(1) push_back, front, pop_front, linked(); erase walks from the
//                    front (O(its position)).
//
// Invariants:
// - An element is in at most one list per hook at a time; the list does not own it. It is
//   erased before it is destroyed (a list's destructor does nothing to its elements).
// - intrusive_list: the links end in nullptr both ways (head's prev, tail's next), and an
//   element in no list has both links nullptr, so linked(x) is `x.prev || head == &x`: O(1),
//   but it asks a list, and holds for an element in that list or in none.
// - intrusive_queue: the list holds only its last element, whose next is the first; an
//   element in a queue always has a next (itself when alone) and one in none has nullptr, so
//   linked(x) needs no list.
// - No element ever points into a list object, so a list may be moved with elements in it (a
//   vector of them grows); moving leaves the source empty. Copying is deleted, for lists and
//   hooks alike: a copy would share elements, or be linked without being in a list.
// - The operations do exactly the work of the hand-written code they replace, no more
//   branches; the preconditions (front() of a non-empty list, erase() of an element that is
//   in this list, push of one that is in none) are asserted only in builds with asserts.
//
// Iteration (intrusive_list) holds the current element; erasing it invalidates the iterator.
// A loop whose body may erase the element it is on takes the successor first:
//
//     for (auto it = l.begin(); it != l.end();) {
//         T& x = *it++;
//         act(x);  // may erase x; may push others: at the front unvisited, at the back visited
//     }
//
// If the body may erase other elements too, the successor it holds may be gone: linked(*it)
// says so (its memory is still there: nothing is destroyed inside such a body), and the walk
// can start again from the front (backend::cancel_tracked()).
#pragma once

#include <cassert>
#include <cstddef>
#include <iterator>
#include <utility>

namespace ringchat {

/// The links of an element of an intrusive_list; nullptr both while in no list.
template <class T>
struct list_hook {
    T* prev = nullptr;
    T* next = nullptr;

    list_hook() = default;
    list_hook(const list_hook&) = delete;
    list_hook& operator=(const list_hook&) = delete;
};

/// The link of an element of an intrusive_queue; nullptr while in none.
template <class T>
struct queue_hook {
    T* next = nullptr;

    queue_hook() = default;
    queue_hook(const queue_hook&) = delete;
    queue_hook& operator=(const queue_hook&) = delete;
};

template <class T, list_hook<T> T::*Hook>
class intrusive_list {
public:
    class iterator {
    public:
        using iterator_category = std::forward_iterator_tag;
        using value_type = T;
        using difference_type = std::ptrdiff_t;
        using pointer = T*;
        using reference = T&;

        iterator() = default;
        explicit iterator(T* at) noexcept : at_(at) {}
        T& operator*() const noexcept { return *at_; }
        T* operator->() const noexcept { return at_; }
        iterator& operator++() noexcept {
            at_ = (at_->*Hook).next;
            return *this;
        }
        iterator operator++(int) noexcept {
            iterator was = *this;
            at_ = (at_->*Hook).next;
            return was;
        }
        friend bool operator==(const iterator&, const iterator&) = default;

    private:
        T* at_ = nullptr;
    };

    intrusive_list() = default;
    intrusive_list(const intrusive_list&) = delete;
    intrusive_list& operator=(const intrusive_list&) = delete;
    intrusive_list(intrusive_list&& o) noexcept
        : head_(std::exchange(o.head_, nullptr)), tail_(std::exchange(o.tail_, nullptr)) {}
    /// Only into an empty list: the elements of a list overwritten would stay linked.
    intrusive_list& operator=(intrusive_list&& o) noexcept {
        assert(empty() || this == &o);
        if (this != &o) {
            head_ = std::exchange(o.head_, nullptr);
            tail_ = std::exchange(o.tail_, nullptr);
        }
        return *this;
    }

    bool empty() const noexcept { return head_ == nullptr; }
    T& front() const noexcept {
        assert(head_ != nullptr);
        return *head_;
    }
    T& back() const noexcept {
        assert(tail_ != nullptr);
        return *tail_;
    }
    /// Whether `x` is in this list; `x` must be in this list or in none.
    bool linked(const T& x) const noexcept { return (x.*Hook).prev != nullptr || head_ == &x; }

    void push_front(T& x) noexcept {
        list_hook<T>& h = x.*Hook;
        assert(h.prev == nullptr && h.next == nullptr && head_ != &x);
        h.next = head_;
        (head_ != nullptr ? (head_->*Hook).prev : tail_) = &x;
        head_ = &x;
    }
    void push_back(T& x) noexcept {
        list_hook<T>& h = x.*Hook;
        assert(h.prev == nullptr && h.next == nullptr && head_ != &x);
        h.prev = tail_;
        (tail_ != nullptr ? (tail_->*Hook).next : head_) = &x;
        tail_ = &x;
    }
    /// Unlinks `x`, which must be in this list; its links are nullptr again.
    void erase(T& x) noexcept {
        list_hook<T>& h = x.*Hook;
        assert(linked(x));
        (h.prev != nullptr ? (h.prev->*Hook).next : head_) = h.next;
        (h.next != nullptr ? (h.next->*Hook).prev : tail_) = h.prev;
        h.prev = h.next = nullptr;
    }
    /// Unlinks the first element (the list must not be empty) and returns it.
    T& pop_front() noexcept {
        assert(head_ != nullptr);
        T& x = *head_;
        list_hook<T>& h = x.*Hook;
        head_ = h.next;
        (head_ != nullptr ? (head_->*Hook).prev : tail_) = nullptr;
        h.next = nullptr;
        return x;
    }

    iterator begin() const noexcept { return iterator(head_); }
    iterator end() const noexcept { return iterator(); }

private:
    T* head_ = nullptr;
    T* tail_ = nullptr;
};

template <class T, queue_hook<T> T::*Hook>
class intrusive_queue {
public:
    intrusive_queue() = default;
    intrusive_queue(const intrusive_queue&) = delete;
    intrusive_queue& operator=(const intrusive_queue&) = delete;
    intrusive_queue(intrusive_queue&& o) noexcept : last_(std::exchange(o.last_, nullptr)) {}
    /// Only into an empty queue: the elements of a queue overwritten would stay linked.
    intrusive_queue& operator=(intrusive_queue&& o) noexcept {
        assert(empty() || this == &o);
        if (this != &o) {
            last_ = std::exchange(o.last_, nullptr);
        }
        return *this;
    }

    /// Whether `x` is in a queue (of this hook): no queue needs to be asked.
    static bool linked(const T& x) noexcept { return (x.*Hook).next != nullptr; }
    bool empty() const noexcept { return last_ == nullptr; }
    T& front() const noexcept {
        assert(last_ != nullptr);
        return *(last_->*Hook).next;
    }

    void push_back(T& x) noexcept {
        queue_hook<T>& h = x.*Hook;
        assert(h.next == nullptr);
        if (last_ == nullptr) {
            h.next = &x;  // alone: the first and the last
        } else {
            h.next = std::exchange((last_->*Hook).next, &x);  // after the last, before the first
        }
        last_ = &x;
    }
    /// Unlinks the first element (the queue must not be empty) and returns it.
    T& pop_front() noexcept {
        assert(last_ != nullptr);
        queue_hook<T>& last = last_->*Hook;
        T& x = *last.next;
        if (&x == last_) {
            last_ = nullptr;
        } else {
            last.next = (x.*Hook).next;
        }
        (x.*Hook).next = nullptr;
        return x;
    }
    /// Unlinks `x` if it is in this queue (found by walking from the front); false if not.
    bool erase(T& x) noexcept {
        if (last_ == nullptr) {
            return false;
        }
        T* before = last_;
        while ((before->*Hook).next != &x) {
            before = (before->*Hook).next;
            if (before == last_) {
                return false;  // round the circle: not in this queue
            }
        }
        if (before == &x) {
            last_ = nullptr;  // it was alone
        } else {
            (before->*Hook).next = (x.*Hook).next;
            if (last_ == &x) {
                last_ = before;
            }
        }
        (x.*Hook).next = nullptr;
        return true;
    }

private:
    T* last_ = nullptr;
};

}  // namespace ringchat
