// SPDX-License-Identifier: MIT
// chat/channel_writer.cpp — a channel's output side: how output is queued and gathered.
//
// push() appends to a FIFO of entries (bytes, a producer, a close marker); the writer coroutine
// (write_loop), started by the first push and ended when the queue is empty, sends at the end
// of the reactor's turn what the turn queued: bytes gathered into one send of up to
// out_buffer_size, a producer asked for more() when it reaches the front (a file region sent
// from the file where the transport can), and the channel closed at a close marker. drain(),
// flush() and finish() wait on it; max_output caps what a channel may hold.
#include "channel.hpp"

#include <sys/uio.h>

#include <algorithm>
#include <exception>
#include <memory>
#include <optional>
#include <system_error>
#include <utility>

#include "../core/error.hpp"
#include "../core/frame_cache.hpp"
#include "../core/log.hpp"
#include "../core/reactor.hpp"

namespace ringchat::chat {

namespace {

// TRICKY: a send in progress points into the strings of the entries it gathered, and the
// output queue moves its entries when it grows (a push while the send waits for room). A
// string short enough to keep its bytes inside itself (the small-string buffer) moves them
// with its entry, and the send would then read freed memory; one whose bytes are on the heap
// does not. So a queued string never keeps its bytes inside itself: a capacity of at least
// sizeof(std::string) cannot be inline. (The buffer of a small chunk sent is kept for the next
// push, so this costs an allocation once, not per message.)
constexpr std::size_t off_inline_capacity = sizeof(std::string);

void keep_off_inline(std::string& s) {
    if (s.capacity() < off_inline_capacity) {
        s.reserve(off_inline_capacity);
    }
}

}  // namespace

struct channel::output_room {
    explicit output_room(channel& c) noexcept : w(c, waiter::until::room) {}
    bool await_ready() const noexcept { return !w.ch.open_ || w.ch.below_low_water(); }
    void await_suspend(std::coroutine_handle<> h) noexcept { w.wait(h); }
    void await_resume() const noexcept {}
    waiter w;
};

bool channel::overflows(std::size_t n) noexcept {
    if (queued_bytes_ - n <= options_.high_water) {
        return false;  // one large reply into a queue that was not backed up
    }
    reset_on_shut_ = true;  // what was refused never reaches the peer: it must not see a FIN
    shut(make_error_code(errc::output_overflow));
    return true;
}

void channel::enqueue(entry e) {
    if (!open_) {
        return;  // closed: nothing more is sent (asynchat leaves it queued, unsent)
    }
    out_.push_back(std::move(e));
    wake_writer();
}

void channel::push_new(std::string_view data) {
    if (data.empty() || !open_) {
        return;
    }
    // In place, in the buffer of the last small chunk sent (spare_): no allocation.
    // (Moves, not swap(): std::string's swap is a hundred instructions where either side
    // may be in its small-string buffer.)
    entry& e = out_.emplace_back();
    e.data = std::move(spare_);
    e.data.assign(data);
    keep_off_inline(e.data);
    queued_bytes_ += data.size();
    if (queued_bytes_ > output_cap_ && overflows(data.size())) {
        return;
    }
    wake_writer();
}

void channel::push_large(std::span<const std::byte> data) {
    if (!open_) {
        return;
    }
    if (std::string joined = framer_.take_frame(data); !joined.empty()) {
        push(std::move(joined));
        return;
    }
    push_new(std::string_view(reinterpret_cast<const char*>(data.data()), data.size()));
}

void channel::push(std::string&& data) {
    if (data.empty() || !open_) {
        return;
    }
    keep_off_inline(data);
    // Judged before it is counted: `data` is not in the queue that shut() would drop.
    if (queued_bytes_ + data.size() > output_cap_ && overflows(0)) {
        return;
    }
    queued_bytes_ += data.size();
    enqueue(entry{std::move(data), 0, entry::kind::bytes});
}

void channel::push_with_producer(producers::any_producer p) {
    if (!open_) {
        return;  // as enqueue()
    }
    producers_.push_back(std::move(p));
    enqueue(entry{{}, 0, entry::kind::producer});
}

void channel::close_when_done() { enqueue(entry{{}, 0, entry::kind::close}); }

// One frame per reply where replies do not overlap: it comes from the frame cache.
struct channel::writer_coroutine::promise_type : ringchat::detail::cached_frame {
    writer_coroutine get_return_object() noexcept {
        return {std::coroutine_handle<promise_type>::from_promise(*this)};
    }
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }  // the frame frees itself
    void return_void() noexcept {}
    void unhandled_exception() noexcept {
        // What the writer calls that may throw (a producer) is caught where it is called;
        // this is the rest (an allocation): the next push starts a new writer.
        log::error("channel: the writer failed; it starts again with the next push");
    }
};

void channel::start_writer() {
    writer_ = write_loop().handle;
    writer_.resume();  // to its first co_await: the end of this turn
}

void channel::count_sent(std::size_t n) noexcept {
    ++stats_.sends;
    stats_.bytes_sent += n;
    if (open_) {
        queued_bytes_ -= n;  // closed: shut() has set it to 0 already
    }
    note_activity();
}

void channel::on_sent(io_request& r, std::vector<std::coroutine_handle<>>& ready) noexcept {
    auto& self = *static_cast<channel*>(r.owner);
    // TRICKY: what the kernel took leaves queued_bytes_ here, in the harvest, not when the
    // writer resumes. On io_uring a send completes in the poll and the writer resumes in the
    // next turn among the coroutines that push to this channel; counted only then, a send
    // already done kept its bytes in the count while that turn's pushes were added, and
    // read() paused at high water, then waited for low water, on bytes the kernel had taken
    // (measured: a chatroom member whose input paused so stayed paused while the others
    // flooded it). On epoll a send that need not wait completes inside co_await, not here.
    if (r.res >= 0) {
        self.count_sent(static_cast<std::size_t>(r.res));
        self.sent_counted_ = true;
        if (self.below_low_water() && !self.waiters_.empty()) {
            const waiter::until room = waiter::until::room;
            self.wake_all(&room, &ready);
        }
    }
    if (r.waiter) {
        ready.push_back(r.waiter);
    }
}

void channel::drop_output() noexcept {
    out_.clear();
    producers_.clear();
    queued_bytes_ = 0;
    discard_in_flight_ = false;
}

void channel::pop_sent() noexcept {
    entry& e = out_.front();
    if (e.what == entry::kind::bytes && e.data.capacity() <= 2 * coalesce_limit &&
        e.data.capacity() > spare_.capacity()) {
        spare_ = std::move(e.data);
        spare_.clear();
    }
    out_.pop_front();
}

void channel::drop_front() noexcept {
    if (out_.front().what == entry::kind::producer) {
        producers_.pop_front();
    }
    out_.pop_front();
}

void channel::drop_last() noexcept {
    const entry& e = out_.back();
    queued_bytes_ -= e.data.size() - e.offset;
    if (e.what == entry::kind::producer) {
        producers_.pop_back();
    }
    out_.pop_back();
}

task<> channel::drain() {
    while (open_ && !below_low_water()) {
        co_await output_room(*this);
    }
}

task<> channel::flush() {
    struct emptied {
        explicit emptied(channel& c) noexcept : w(c, waiter::until::empty) {}
        bool await_ready() const noexcept { return !w.ch.open_ || w.ch.out_.empty(); }
        void await_suspend(std::coroutine_handle<> h) noexcept { w.wait(h); }
        void await_resume() const noexcept {}
        waiter w;
    };
    while (open_ && !out_.empty()) {
        co_await emptied(*this);
    }
}

task<> channel::finish() {
    if (!open_) {
        co_return;
    }
    if (out_.empty()) {
        shut({});
        co_return;
    }
    close_when_done();
    struct closed {
        explicit closed(channel& c) noexcept : w(c, waiter::until::closed) {}
        bool await_ready() const noexcept { return !w.ch.open_; }
        void await_suspend(std::coroutine_handle<> h) noexcept { w.wait(h); }
        void await_resume() const noexcept {}
        waiter w;
    };
    co_await closed(*this);
}

task<bool> channel::send_region(producers::file_region region) {
    in_flight_entries_ = 1;  // the producer at the front: discard_buffers() must not free it
    send_operation send(*io_, region.fd, region.offset, region.length);
    if (options_.write_timeout.count() > 0) {
        send.set_deadline(clock::now() + options_.write_timeout);
    }
    sending_ = &send.request();
    auto sent = co_await send;
    sending_ = nullptr;
    in_flight_entries_ = 0;
    if (sent && *sent == 0) {
        // As the producer's read path says it (producers/file.hpp).
        log::error("file region ends early (the file shrank?); closing the channel");
        sent = std::make_error_code(std::errc::no_message_available);
    }
    if (!sent) {
        if (open_) {
            shut(io_->failure() ? io_->failure() : sent.error());
        }
        drop_output();
        co_return false;
    }
    ++stats_.sends;
    stats_.bytes_sent += *sent;
    stats_.bytes_zero_copy += *sent;
    note_activity();
    if (std::exchange(discard_in_flight_, false)) {
        drop_front();  // discarded while it was sent: drop the rest of it
    } else {
        producers_.front().advance(*sent);
    }
    co_return true;
}

// Resumes the writer at the end of this turn: its send then carries what the rest of the turn
// pushes, and goes to the kernel with the next poll instead of costing a poll of its own.
struct channel::writer_turn_end {
    channel& ch;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) {
        ch.writer_scheduled_ = h;
        ch.owner().defer(h);
    }
    void await_resume() const noexcept { ch.writer_scheduled_ = {}; }
};

channel::gathered channel::gather(iovec (&iov)[max_iovecs]) noexcept {
    gathered g;
    std::size_t bytes = 0;
    for (std::size_t i = 0;
         i < out_.size() && g.parts < max_iovecs && bytes < options_.out_buffer_size; ++i) {
        entry& e = out_[i];
        if (e.what == entry::kind::close) {
            g.close = g.parts == 0;
            break;
        }
        if (e.what == entry::kind::producer) {
            g.producer = g.parts == 0;  // else: send what is gathered first (more() may await)
            break;
        }
        const std::size_t n = std::min(e.data.size() - e.offset, options_.out_buffer_size - bytes);
        iov[g.parts++] = {e.data.data() + e.offset, n};
        bytes += n;
    }
    return g;
}

void channel::close_at_marker() noexcept {
    // What was pushed after the marker is never sent (asynchat's behaviour): it is not output
    // cut short, so the close is an orderly one.
    while (!out_.empty()) {
        drop_last();
    }
    shut({});
}

std::optional<producers::file_region> channel::region_to_send() {
    if (!options_.zero_copy || !io_->sends_files()) {
        return std::nullopt;
    }
    auto region = producers_.front().region();
    if (!region || region->length == 0) {
        return std::nullopt;
    }
    return region;
}

bool channel::queue_produced(producers::chunk next) {
    in_flight_entries_ = 0;
    if (!open_) {
        drop_output();
        return false;
    }
    if (std::exchange(discard_in_flight_, false)) {
        drop_front();  // discarded while it produced: drop it and its chunk
    } else if (next.empty()) {
        drop_front();  // exhausted
    } else {
        // The producer is at the front; its chunk goes before it.
        queued_bytes_ += next.size();
        keep_off_inline(next);
        out_.push_front(entry{std::move(next), 0, entry::kind::bytes});
    }
    return true;
}

void channel::producer_failed(std::exception_ptr failure) noexcept {
    in_flight_entries_ = 0;
    std::error_code why = std::make_error_code(std::errc::io_error);
    try {
        std::rethrow_exception(failure);
    } catch (const std::system_error& ex) {
        log::error("producer failed: {}; closing the channel", ex.what());
        why = ex.code();
    } catch (const std::exception& ex) {
        log::error("producer failed: {}; closing the channel", ex.what());
    } catch (...) {
        log::error("producer failed; closing the channel");
    }
    shut(why);
}

bool channel::sent_gathered(const result<std::size_t>& sent, std::size_t parts) noexcept {
    in_flight_entries_ = 0;
    const bool counted = std::exchange(sent_counted_, false);  // by on_sent
    const bool discarded = std::exchange(discard_in_flight_, false);
    if (!sent) {
        if (open_) {
            shut(io_->failure() ? io_->failure() : sent.error());  // the transport's cause
        }
        drop_output();
        return false;
    }
    // Pop what went out; a short send leaves the rest at the front.
    std::size_t left = *sent;
    std::size_t done = 0;
    if (!counted) {
        count_sent(left);
    }
    while (left > 0) {
        entry& e = out_.front();
        const std::size_t n = std::min(left, e.data.size() - e.offset);
        e.offset += n;
        left -= n;
        if (e.offset == e.data.size()) {
            pop_sent();
            ++done;
        }
    }
    if (discarded) {
        // discard_buffers() ran during the send: the rest of the entries it gathered (still at
        // the front) is dropped too, as asynchat empties its whole fifo.
        for (; done < parts; ++done) {
            if (open_) {
                queued_bytes_ -= out_.front().data.size() - out_.front().offset;
            }
            drop_front();
        }
    }
    if (below_low_water()) {
        wake(waiter::until::room);
    }
    return true;
}

channel::writer_coroutine channel::write_loop() {
    struct running {  // however the frame ends (the loop, or the channel's destructor)
        channel& ch;
        ~running() { ch.writer_ = {}; }
    } guard{*this};
    co_await writer_turn_end{*this};  // started by the first push: the turn's pushes go with it
    iovec iov[max_iovecs];
    while (open_) {
        if (out_.empty()) {
            // Everything queued went out. The writer ends (an idle channel keeps no frame);
            // the next push starts another.
            wake(waiter::until::empty);
            co_return;
        }
        const gathered g = gather(iov);
        if (g.close) {
            close_at_marker();
            co_return;
        }
        if (g.producer) {
            // Its next chunk goes to the front of the queue, and is gathered next time round.
            if (auto region = region_to_send()) {
                const bool sent = co_await send_region(*region);
                if (!sent) {
                    co_return;
                }
                continue;
            }
            producers::any_producer& source = producers_.front();
            producers::chunk next;
            in_flight_entries_ = 1;  // the producer's entry: discard_buffers() must not free it
            try {
                // TRICKY: not `c ? more_now() : co_await more_later()`: GCC 12 copies the
                // string a co_await inside ?: yields bitwise (its SSO pointer then points
                // into this frame; freeing it is a bad free). Keep co_await out of ?:.
                if (source.is_sync()) {
                    next = source.more_now();
                } else {
                    // TRICKY: more()'s coroutine points into the producer, and producers_
                    // moves what it holds when it grows (a push while this waits): the
                    // producer waits on the heap (not in the writer's frame, which every
                    // connection has) and goes back after.
                    auto awaited = std::make_unique<producers::any_producer>(std::move(source));
                    next = co_await awaited->more_later();
                    producers_.front() = std::move(*awaited);
                }
            } catch (...) {
                producer_failed(std::current_exception());
                co_return;
            }
            if (!queue_produced(std::move(next))) {
                co_return;
            }
            continue;
        }
        if (g.parts == 0) {
            continue;
        }
        in_flight_entries_ = g.parts;
        // (One part goes as a plain send: sendmsg would copy an iovec and a msghdr in for
        // nothing.)
        send_operation send(*io_, std::span<const iovec>(iov, g.parts));
        if (options_.write_timeout.count() > 0) {
            // Starts only if the send has to wait: one the kernel takes at once costs no
            // clock read and no timer (on io_uring no linked timeout, an SQE and a CQE).
            send.set_timeout_if_blocked(options_.write_timeout);
        }
        send.set_on_complete(&on_sent, this);
        const std::uint64_t sent_in = owner().turn();
        sending_ = &send.request();
        result<std::size_t> sent = co_await send;
        sending_ = nullptr;
        if (!sent_gathered(sent, g.parts)) {
            co_return;
        }
        if (open_ && !out_.empty() && owner().turn() != sent_in) {
            // The send waited, and its completion resumed us in the middle of a turn: the next
            // one goes at the turn's end, with what the rest of the turn pushes, as the first
            // one did. (Sent now, on io_uring it would wait for the next poll anyway, with the
            // turn's pushes piling up behind it.)
            co_await writer_turn_end{*this};
        }
    }
    drop_output();  // closed: what a send in progress pointed into is no longer needed
}

}  // namespace ringchat::chat
