// SPDX-License-Identifier: MIT
// chat/socket_transport.cpp — the socket transport's requests, handed to the backend.
#include "socket_transport.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <new>

#include "../core/reactor.hpp"

namespace ringchat::chat {

send_operation::~send_operation() {
    if (req_.in_flight) {
        t_->abandon_send(req_);
    } else if (req_.waiter) {
        // Completed and queued, but its coroutine is destroyed before it resumed.
        t_->owner().unschedule(req_.waiter);
    }
}

socket_transport::socket_transport(ringchat::socket s) noexcept
    : transport(s.owner()), socket_(std::move(s)), in_(socket_) {}

socket_transport::~socket_transport() {
    if (close_ && close_->in_flight) {
        owner().io().abandon(*close_);  // the close completes; its request must outlive it
    }
}

bool socket_transport::start_send(io_request& r) noexcept {
    r.fd = socket_.fd();
    return owner().start(r);
}

void socket_transport::cancel_send(io_request& r) noexcept {
    if (r.in_flight && !r.cancel_requested) {
        r.cancel_requested = true;
        owner().io().cancel(r);
    }
}

void socket_transport::abandon_send(io_request& r) noexcept { owner().io().abandon(r); }

void socket_transport::end_output() noexcept {
    if (socket_.valid()) {
        (void)socket_.shutdown(SHUT_WR);
    }
}

void socket_transport::close_orderly() noexcept {
    in_.cancel();
    if (socket_.valid()) {
        (void)socket_.shutdown(SHUT_RDWR);
    }
}

void socket_transport::close_abortive() noexcept {
    in_.cancel();
    if (!socket_.valid()) {
        return;
    }
    (void)socket_.reset_on_close();
    // TRICKY: not close(2) here: a send or a re-arm already prepared for the descriptor may
    // still be waiting to be submitted (io_uring), and the number may be reused before. The
    // backend closes it in order, after them (io_uring: IORING_OP_CLOSE; epoll: at once,
    // its parked requests completed first).
    close_.reset(new (std::nothrow) io_request);
    if (!close_) {
        // No memory for the request: close at once, the lesser harm than a descriptor left
        // open (a send still unsubmitted then fails with EBADF).
        (void)::close(socket_.release());
        return;
    }
    close_->op = opcode::close;
    close_->fd = socket_.release();
    close_->owner = this;
    close_->on_complete = &on_closed;
    (void)owner().start(*close_);
}

void socket_transport::on_closed(io_request&, ready_queue&) noexcept {}

bool socket_transport::input_waiting() noexcept {
    if (in_.queued() > 0) {
        return true;
    }
    if (!socket_.valid()) {
        return false;
    }
    char byte = 0;  // still in the kernel: one peek
    return ::recv(socket_.fd(), &byte, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

}  // namespace ringchat::chat
