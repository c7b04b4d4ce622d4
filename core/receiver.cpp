// SPDX-License-Identifier: MIT
// The multishot recv state machine: completions → queue of chunks → the one consumer.
#include "receiver.hpp"

#include <algorithm>
#include <cerrno>

#include "reactor.hpp"
#include "socket.hpp"

namespace ringchat {

receiver::receiver(socket& s) noexcept : receiver(s.owner(), s.fd()) {}

receiver::receiver(reactor& r, int fd) noexcept : reactor_(&r), fd_(fd) {
    req_.op = opcode::recv_multishot;
    req_.fd = fd;
    req_.owner = this;
    req_.on_complete = &on_recv;
    buffer_wait_.owner = this;
    buffer_wait_.notify = &on_buffer;
}

receiver::~receiver() {
    backend& b = reactor_->io();
    b.stop_waiting_for_buffer(buffer_wait_);
    waiter_ = {};
    if (woken_) {
        reactor_->unschedule(woken_);  // its coroutine dies with us before it resumed
    }
    // Completions that arrive while the cancel is on its way are queued (and their buffers
    // released below); nobody is resumed.
    b.cancel_and_wait(req_);
    if (timer_) {
        b.cancel_and_wait(*timer_);
    }
    for (; !chunks_.empty(); chunks_.pop_front()) {
        if (chunks_.front().has_buffer && !chunks_.front().spilled) {
            b.release_buffer(chunks_.front().id);
        }
    }
}

void receiver::arm() noexcept {
    if (req_.in_flight || eof_ || error_ || starved_) {
        return;
    }
    paused_ = false;
    req_.on_complete = &on_recv;
    if (!reactor_->start(req_)) {
        error_ = errno_code(req_.res);  // refused at once: the reactor is stopping
        if (waiter_) {
            wake_waiter(reactor_->io().deferred());
        }
    }
}

bool receiver::has_result() noexcept {
    if (!chunks_.empty() || eof_ || error_ || timed_out_) {
        return true;
    }
    arm();
    return error_ ? true : false;
}

void receiver::next_awaitable::await_suspend(std::coroutine_handle<> h) noexcept {
    r_.waiter_ = h;
    if (r_.deadline_ == clock::time_point::max()) {
        return;
    }
    backend& b = r_.reactor_->io();
    if (!r_.timer_) {
        // Made at the first wait with a deadline, then kept: a connection that never has
        // one (an echo session between frames) does not carry its 136 bytes. TRICKY:
        // noexcept, so an allocation that fails ends the process, as in spill().
        r_.timer_ = std::make_unique<io_request>();
        r_.timer_->op = opcode::sleep;
        r_.timer_->owner = &r_;
        r_.timer_->on_complete = &on_timer;
    }
    io_request& timer = *r_.timer_;
    if (timer.in_flight && timer.deadline != r_.deadline_) {
        b.cancel_and_wait(timer);  // rare: the deadline moved while a timer was pending
    }
    // A timer still in flight has this deadline. Where its cancel (a chunk came) is on its
    // way (io_uring), on_timer() arms it again when the cancel completes.
    if (!timer.in_flight) {
        r_.arm_timer(b.deferred());
    }
}

void receiver::arm_timer(ready_queue& ready) noexcept {
    io_request& timer = *timer_;
    timer.deadline = deadline_;
    if (!reactor_->start(timer)) {
        timed_out_ = timer.res == 0;
        if (!timed_out_) {
            error_ = errno_code(timer.res);
        }
        wake_waiter(ready);
    }
}

void receiver::wake_waiter(ready_queue& ready) noexcept {
    woken_ = std::exchange(waiter_, {});
    ready.push_back(woken_);
}

result<recv_buffer> receiver::take() noexcept {
    woken_ = {};
    if (!chunks_.empty()) {
        // Data wins over a deadline that fired in the same turn; the timeout is spent.
        timed_out_ = false;
        const chunk c = chunks_.front();
        chunks_.pop_front();
        if (paused_ && chunks_.size() < max_queued / 2) {
            arm();  // the consumer caught up: receive again (after the pause's cancel)
        }
        if (c.spilled) {
            auto bytes = std::move(spilled_.front());
            spilled_.pop_front();
            return recv_buffer(std::move(bytes), static_cast<std::uint32_t>(c.res));
        }
        return recv_buffer(reactor_->io(), c.id, c.offset, static_cast<std::uint32_t>(c.res));
    }
    if (timed_out_) {
        timed_out_ = false;
        return std::error_code(ETIMEDOUT, std::system_category());
    }
    if (error_) {
        return error_;
    }
    return recv_buffer();  // end of stream
}

void receiver::cancel() noexcept {
    if (!error_) {
        error_ = std::error_code(ECANCELED, std::system_category());
    }
    detail::cancel_io(*reactor_, req_);
    if (waiter_) {
        wake_waiter(reactor_->io().deferred());
    }
}

void receiver::on_recv(io_request& r, ready_queue& ready) noexcept {
    auto& self = *static_cast<receiver*>(r.owner);
    backend& b = self.reactor_->io();
    if (r.res > 0 && (r.result_flags & io_has_buffer) != 0) {
        self.chunks_.push_back({r.res, r.buffer_id, r.buffer_offset, true});
        if (self.paused_) {
            self.spill(self.chunks_.back());  // came in the burst before the stop landed
        } else if (self.chunks_.size() >= max_queued && r.in_flight && !r.cancel_requested) {
            // The consumer is not taking them: stop receiving (take() re-arms), and hold
            // none of the pool meanwhile.
            self.paused_ = true;
            detail::cancel_io(*self.reactor_, r);
            for (std::size_t i = 0; i < self.chunks_.size(); ++i) {
                self.spill(self.chunks_[i]);
            }
        }
    } else if (r.res == -ECANCELED && self.paused_ && !self.error_) {
        // The pause's own cancel: no error. The consumer may have caught up meanwhile.
        if (self.chunks_.size() < max_queued / 2) {
            self.arm();
        }
        return;
    } else if (r.res == 0) {
        self.eof_ = true;
    } else if (r.res == -ENOBUFS) {
        // The pool ran dry: wait for a buffer to come back, then re-arm. The connection is
        // fine; it just has to wait its turn.
        if (b.free_buffers() > 0) {
            self.arm();
        } else {
            self.starved_ = true;
            b.wait_for_buffer(self.buffer_wait_);
        }
        return;
    } else if (r.res < 0 && !self.error_) {
        self.error_ = errno_code(r.res);
    }
    if (self.waiter_) {
        self.wake_waiter(ready);
        if (self.timer_) {
            detail::cancel_io(*self.reactor_, *self.timer_);
        }
    }
}

void receiver::spill(chunk& c) noexcept {
    if (!c.has_buffer || c.spilled) {
        return;
    }
    backend& b = reactor_->io();
    const auto from = b.buffer(c.id).subspan(c.offset, static_cast<std::size_t>(c.res));
    // TRICKY: noexcept, so an allocation that fails ends the process, as it would anywhere
    // else in the harvest; the copy is bounded (max_queued plus one burst, 16 KiB each).
    auto bytes = std::make_unique_for_overwrite<std::byte[]>(from.size());
    std::copy(from.begin(), from.end(), bytes.get());
    b.release_buffer(c.id);
    // The spilled chunks are the oldest not taken yet, so spilled_ stays in chunk order.
    spilled_.push_back(std::move(bytes));
    c.spilled = true;
}

void receiver::on_timer(io_request& r, ready_queue& ready) noexcept {
    auto& self = *static_cast<receiver*>(r.owner);
    if (!self.waiter_) {
        return;
    }
    if (r.res == 0) {
        self.timed_out_ = true;
        self.wake_waiter(ready);
    } else if (r.res == -ECANCELED && r.deadline == self.deadline_) {
        // TRICKY: cancelled by on_recv() when a chunk came, but the consumer took it and
        // waits again with the same deadline before the cancel completed (io_uring's cancel
        // is asynchronous), so await_suspend() found this timer in flight and kept it. Armed
        // again, or that wait would have no deadline at all (a peer that sent a piece of a
        // frame and stopped was never timed out). Not in cancel_and_wait()'s wait: there the
        // deadline moved.
        self.arm_timer(ready);
    }
}

bool receiver::on_buffer(backend::buffer_waiter& w) noexcept {
    auto& self = *static_cast<receiver*>(w.owner);
    self.starved_ = false;
    if (!self.waiter_) {
        return false;  // arms when next() is called
    }
    self.arm();
    return self.req_.in_flight;
}

}  // namespace ringchat
