// SPDX-License-Identifier: MIT
// chat/tls_transport.cpp — the pump (socket → engine → plaintext), and the wire (engine →
// socket) in the order the engine made it.
#include "tls_transport.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <utility>

#include "../core/reactor.hpp"

namespace ringchat::chat {
namespace {

/// Plaintext is decrypted into buffers of a record's size; a small record is then copied into
/// one of its own size, so that a queue of small messages does not hold 16 KiB each.
constexpr std::size_t record_size = 16 * 1024;
constexpr std::size_t copy_below = 4 * 1024;

std::error_code errno_error(int e) noexcept { return {e, std::system_category()}; }

}  // namespace

// The pump waits here while it has nothing to do (see pump_wanted()).
struct tls_transport::pump_parked {
    tls_transport& t;
    bool await_ready() const noexcept { return t.pump_wanted(); }
    void await_suspend(std::coroutine_handle<> h) noexcept { t.pump_parked_ = h; }
    void await_resume() const noexcept { t.pump_parked_ = {}; }
};

struct tls_transport::handshake_wait {
    tls_transport& t;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) { t.handshake_waiters_.push_back(h); }
    void await_resume() const noexcept {}
};

tls_transport::tls_transport(ringchat::socket s, const tls::context& ctx, tls_options options)
    : tls_transport(std::make_unique<socket_transport>(std::move(s)), ctx, std::move(options)) {}

tls_transport::tls_transport(std::unique_ptr<transport> under, const tls::context& ctx,
                             tls_options options)
    : transport(under->owner()),
      net_(std::move(under)),
      engine_(ctx, options.server_name),
      options_(std::move(options)),
      handshake_deadline_(options_.handshake_timeout.count() > 0
                              ? clock::now() + options_.handshake_timeout
                              : clock::time_point::max()) {
    wire_req_.owner = this;
    if (engine_.side() == tls::role::client) {
        if (auto hello = engine_.handshake(); !hello) {  // the ClientHello, into the output
            fail(hello.error());
        }
        flush();
    }
    pump_task_ = pump();
    pump_task_.start();  // runs to its first wait
}

tls_transport::~tls_transport() {
    if (woken_) {
        owner().unschedule(woken_);  // the channel's reader dies first, before it resumed
    }
    if (wire_req_.in_flight) {
        net_->abandon_send(wire_req_);
    }
    if (sending_ != nullptr) {
        sending_->in_flight = false;  // its awaiter is gone (abandon_send)
    }
    // The pump dies with pump_task_ (first, being last): it is parked, or waits on net_,
    // whose receiver forgets it on its own destruction.
}

// Input.

bool tls_transport::pump_wanted() const noexcept {
    if (input_error_ || input_ended_) {
        return false;
    }
    return !engine_.handshake_done() || (consumer_ && plain_.empty());
}

clock::time_point tls_transport::pump_deadline() const noexcept {
    clock::time_point t = consumer_ ? consumer_deadline_ : clock::time_point::max();
    if (!engine_.handshake_done()) {
        t = std::min(t, handshake_deadline_);
    }
    return t;
}

task<> tls_transport::pump() {
    while (!input_error_ && !input_ended_) {
        co_await pump_parked{*this};
        pump_receiving_ = true;
        auto chunk = co_await receive_awaitable(*net_, pump_deadline());
        pump_receiving_ = false;
        take_ciphertext(std::move(chunk));
        after_input();
    }
}

void tls_transport::take_ciphertext(result<recv_buffer> chunk) noexcept {
    if (!chunk) {
        if (chunk.error() != std::errc::timed_out) {
            fail(chunk.error());  // a reset; ECANCELED after stop_receiving()
        } else if (!engine_.handshake_done() && clock::now() >= handshake_deadline_) {
            fail(make_error_code(tls::errc::handshake_timeout));
        } else if (consumer_) {
            timed_out_ = true;  // the channel's own deadline: it judges it
        }
        return;
    }
    if (chunk->empty()) {
        engine_.feed_eof();
    } else {
        engine_.feed(chunk->data());
    }
    decrypt();
}

void tls_transport::decrypt() noexcept {
    // Records are decrypted into one scratch buffer per thread: a large record keeps it (the
    // next one gets a new one), a small one is copied out of it. So the last attempt of each
    // call, which finds no whole record, allocates nothing, and an idle connection holds none.
    static thread_local std::unique_ptr<std::byte[]> scratch;
    for (;;) {
        if (!scratch) {
            scratch = std::make_unique_for_overwrite<std::byte[]>(record_size);
        }
        auto n = engine_.read(std::span(scratch.get(), record_size));
        if (!n) {
            fail(n.error());  // a failed handshake, a bad record, a truncation
            return;
        }
        if (*n == 0) {
            break;  // wants_input(), or closed()
        }
        std::unique_ptr<std::byte[]> buffer;
        if (*n < copy_below) {
            buffer = std::make_unique_for_overwrite<std::byte[]>(*n);
            std::memcpy(buffer.get(), scratch.get(), *n);
        } else {
            buffer = std::move(scratch);
        }
        plain_.push_back(recv_buffer(std::move(buffer), static_cast<std::uint32_t>(*n)));
    }
    if (engine_.closed()) {
        input_ended_ = true;  // the peer's close_notify: a clean end of stream
    }
}

void tls_transport::fail(std::error_code why) noexcept {
    if (!input_error_) {
        input_error_ = why;
    }
    if (!engine_.handshake_done() && !handshake_error_) {
        handshake_error_ = why;
    }
    if (sending_ != nullptr && sending_end_ == 0) {
        finish_send(-ECONNABORTED);  // it waited for a handshake that will never be
    }
    for (auto h : std::exchange(handshake_waiters_, {})) {
        owner().schedule(h);
    }
}

void tls_transport::after_input() noexcept {
    flush();  // handshake messages, tickets, an alert: whatever the engine made
    if (engine_.handshake_done()) {
        for (auto h : std::exchange(handshake_waiters_, {})) {
            owner().schedule(h);
        }
        if (sending_ != nullptr && sending_end_ == 0) {
            // It waited for the handshake.
            if (!encrypt(*sending_)) {
                finish_send(-EPIPE);
            } else if (wire_total_ >= sending_end_) {
                finish_send(static_cast<std::int32_t>(sending_size_));
            } else {
                flush();  // wire_sent() completes it
            }
        }
    }
    if (!plain_.empty() || input_error_ || input_ended_ || timed_out_) {
        wake_consumer();
    }
}

void tls_transport::wake_consumer() noexcept {
    if (consumer_) {
        woken_ = std::exchange(consumer_, {});
        owner().io().deferred().push_back(woken_);
    }
}

std::optional<result<recv_buffer>> tls_transport::try_receive() noexcept {
    woken_ = {};
    // Ciphertext already received while the pump is idle: decrypted here, at once.
    while (plain_.empty() && !input_error_ && !input_ended_ && pump_parked_ &&
           !pump_receiving_) {
        auto chunk = net_->try_receive();
        if (!chunk) {
            break;
        }
        take_ciphertext(std::move(*chunk));
        flush();
    }
    if (!plain_.empty()) {
        timed_out_ = false;  // data wins over a deadline that passed meanwhile
        recv_buffer b = std::move(plain_.front());
        plain_.pop_front();
        return result<recv_buffer>(std::move(b));
    }
    if (timed_out_) {
        timed_out_ = false;
        return result<recv_buffer>(errno_error(ETIMEDOUT));
    }
    if (input_error_) {
        return result<recv_buffer>(input_error_);
    }
    if (input_ended_) {
        return result<recv_buffer>(recv_buffer());
    }
    return std::nullopt;
}

void tls_transport::wait_receive(std::coroutine_handle<> h, clock::time_point deadline) noexcept {
    consumer_ = h;
    consumer_deadline_ = deadline;
    if (pump_parked_ && pump_wanted()) {
        pump_parked_.resume();  // to its wait on the socket (or a chunk already there)
    }
}

void tls_transport::stop_receiving() noexcept {
    net_->stop_receiving();
    if (!input_error_) {
        input_error_ = errno_error(ECANCELED);
    }
    wake_consumer();
}

// Output.

bool tls_transport::encrypt(io_request& r) noexcept {
    std::size_t taken = 0;
    std::error_code failed;
    const auto write = [&](const void* data, std::size_t len) {
        if (failed || len == 0) {
            return;
        }
        auto n = engine_.write(std::span(static_cast<const std::byte*>(data), len));
        if (!n) {
            failed = n.error();
        } else {
            taken += *n;
        }
    };
    if (r.op == opcode::send) {
        write(r.buf, r.len);
    } else if (r.op == opcode::sendmsg) {
        const auto& msg = *static_cast<const msghdr*>(r.buf);
        for (std::size_t i = 0; i < msg.msg_iovlen; ++i) {
            write(msg.msg_iov[i].iov_base, msg.msg_iov[i].iov_len);
        }
    }
    sending_size_ = taken;
    // What the engine made for it is queued by the flush() that follows; it ends there.
    sending_end_ = queued_total_ + engine_.output().size();
    return !failed;  // a write fails only after shutdown(): the channel is closing
}

bool tls_transport::start_send(io_request& r) noexcept {
    write_timeout_ = r.timeout_if_blocked;
    if (wire_error_ != 0) {
        r.res = wire_error_;
        return false;
    }
    if (engine_.error() || (input_error_ && !engine_.handshake_done())) {
        r.res = -ECONNABORTED;
        return false;
    }
    sending_size_ = 0;
    sending_end_ = 0;
    if (engine_.handshake_done()) {
        if (!encrypt(r)) {
            r.res = -EPIPE;
            return false;
        }
        flush();
        if (wire_error_ != 0) {
            r.res = wire_error_;
            return false;
        }
        if (wire_total_ >= sending_end_) {
            r.res = static_cast<std::int32_t>(sending_size_);  // all of it sent at once
            sending_end_ = 0;
            return false;
        }
    }
    r.in_flight = true;  // waits for the handshake, or for its ciphertext to go out
    sending_ = &r;
    return true;
}

void tls_transport::finish_send(std::int32_t res) noexcept {
    io_request& r = *std::exchange(sending_, nullptr);
    sending_end_ = 0;
    complete(r, res, owner().io().deferred());
}

void tls_transport::cancel_send(io_request& r) noexcept {
    if (sending_ != &r) {
        return;
    }
    if (sending_end_ != 0 && wire_req_.in_flight) {
        net_->cancel_send(wire_req_);  // its completion ends this send (wire_sent)
    } else {
        finish_send(-ECANCELED);
    }
}

void tls_transport::abandon_send(io_request& r) noexcept {
    if (sending_ == &r) {
        sending_ = nullptr;  // the ciphertext already made still goes out
        sending_end_ = 0;
        r.in_flight = false;
    }
}

void tls_transport::flush() noexcept {
    const auto out = engine_.output();
    if (!out.empty()) {
        queued_.append(reinterpret_cast<const char*>(out.data()), out.size());
        queued_total_ += out.size();
        engine_.consume_output(out.size());
    }
    send_wire();
}

void tls_transport::send_wire() noexcept {
    while (!wire_req_.in_flight && wire_error_ == 0) {
        if (wire_off_ == wire_.size()) {
            if (queued_.empty()) {
                return;
            }
            wire_.swap(queued_);
            queued_.clear();
            wire_off_ = 0;
        }
        wire_req_.op = opcode::send;
        wire_req_.buf = wire_.data() + wire_off_;
        wire_req_.len = static_cast<std::uint32_t>(
            std::min<std::size_t>(wire_.size() - wire_off_, 0x7fff'f000));
        wire_req_.deadline = clock::time_point::max();
        wire_req_.timeout_if_blocked = write_timeout_;
        wire_req_.on_complete = &on_wire_sent;
        wire_req_.waiter = {};
        if (net_->start_send(wire_req_)) {
            return;  // in flight: on_wire_sent goes on
        }
        wire_sent(wire_req_.res);
    }
}

void tls_transport::wire_sent(std::int32_t res) noexcept {
    if (res < 0) {
        // The connection's output is broken: the channel's send fails with it.
        wire_error_ = res;
        wire_.clear();
        queued_.clear();
        wire_off_ = 0;
        if (sending_ != nullptr) {
            finish_send(res);
        }
        return;
    }
    wire_off_ += static_cast<std::size_t>(res);
    wire_total_ += static_cast<std::size_t>(res);
    if (sending_ != nullptr && sending_end_ != 0 && wire_total_ >= sending_end_) {
        finish_send(static_cast<std::int32_t>(sending_size_));
    }
}

void tls_transport::on_wire_sent(io_request& r, ready_queue&) noexcept {
    auto& self = *static_cast<tls_transport*>(r.owner);
    self.wire_sent(r.res);
    self.send_wire();
}

// The end.

void tls_transport::send_now() noexcept {
    // TRICKY: at a close, what is left (the close_notify: a few dozen bytes) goes out with a
    // send(2) of its own, at once. Through the ring it would be submitted with the next poll,
    // and the channel (and this transport) is often destroyed before that, which cancels it.
    ringchat::socket* s = net_->socket();
    if (s == nullptr) {
        flush();  // not a socket: through the transport, as any ciphertext
        return;
    }
    if (wire_req_.in_flight || wire_error_ != 0) {
        return;
    }
    const auto out = engine_.output();
    queued_.append(reinterpret_cast<const char*>(out.data()), out.size());
    engine_.consume_output(out.size());
    std::string left = wire_.substr(wire_off_) + queued_;
    wire_.clear();
    queued_.clear();
    wire_off_ = 0;
    if (!left.empty()) {
        (void)::send(s->fd(), left.data(), left.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    }
}

void tls_transport::end_output() noexcept {
    engine_.shutdown();  // close_notify; the input goes on (TLS 1.3 allows a half close)
    send_now();
    net_->end_output();
}

void tls_transport::close_orderly() noexcept {
    stop_receiving();
    engine_.shutdown();
    send_now();
    net_->close_orderly();
}

void tls_transport::close_abortive() noexcept {
    stop_receiving();
    net_->close_abortive();  // no close_notify: the peer must see the output cut short
}

task<std::error_code> tls_transport::handshake() {
    while (!engine_.handshake_done() && !input_error_ && !engine_.error()) {
        co_await handshake_wait{*this};
    }
    if (engine_.handshake_done()) {
        co_return std::error_code();
    }
    co_return input_error_ ? input_error_ : engine_.error();
}

}  // namespace ringchat::chat
