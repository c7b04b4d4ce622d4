// SPDX-License-Identifier: MIT
// chat/channel.cpp — a channel's life: made over a transport, closed once (shut()), destroyed.
// Its input side is chat/channel_reader.cpp, its output side chat/channel_writer.cpp.
#include "channel.hpp"

#include <memory>
#include <utility>

#include "socket_transport.hpp"
#include "../core/reactor.hpp"

namespace ringchat::chat {

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

channel::~channel() {
    reactor& r = owner();
    r.remove_stop_hook(stop_hook_);
    shut(reason_);
    // The writer dies with the channel: it must not be resumed afterwards. Destroying its
    // frame cancels the operation it awaits and waits for it (the operation's awaitable).
    if (writer_scheduled_) {
        r.unschedule(writer_scheduled_);
    }
    if (writer_) {
        std::exchange(writer_, {}).destroy();
    }
}

void channel::wake_all(const waiter::until* what,
                       std::vector<std::coroutine_handle<>>* ready) noexcept {
    for (auto it = waiters_.begin(); it != waiters_.end();) {
        waiter& w = *it++;
        if (what != nullptr && w.what != *what) {
            continue;
        }
        waiters_.erase(w);
        if (ready != nullptr) {
            ready->push_back(w.waiting);
        } else {
            owner().schedule(w.waiting);
        }
    }
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
    // What a send in progress still holds is not going to be sent either: it is off the count
    // now (count_sent() and the writer then leave the count alone), not when the send comes
    // back cancelled a turn later (found by tests/fuzz's fuzz_channel).
    queued_bytes_ = 0;
    if (!waiters_.empty()) {
        wake_all(nullptr, nullptr);  // each kind: there is no more room, emptying or close
    }
}

bool channel::replace_transport(
    const std::function<std::unique_ptr<chat::transport>(std::unique_ptr<chat::transport>)>& wrap) {
    // The reader must not be waiting on the transport, nor the writer sending through it.
    if (!open_ || !out_.empty() || sending_ != nullptr || reader_busy() || reader_consumer_) {
        return false;
    }
    framer_.discard();
    current_.release();
    io_ = wrap(std::move(io_));  // (wrap returns a transport: the channel needs one)
    return true;
}

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

}  // namespace ringchat::chat
