// SPDX-License-Identifier: MIT
// receiver: a socket's incoming bytes as a stream of provided buffers, from one multishot
// recv (io_uring: a provided-buffer ring; epoll: the same pool, filled on readiness).
//
//     receiver in(sock);
//     while (auto chunk = co_await in.next()) {      // result<recv_buffer>
//         if (chunk->empty()) break;                 // end of stream
//         consume(chunk->data());                    // the buffer returns when chunk dies
//     }
//
// An idle connection holds no buffer. When the pool runs dry (ENOBUFS) the multishot ends;
// it is re-armed when a buffer comes back, and the connection is never closed for it. A
// consumer that stops taking chunks (its session's output is above high water) holds none of
// the pool: once max_queued chunks wait, the receiver stops receiving (the rest of the
// peer's bytes wait in the kernel), copies what it holds into memory of its own and gives the
// buffers back (io_uring may post a burst of up to 32 more per multishot run before the stop
// lands: those are copied as they come), so the pool stays there for everyone else.
// Invariant: one consumer; the receiver outlives its socket's descriptor use, and its
// destructor cancels the multishot and waits for it.
#pragma once

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <utility>

#include "backend.hpp"
#include "result.hpp"
#include "ring_deque.hpp"

namespace ringchat {

class reactor;
class socket;

/// One received chunk: in a provided buffer, which goes back to the pool on destruction, or
/// (a chunk a paused receiver spilled, see receiver) in memory of its own.
class recv_buffer {
public:
    recv_buffer() = default;
    /// `size` bytes from `offset` in provided buffer `id` (a buffer that receives share has
    /// several chunks, each released on its own).
    recv_buffer(backend& b, std::uint16_t id, std::uint16_t offset, std::uint32_t size) noexcept
        : backend_(&b), id_(id), offset_(offset), size_(size) {}
    recv_buffer(std::unique_ptr<std::byte[]> bytes, std::uint32_t size) noexcept
        : own_(std::move(bytes)), size_(size) {}
    recv_buffer(recv_buffer&& o) noexcept
        : backend_(std::exchange(o.backend_, nullptr)),
          own_(std::move(o.own_)),
          id_(o.id_),
          offset_(o.offset_),
          size_(o.size_) {}
    recv_buffer& operator=(recv_buffer&& o) noexcept {
        if (this != &o) {
            release();
            backend_ = std::exchange(o.backend_, nullptr);
            own_ = std::move(o.own_);
            id_ = o.id_;
            offset_ = o.offset_;
            size_ = o.size_;
        }
        return *this;
    }
    ~recv_buffer() { release(); }

    std::span<const std::byte> data() const noexcept {
        if (backend_ != nullptr) {
            return backend_->buffer(id_).subspan(offset_, size_);
        }
        return own_ ? std::span<const std::byte>(own_.get(), size_) : std::span<const std::byte>();
    }
    std::size_t size() const noexcept { return backend_ != nullptr || own_ ? size_ : 0; }
    bool empty() const noexcept { return size() == 0; }
    void release() noexcept {
        if (backend_ != nullptr) {
            std::exchange(backend_, nullptr)->release_buffer(id_);
        }
        own_.reset();
    }

private:
    backend* backend_ = nullptr;
    std::unique_ptr<std::byte[]> own_;
    std::uint16_t id_ = 0;
    std::uint16_t offset_ = 0;
    std::uint32_t size_ = 0;
};

class receiver {
public:
    explicit receiver(socket& s) noexcept;
    receiver(reactor& r, int fd) noexcept;
    receiver(const receiver&) = delete;
    receiver& operator=(const receiver&) = delete;
    ~receiver();

    class [[nodiscard]] next_awaitable {
    public:
        explicit next_awaitable(receiver& r) noexcept : r_(r) {}
        bool await_ready() noexcept { return r_.has_result(); }
        void await_suspend(std::coroutine_handle<> h) noexcept;
        result<recv_buffer> await_resume() noexcept { return r_.take(); }

    private:
        receiver& r_;
    };

    /// The next chunk; an empty one at end of stream (and every time after).
    /// \return ECONNRESET, ETIMEDOUT (deadline), ECANCELED (cancel() or stop) as errors.
    next_awaitable next() noexcept { return next_awaitable(*this); }
    /// What next() would give without waiting, or nothing when it would have to wait (for a
    /// caller that frames synchronously while data is queued).
    std::optional<result<recv_buffer>> try_next() noexcept {
        if (!has_result()) {
            return std::nullopt;
        }
        return take();
    }
    /// Ends a pending next() with ETIMEDOUT unless data arrives by `t` (none by default).
    void set_deadline(clock::time_point t) noexcept { deadline_ = t; }
    /// Ends a pending next() (and stops receiving) with ECANCELED.
    void cancel() noexcept;
    /// Received chunks not taken yet.
    std::size_t queued() const noexcept { return chunks_.size(); }
    /// Chunks that may wait for the consumer before the receiver stops receiving (a few more
    /// may come in flight); it receives again once fewer than half are left.
    static constexpr std::size_t max_queued = 8;
    /// Receiving is stopped because max_queued chunks wait for the consumer.
    bool paused() const noexcept { return paused_; }
    /// Waiting for a free provided buffer (its recv ended with ENOBUFS): it receives again
    /// once the backend hands it one (backend::serve_buffer_waiters()).
    bool starved() const noexcept { return starved_; }

private:
    struct chunk {
        std::int32_t res;
        std::uint16_t id;
        std::uint16_t offset;  // where its bytes start in buffer `id`
        bool has_buffer;
        bool spilled = false;  // its bytes are the front of spilled_, not in buffer `id`
    };
    /// Copies a chunk's bytes out of its pool buffer and gives the buffer back.
    void spill(chunk& c) noexcept;
    bool has_result() noexcept;
    result<recv_buffer> take() noexcept;
    void arm() noexcept;
    /// Starts timer_ (made already) for deadline_ (a waiter waits); a deadline already passed,
    /// or a timer refused, wakes the waiter onto `ready` at once.
    void arm_timer(ready_queue& ready) noexcept;
    static void on_recv(io_request& r, ready_queue& ready) noexcept;
    static void on_timer(io_request& r, ready_queue& ready) noexcept;
    static bool on_buffer(backend::buffer_waiter& w) noexcept;

    reactor* reactor_;
    int fd_;
    io_request req_;
    std::unique_ptr<io_request> timer_;  // for deadline_: made at the first wait with one
    backend::buffer_waiter buffer_wait_;
    ring_deque<chunk> chunks_;
    ring_deque<std::unique_ptr<std::byte[]>> spilled_;  // one per spilled chunk, in order
    std::coroutine_handle<> waiter_;
    std::coroutine_handle<> woken_;  // queued to resume, not resumed yet
    void wake_waiter(ready_queue& ready) noexcept;
    clock::time_point deadline_ = clock::time_point::max();
    std::error_code error_;  // sticky: reported once the queue is drained
    bool eof_ = false;
    bool starved_ = false;
    bool paused_ = false;  // stopped at max_queued; its cancel's ECANCELED is no error
    bool timed_out_ = false;
};

}  // namespace ringchat
