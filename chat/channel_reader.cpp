// SPDX-License-Identifier: MIT
// chat/channel_reader.cpp — a channel's input side: how a frame is cut and handed over.
//
// read() cuts a frame from what is buffered when it can (inline, no suspension); otherwise the
// channel's one reader coroutine (read_loop) waits on the transport for the next chunk, feeds
// the framer (chat/framer.hpp) and resumes the caller with the frame. Around that wait: the
// deadlines (idle, read, frame), fairness (input_per_turn bytes framed per reactor turn),
// back-pressure (no frame while the output is above high water) and a graceful stop (no new
// frame is waited for). read_chunk() is the same wait without the framer, for the facade.
#include "channel.hpp"

#include <algorithm>
#include <cerrno>
#include <system_error>
#include <utility>

#include "../core/error.hpp"
#include "../core/reactor.hpp"

namespace ringchat::chat {

void channel::on_reactor_stop(reactor::stop_hook& h) noexcept {
    auto& self = *static_cast<channel*>(h.owner);
    if (self.waiting_for_frame_) {
        self.io_->stop_receiving();  // the reader wakes with ECANCELED: the input ends (stopped)
    }
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
        // Also a stop or a timeout that came while frames were being cut: judged as the
        // reader judges what its wait ends with.
        if (const auto judged = judge_input(*chunk, read_started(), framer_.mid_frame(), out)) {
            return *judged;
        }
        if (take_chunk(std::move(*chunk), out)) {
            return true;
        }
    }
}

std::optional<bool> channel::judge_input(const result<recv_buffer>& chunk,
                                         clock::time_point started, bool in_frame, frame& out) {
    // The stop hook cancelled the receiver (while a chunk was on its way, that chunk was
    // framed first, and the cancel it left queued ends the input as a stop, not as an error,
    // which would drop the answer being queued to what came before it).
    if (stopped_by(chunk, in_frame)) {
        end_input(make_error_code(errc::stopped), out);
        return true;
    }
    switch (classify_timeout(chunk, started, in_frame)) {
    case timeout_kind::renewed:
        return false;
    case timeout_kind::frame:
        end_input(std::error_code(ETIMEDOUT, std::system_category()), out);
        return true;
    case timeout_kind::none:
    case timeout_kind::closing:
        break;
    }
    return std::nullopt;
}

bool channel::frame_received(result<recv_buffer>&& chunk, clock::time_point started,
                             bool in_frame) {
    waiting_for_frame_ = false;
    if (const auto judged = judge_input(chunk, started, in_frame, reader_frame_)) {
        return *judged;
    }
    return take_chunk(std::move(chunk), reader_frame_) || try_frame(reader_frame_);
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
            // Named, and its input taken from it by frame_received(): the frame of an idle
            // connection's reader holds the one result (see receive_awaitable).
            receive_awaitable wait(*io_, read_deadline(started, in_frame));
            co_await wait;
            framed = frame_received(std::move(wait.received()), started, in_frame);
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

bool channel::unserved_input() const noexcept {
    // On a stop's close only: the peek it may cost is paid then, not per connection.
    return input_error_ == errc::stopped && io_->input_waiting();
}

}  // namespace ringchat::chat
