// SPDX-License-Identifier: MIT
// chat/channel.cpp — read() over the framer, and the writer coroutine over the output FIFO.
#include "channel.hpp"

#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <exception>
#include <memory>
#include <system_error>
#include <utility>

#include "../core/error.hpp"
#include "../core/log.hpp"
#include "../core/reactor.hpp"
#include "socket_transport.hpp"

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

/// Parts in one gathered send. Pushes coalesce into chunks of up to coalesce_limit, so 16
/// parts hold out_buffer_size's 64 KiB; the array lives in the writer's frame, one per
/// connection, so it is kept small.
constexpr std::size_t max_iovecs = 16;

}  // namespace

channel::channel(ringchat::socket s, channel_options options)
    : channel(std::make_unique<socket_transport>(std::move(s)), options) {}

channel::channel(std::unique_ptr<chat::transport> t, channel_options options)
    : io_(std::move(t)),
      options_(options),
      framer_(options.max_frame),
      input_pause_(options.high_water != 0 ? options.high_water : SIZE_MAX),
      output_cap_(options.max_output != 0 ? options.max_output : SIZE_MAX),
      last_activity_(clock::now()) {
    owner().add_stop_hook(stop_hook_);
}

void channel::on_reactor_stop(reactor::stop_hook& h) noexcept {
    auto& self = *static_cast<channel*>(h.owner);
    if (self.waiting_for_frame_) {
        self.io_->stop_receiving();  // the reader wakes with ECANCELED: the input ends (stopped)
    }
}

struct channel::output_room {
    channel& ch;
    bool await_ready() const noexcept { return !ch.open_ || ch.below_low_water(); }
    void await_suspend(std::coroutine_handle<> h) { ch.drain_waiters_.push_back(h); }
    void await_resume() const noexcept {}
};

bool channel::overflows(std::size_t n) noexcept {
    if (queued_bytes_ - n <= options_.high_water) {
        return false;  // one large reply into a queue that was not backed up
    }
    reset_on_shut_ = true;  // what was refused never reaches the peer: it must not see a FIN
    shut(make_error_code(errc::output_overflow));
    return true;
}

struct channel::next_turn {
    channel& ch;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) { ch.owner().schedule(h); }
    void await_resume() const noexcept {}
};

bool channel::input_budget_spent() noexcept {
    if (options_.input_per_turn == 0) {
        return false;
    }
    if (const std::uint64_t turn = owner().turn(); turn != input_turn_) {
        input_turn_ = turn;
        input_this_turn_ = 0;
    }
    return input_this_turn_ >= options_.input_per_turn;
}

void channel::count_input(std::size_t n) noexcept {
    // TRICKY: counted for the turn it is taken in. A chunk the reader waited for arrives in
    // a turn no budget check has seen yet: added to the last turn's count (which the next
    // check resets), it was free, and every turn framed a chunk more than input_per_turn
    // allows (the chatroom: two 16 KiB chunks per member per turn instead of one).
    if (const std::uint64_t turn = owner().turn(); turn != input_turn_) {
        input_turn_ = turn;
        input_this_turn_ = 0;
    }
    input_this_turn_ += n;
}

channel::~channel() {
    reactor& r = owner();
    r.remove_stop_hook(stop_hook_);
    // The writer dies with the channel: it must not be resumed afterwards.
    writer_waiting_ = {};
    shut(reason_);
    if (writer_scheduled_) {
        r.unschedule(writer_scheduled_);
    }
    // The writer (if any) is destroyed with writer_; an operation it awaits is cancelled and
    // waited for by that operation's awaitable.
}

clock::time_point channel::read_deadline(clock::time_point started, bool in_frame) noexcept {
    clock::time_point t = clock::time_point::max();
    if (options_.read_timeout.count() > 0) {
        t = started + options_.read_timeout;
    }
    if (options_.idle_timeout.count() > 0) {
        t = std::min(t, last_activity_ + options_.idle_timeout);
    }
    if (in_frame && options_.frame_timeout.count() > 0) {
        // Stamped at the first wait with the frame in progress (its first bytes came in the
        // chunk just framed); a frame handed out clears it. The clock is read only here.
        if (frame_since_ == clock::time_point()) {
            frame_since_ = clock::now();
        }
        t = std::min(t, frame_since_ + options_.frame_timeout);
    }
    return t;
}

channel::timeout_kind channel::classify_timeout(const result<recv_buffer>& chunk,
                                                clock::time_point started,
                                                bool in_frame) noexcept {
    if (chunk || chunk.error() != std::errc::timed_out) {
        return timeout_kind::none;
    }
    const auto now = clock::now();
    const bool idle_passed = options_.idle_timeout.count() > 0 &&
                             now >= last_activity_ + options_.idle_timeout;
    const bool read_passed = options_.read_timeout.count() > 0 &&
                             now >= started + options_.read_timeout;
    if (idle_passed || read_passed) {
        return timeout_kind::closing;
    }
    if (in_frame && options_.frame_timeout.count() > 0 &&
        frame_since_ != clock::time_point() && now >= frame_since_ + options_.frame_timeout) {
        return timeout_kind::frame;
    }
    // The receiver's deadline was the idle one, but output kept the channel busy meanwhile.
    return timeout_kind::renewed;
}

void channel::end_input(std::error_code why, frame& out) {
    input_done_ = true;
    input_error_ = why;
    io_->stop_receiving();
    frame_since_ = clock::time_point();
    out = frame::end(input_error_, framer_.partial());
}

task<result<recv_buffer>> channel::read_chunk(bool in_frame) {
    // Back-pressure: no more input while the output is above high water.
    if (input_paused()) {
        co_await drain();
    }
    if (!in_frame) {
        frame_since_ = clock::time_point();
    }
    const auto started = read_started();
    for (;;) {
        if (!open_ || input_done_) {
            co_return recv_buffer();
        }
        if (io_->received() > 0 && input_budget_spent()) {
            co_await next_turn{*this};  // fairness: the rest of the backlog next turn
        }
        if (stop_ends_input(in_frame) && io_->received() == 0) {
            input_done_ = true;  // a graceful stop: no new record is waited for
            input_error_ = make_error_code(errc::stopped);
            io_->stop_receiving();
            co_return input_error_;
        }
        waiting_for_frame_ = !in_frame;
        auto chunk = co_await receive_awaitable(*io_, read_deadline(started, in_frame));
        waiting_for_frame_ = false;
        if (stopped_by(chunk, in_frame)) {
            input_done_ = true;  // the stop hook ended this wait
            input_error_ = make_error_code(errc::stopped);
            co_return input_error_;
        }
        if (classify_timeout(chunk, started, in_frame) == timeout_kind::renewed) {
            continue;
        }
        if (!chunk) {
            if (!open_) {
                co_return recv_buffer();  // closed here; close_reason() says why
            }
            shut(chunk.error());
            co_return chunk.error();
        }
        if (chunk->empty()) {
            input_done_ = true;  // end of stream
            co_return recv_buffer();
        }
        note_activity();
        stats_.bytes_received += chunk->size();
        count_input(chunk->size());
        co_return std::move(*chunk);
    }
}

bool channel::take_chunk(result<recv_buffer> chunk, frame& out) {
    if (chunk && !chunk->empty()) {
        note_activity();
        stats_.bytes_received += chunk->size();
        count_input(chunk->size());
        current_ = std::move(*chunk);
        framer_.feed(current_.data());
        return false;
    }
    if (!chunk && open_) {
        shut(chunk.error());
        out = frame::end(chunk.error(), framer_.partial());
        return true;
    }
    if (chunk) {
        input_done_ = true;  // end of stream
    }
    // A clean end of stream has no error; closed here without a reason of its own (close(),
    // close_when_done(), finish()) gives ECANCELED, as documented.
    const std::error_code why =
        open_ ? input_error_
              : (reason_ ? reason_ : std::make_error_code(std::errc::operation_canceled));
    out = frame::end(why, framer_.partial());
    return true;
}

bool channel::try_frame_after(framer::status got, std::span<const std::byte> data, frame& out) {
    for (;; got = framer_.next(data)) {
        switch (got) {
        case framer::status::frame:
            out.hold(data);
            frame_since_ = clock::time_point();
            return true;
        case framer::status::piece:
            out.hold(data, true);  // the frame goes on: its deadline too
            return true;
        case framer::status::too_long:
            out = frame::end(make_error_code(errc::frame_too_long), {});
            frame_since_ = clock::time_point();
            return true;
        case framer::status::need_more:
            break;
        }
        current_.release();
        if (!open_ || input_done_) {
            return take_chunk(recv_buffer(), out);
        }
        // Fairness: past this turn's budget, the reader takes the next chunk next turn.
        if (input_budget_spent()) {
            return false;
        }
        auto chunk = io_->try_receive();
        if (!chunk) {
            return false;  // must wait: the reader coroutine does that
        }
        // The stop hook cancelled the receiver while a chunk was on its way: that chunk was
        // framed above, and the cancel it left queued ends the input as a stop, not as an
        // error (which would drop the answer being queued to what came before it).
        if (stopped_by(*chunk, framer_.mid_frame())) {
            end_input(make_error_code(errc::stopped), out);
            return true;
        }
        // A timeout that fired while frames were being cut: judged as the reader judges it.
        switch (classify_timeout(*chunk, read_started(), framer_.mid_frame())) {
        case timeout_kind::renewed:
            return false;
        case timeout_kind::frame:
            end_input(std::error_code(ETIMEDOUT, std::system_category()), out);
            return true;
        case timeout_kind::none:
        case timeout_kind::closing:
            break;
        }
        if (take_chunk(std::move(*chunk), out)) {
            return true;
        }
    }
}

task<> channel::read_loop() {
    // Parks the reader between requests; hands the frame to the caller that asked for it.
    struct park {
        channel& ch;
        bool await_ready() const noexcept { return false; }
        std::coroutine_handle<> await_suspend(std::coroutine_handle<> h) noexcept {
            ch.reader_ = h;
            if (auto caller = std::exchange(ch.reader_consumer_, {})) {
                if (ch.reader_inline_) {
                    // The caller's await_suspend is running us: it goes on by itself.
                    ch.framed_inline_ = true;
                    return std::noop_coroutine();
                }
                return caller;
            }
            return std::noop_coroutine();
        }
        void await_resume() const noexcept { ch.reader_ = {}; }
    };
    for (;;) {
        co_await park{*this};
        // Back-pressure: no frame for the session while its output is above high water;
        // the peer's bytes wait in the kernel (and fill its send buffer) meanwhile.
        if (input_paused()) {
            co_await drain();  // a coroutine frame, but only while paused
            nothing_buffered_ = false;  // read() did not look: look now
        }
        const auto started = read_started();
        // read() has just looked in what is buffered, unless it found the reader busy.
        bool framed = !std::exchange(nothing_buffered_, false) && try_frame(reader_frame_);
        while (!framed) {
            if (io_->received() > 0 && input_budget_spent()) {
                co_await next_turn{*this};  // fairness: the rest of the backlog next turn
            }
            const bool in_frame = framer_.mid_frame();
            if (stop_ends_input(in_frame) && io_->received() == 0) {
                // A graceful stop: no new frame is waited for; the output goes on.
                end_input(make_error_code(errc::stopped), reader_frame_);
                framed = true;
                continue;
            }
            waiting_for_frame_ = !in_frame;
            auto chunk = co_await receive_awaitable(*io_, read_deadline(started, in_frame));
            waiting_for_frame_ = false;
            if (stopped_by(chunk, in_frame)) {
                end_input(make_error_code(errc::stopped), reader_frame_);  // the stop hook
                framed = true;
                continue;
            }
            switch (classify_timeout(chunk, started, in_frame)) {
            case timeout_kind::renewed:
                continue;
            case timeout_kind::frame:
                end_input(std::error_code(ETIMEDOUT, std::system_category()), reader_frame_);
                framed = true;
                continue;
            case timeout_kind::none:
            case timeout_kind::closing:
                break;
            }
            framed = take_chunk(std::move(chunk), reader_frame_) || try_frame(reader_frame_);
        }
    }
}

bool channel::read_awaitable::await_suspend(std::coroutine_handle<> h) {
    channel& ch = *ch_;
    if (!ch.reader_task_.valid()) {
        ch.reader_task_ = ch.read_loop();
        ch.reader_task_.start();  // runs to its first park
    }
    waiting_ = h;
    ch.reader_consumer_ = h;
    auto reader = std::exchange(ch.reader_, {});
    if (!reader) {
        // Still serving a read() whose caller went away: it hands its frame to us when done.
        return true;
    }
    // TRICKY: the reader runs here, not by symmetric transfer, and when it frames input that
    // had already arrived, it parks without resuming us: we go on at once (false), on this
    // stack frame. Transfers both ways nested a frame per received chunk where GCC does not
    // make them tail calls (-O0, ASan). When the reader has to wait for input, it resumes
    // us once the frame is there.
    ch.reader_inline_ = true;
    reader.resume();
    ch.reader_inline_ = false;
    return !std::exchange(ch.framed_inline_, false);
}

channel::frame_stream::iterator& channel::frame_stream::step::await_resume() noexcept {
    s->current_ = read.await_resume();
    const bool goes_on =
        static_cast<bool>(s->current_) || s->current_.error() == errc::frame_too_long;
    if (!goes_on) {
        s->error_ = s->current_.error();
    }
    s->position_ = goes_on ? iterator(s) : iterator();
    if (it != nullptr) {
        *it = s->position_;
    }
    return s->position_;
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

void channel::discard_buffers() {
    // The chunk the last frame may point into is kept: the frame stays valid until the next
    // read(), which releases the chunk once the framer needs more.
    framer_.discard();
    // The entries a send in progress (or a producer's more()) points into stay until it
    // completes; the writer then drops what is left of them (discard_in_flight_).
    while (out_.size() > in_flight_entries_) {
        drop_last();
    }
    discard_in_flight_ = in_flight_entries_ > 0;
}

void channel::start_writer() {
    writer_ = write_loop();
    writer_.start();
}

void channel::schedule_writer() {
    if (writer_waiting_) {
        // At the end of this turn: one send for everything this turn pushes, and that send
        // goes to the kernel with the next poll instead of costing a poll of its own.
        writer_scheduled_ = std::exchange(writer_waiting_, {});
        owner().defer(writer_scheduled_);
    }
}

void channel::wake_all(std::vector<std::coroutine_handle<>>& waiters) {
    for (auto h : waiters) {
        owner().schedule(h);
    }
    waiters.clear();
}

void channel::shut(std::error_code why) noexcept {
    if (!open_) {
        return;
    }
    open_ = false;
    reason_ = why;
    io_->stop_receiving();
    if (sending_ != nullptr) {
        io_->cancel_send(*sending_);
    }
    if (queued_bytes_ > 0 || !producers_.empty() || reset_on_shut_ || unserved_input()) {
        // Output is dropped: the peer must not take what it got for all there was (a FIN
        // after half a body reads as a complete response). Or a graceful stop left a request
        // unread: a FIN would read as "closed while idle".
        io_->close_abortive();
    } else {
        io_->close_orderly();
    }
    // Nothing more is sent: drop the output, but not what a send in progress points into
    // (the writer drops that when the send comes back, cancelled).
    while (out_.size() > in_flight_entries_) {
        drop_last();
    }
    discard_in_flight_ = in_flight_entries_ > 0;
    wake(drain_waiters_);
    wake(close_waiters_);
    wake(flush_waiters_);
    schedule_writer();
}

bool channel::unserved_input() const noexcept {
    // On a stop's close only: the peek it may cost is paid then, not per connection.
    return input_error_ == errc::stopped && io_->input_waiting();
}

void channel::count_sent(std::size_t n) noexcept {
    ++stats_.sends;
    stats_.bytes_sent += n;
    queued_bytes_ -= n;
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
        if (self.below_low_water()) {
            ready.insert(ready.end(), self.drain_waiters_.begin(), self.drain_waiters_.end());
            self.drain_waiters_.clear();
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
        co_await output_room{*this};
    }
}

task<> channel::flush() {
    struct waiter {
        channel& ch;
        bool await_ready() const noexcept { return !ch.open_ || ch.out_.empty(); }
        void await_suspend(std::coroutine_handle<> h) { ch.flush_waiters_.push_back(h); }
        void await_resume() const noexcept {}
    };
    while (open_ && !out_.empty()) {
        co_await waiter{*this};
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
    struct waiter {
        channel& ch;
        bool await_ready() const noexcept { return !ch.open_; }
        void await_suspend(std::coroutine_handle<> h) { ch.close_waiters_.push_back(h); }
        void await_resume() const noexcept {}
    };
    co_await waiter{*this};
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
            shut(sent.error());
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

task<> channel::write_loop() {
    struct parked {
        channel& ch;
        bool await_ready() const noexcept { return !ch.out_.empty() || !ch.open_; }
        void await_suspend(std::coroutine_handle<> h) noexcept { ch.writer_waiting_ = h; }
        void await_resume() const noexcept { ch.writer_scheduled_ = {}; }
    };
    // Started by the first push: send at the turn's end, with what the rest of it pushes.
    struct to_turn_end {
        channel& ch;
        bool await_ready() const noexcept { return false; }
        void await_suspend(std::coroutine_handle<> h) {
            ch.writer_scheduled_ = h;
            ch.owner().defer(h);
        }
        void await_resume() const noexcept { ch.writer_scheduled_ = {}; }
    };
    co_await to_turn_end{*this};
    iovec iov[max_iovecs];
    while (open_) {
        if (out_.empty()) {
            wake(flush_waiters_);  // everything queued went out
            co_await parked{*this};
            continue;
        }
        // Gather from the front: bytes as they are, producers asked for more() on the way.
        std::size_t parts = 0;
        std::size_t bytes = 0;
        bool close_after = false;
        for (std::size_t i = 0; i < out_.size() && parts < max_iovecs &&
                                bytes < options_.out_buffer_size;) {
            entry& e = out_[i];
            if (e.what == entry::kind::close) {
                close_after = parts == 0;
                break;
            }
            if (e.what == entry::kind::producer) {
                if (parts > 0) {
                    break;  // send what is gathered before asking (more() may await)
                }
                // The entry is at the front (i == 0), so its producer is producers_'s first.
                producers::any_producer& source = producers_.front();
                if (options_.zero_copy && io_->sends_files()) {
                    if (auto region = source.region(); region && region->length > 0) {
                        const bool sent = co_await send_region(*region);
                        if (!sent) {
                            co_return;
                        }
                        continue;
                    }
                }
                producers::chunk next;
                in_flight_entries_ = 1;  // i == 0 here; discard_buffers() must not free it
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
                } catch (const std::system_error& ex) {
                    log::error("producer failed: {}; closing the channel", ex.what());
                    in_flight_entries_ = 0;
                    shut(ex.code());
                    co_return;
                } catch (const std::exception& ex) {
                    log::error("producer failed: {}; closing the channel", ex.what());
                    in_flight_entries_ = 0;
                    shut(std::make_error_code(std::errc::io_error));
                    co_return;
                }
                in_flight_entries_ = 0;
                if (!open_) {
                    drop_output();
                    co_return;
                }
                if (std::exchange(discard_in_flight_, false)) {
                    drop_front();  // discarded while it produced: drop it and its chunk
                    continue;
                }
                // i == 0: the producer is at the front; its chunk goes before it.
                if (next.empty()) {
                    drop_front();
                } else {
                    queued_bytes_ += next.size();
                    keep_off_inline(next);
                    out_.push_front(entry{std::move(next), 0, entry::kind::bytes});
                }
                continue;
            }
            const std::size_t n =
                std::min(e.data.size() - e.offset, options_.out_buffer_size - bytes);
            iov[parts++] = {e.data.data() + e.offset, n};
            bytes += n;
            ++i;
        }
        if (close_after) {
            // What was pushed after the marker is never sent (asynchat's behaviour): it is
            // not output cut short, so the close is an orderly one.
            while (!out_.empty()) {
                drop_last();
            }
            shut({});
            co_return;
        }
        if (parts == 0) {
            continue;  // only exhausted producers were met
        }
        in_flight_entries_ = parts;
        // (One part goes as a plain send: sendmsg would copy an iovec and a msghdr in for
        // nothing.)
        send_operation send(*io_, std::span<const iovec>(iov, parts));
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
        in_flight_entries_ = 0;
        const bool counted = std::exchange(sent_counted_, false);  // by on_sent
        const bool discarded = std::exchange(discard_in_flight_, false);
        if (!sent) {
            if (open_) {
                shut(sent.error());
            }
            drop_output();
            co_return;
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
            // discard_buffers() ran during the send: the rest of the entries it gathered (still
            // at the front) is dropped too, as asynchat empties its whole fifo.
            for (; done < parts; ++done) {
                queued_bytes_ -= out_.front().data.size() - out_.front().offset;
                drop_front();
            }
        }
        if (below_low_water()) {
            wake(drain_waiters_);
        }
        if (open_ && !out_.empty() && owner().turn() != sent_in) {
            // The send waited, and its completion resumed us in the middle of a turn: the next
            // one goes at the turn's end, with what the rest of the turn pushes, as the first
            // one did. (Sent now, on io_uring it would wait for the next poll anyway, with the
            // turn's pushes piling up behind it.)
            co_await to_turn_end{*this};
        }
    }
    drop_output();  // closed: what a send in progress pointed into is no longer needed
}

}  // namespace ringchat::chat
