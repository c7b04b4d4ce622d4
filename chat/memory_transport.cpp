// SPDX-License-Identifier: MIT
// chat/memory_transport.cpp — the scripted peer: queues of chunks in, a string out, timers.
#include "memory_transport.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>

#include "../core/reactor.hpp"

namespace ringchat::chat {

memory_transport::memory_transport(reactor& r) noexcept : transport(r) {
    receive_timer_.op = opcode::sleep;
    receive_timer_.owner = this;
    receive_timer_.on_complete = &on_receive_timer;
    send_timer_.op = opcode::sleep;
    send_timer_.owner = this;
    send_timer_.on_complete = &on_send_timer;
}

memory_transport::~memory_transport() {
    backend& b = owner().io();
    if (woken_) {
        owner().unschedule(woken_);  // its coroutine dies before us, before it resumed
    }
    if (receive_timer_.in_flight) {
        b.abandon(receive_timer_);
    }
    if (send_timer_.in_flight) {
        b.abandon(send_timer_);
    }
    if (parked_ != nullptr) {
        parked_->in_flight = false;  // its awaiter is gone or going (abandon_send)
    }
}

// Input.

void memory_transport::feed(std::string_view bytes) {
    if (bytes.empty()) {
        return;
    }
    auto copy = std::make_unique_for_overwrite<std::byte[]>(bytes.size());
    std::memcpy(copy.get(), bytes.data(), bytes.size());
    chunks_.push_back({std::move(copy), static_cast<std::uint32_t>(bytes.size())});
    wake_receiver();
}

void memory_transport::feed(std::span<const std::string> chunks) {
    for (const auto& c : chunks) {
        feed(c);
    }
}

void memory_transport::feed_end() noexcept {
    input_ended_ = true;
    wake_receiver();
}

void memory_transport::feed_error(std::error_code why) noexcept {
    if (!input_error_) {
        input_error_ = why;
    }
    wake_receiver();
}

std::optional<result<recv_buffer>> memory_transport::try_receive() noexcept {
    woken_ = {};
    if (!chunks_.empty()) {
        timed_out_ = false;  // data wins over a deadline that passed meanwhile
        chunk c = std::move(chunks_.front());
        chunks_.pop_front();
        return recv_buffer(std::move(c.bytes), c.size);
    }
    if (timed_out_) {
        timed_out_ = false;
        return result<recv_buffer>(std::error_code(ETIMEDOUT, std::system_category()));
    }
    if (input_error_) {
        return result<recv_buffer>(input_error_);
    }
    if (input_ended_) {
        return result<recv_buffer>(recv_buffer());
    }
    return std::nullopt;
}

void memory_transport::wait_receive(std::coroutine_handle<> h,
                                    clock::time_point deadline) noexcept {
    waiter_ = h;
    if (deadline == clock::time_point::max()) {
        return;
    }
    backend& b = owner().io();
    if (receive_timer_.in_flight &&
        (receive_timer_.deadline != deadline || receive_timer_.cancel_requested)) {
        // The deadline moved, or the last wait's timer is still on its way out: its end
        // (ECANCELED, which on_receive_timer ignores) comes first.
        b.cancel_and_wait(receive_timer_);
    }
    if (!receive_timer_.in_flight) {
        receive_timer_.deadline = deadline;
        if (!owner().start(receive_timer_)) {
            timed_out_ = receive_timer_.res == 0;
            if (!timed_out_) {
                input_error_ = errno_code(receive_timer_.res);  // refused: the reactor stops
            }
            wake_receiver();
        }
    }
}

void memory_transport::stop_receiving() noexcept {
    if (!input_error_) {
        input_error_ = std::error_code(ECANCELED, std::system_category());
    }
    wake_receiver();
}

void memory_transport::wake_receiver() noexcept {
    if (!waiter_) {
        return;
    }
    woken_ = std::exchange(waiter_, {});
    owner().io().deferred().push_back(woken_);
    if (receive_timer_.in_flight && !receive_timer_.cancel_requested) {
        receive_timer_.cancel_requested = true;
        owner().io().cancel(receive_timer_);
    }
}

void memory_transport::on_receive_timer(io_request& r, ready_queue& ready) noexcept {
    auto& self = *static_cast<memory_transport*>(r.owner);
    if (r.res == 0 && self.waiter_) {
        self.timed_out_ = true;
        self.woken_ = std::exchange(self.waiter_, {});
        ready.push_back(self.woken_);
    }
}

// Output.

std::size_t memory_transport::room() const noexcept {
    std::size_t n = window_ > sent_.size() ? window_ - sent_.size() : 0;
    if (capacity_ != 0) {
        n = std::min(n, capacity_);
    }
    return n;
}

std::size_t memory_transport::take(const io_request& r) {
    std::size_t left = room();
    std::size_t taken = 0;
    const auto append = [&](const void* data, std::size_t len) {
        const std::size_t n = std::min(left, len);
        sent_.append(static_cast<const char*>(data), n);
        left -= n;
        taken += n;
    };
    if (r.op == opcode::send) {
        append(r.buf, r.len);
    } else if (r.op == opcode::sendmsg) {
        const auto& msg = *static_cast<const msghdr*>(r.buf);
        for (std::size_t i = 0; i < msg.msg_iovlen && left > 0; ++i) {
            append(msg.msg_iov[i].iov_base, msg.msg_iov[i].iov_len);
        }
    }
    return taken;
}

bool memory_transport::start_send(io_request& r) noexcept {
    ++sends_;
    if (send_error_) {
        r.res = -send_error_.value();
        return false;
    }
    if (r.op == opcode::sendfile) {
        r.res = -EOPNOTSUPP;  // sends_files() is false: a channel never asks
        return false;
    }
    if (room() > 0) {
        r.res = static_cast<std::int32_t>(take(r));
        return false;
    }
    // The peer does not read: the send waits, with its timeout from now.
    r.in_flight = true;
    parked_ = &r;
    if (r.timeout_if_blocked.count() > 0) {
        r.deadline = clock::now() + r.timeout_if_blocked;
    }
    if (r.has_deadline()) {
        if (send_timer_.in_flight) {
            owner().io().cancel_and_wait(send_timer_);  // the last send's, on its way out
        }
        send_timer_.deadline = r.deadline;
        if (!owner().start(send_timer_)) {
            finish_parked(send_timer_.res == 0 ? -ETIMEDOUT : send_timer_.res);
        }
    }
    return true;
}

void memory_transport::finish_parked(std::int32_t res) noexcept {
    io_request& r = *std::exchange(parked_, nullptr);
    if (send_timer_.in_flight && !send_timer_.cancel_requested) {
        send_timer_.cancel_requested = true;
        owner().io().cancel(send_timer_);
    }
    complete(r, res, owner().io().deferred());
}

void memory_transport::serve_parked() noexcept {
    if (parked_ == nullptr) {
        return;
    }
    if (send_error_) {
        finish_parked(-send_error_.value());
    } else if (room() > 0) {
        finish_parked(static_cast<std::int32_t>(take(*parked_)));
    }
}

void memory_transport::on_send_timer(io_request& r, ready_queue&) noexcept {
    auto& self = *static_cast<memory_transport*>(r.owner);
    if (r.res == 0 && self.parked_ != nullptr) {
        self.finish_parked(-ETIMEDOUT);
    }
}

void memory_transport::cancel_send(io_request& r) noexcept {
    if (parked_ == &r) {
        finish_parked(-ECANCELED);
    }
}

void memory_transport::abandon_send(io_request& r) noexcept {
    if (parked_ == &r) {
        parked_ = nullptr;
        r.in_flight = false;
        if (send_timer_.in_flight) {
            owner().io().abandon(send_timer_);
        }
    }
}

std::string memory_transport::take_sent() {
    std::string out = std::exchange(sent_, std::string());
    serve_parked();
    return out;
}

void memory_transport::set_window(std::size_t bytes) noexcept {
    window_ = bytes;
    serve_parked();
}

void memory_transport::fail_sends(std::error_code why) noexcept {
    send_error_ = why;
    serve_parked();
}

// The end.

void memory_transport::end_output() noexcept {
    if (state_ == end::open) {
        state_ = end::output_ended;
    }
}

void memory_transport::close_orderly() noexcept {
    stop_receiving();
    if (state_ != end::reset) {
        state_ = end::orderly;
    }
}

void memory_transport::close_abortive() noexcept {
    stop_receiving();
    state_ = end::reset;
}

// Chunkings.

std::vector<std::string> split_at(std::string_view bytes, std::size_t at) {
    at = std::min(at, bytes.size());
    std::vector<std::string> out;
    if (at > 0) {
        out.emplace_back(bytes.substr(0, at));
    }
    if (at < bytes.size()) {
        out.emplace_back(bytes.substr(at));
    }
    return out;
}

std::vector<std::string> random_chunks(std::string_view bytes, std::uint64_t seed,
                                       std::size_t most) {
    std::mt19937_64 rng(seed);
    std::uniform_int_distribution<std::size_t> size(1, std::max<std::size_t>(most, 1));
    std::vector<std::string> out;
    while (!bytes.empty()) {
        const std::size_t n = std::min(size(rng), bytes.size());
        out.emplace_back(bytes.substr(0, n));
        bytes.remove_prefix(n);
    }
    return out;
}

}  // namespace ringchat::chat
