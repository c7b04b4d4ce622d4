// SPDX-License-Identifier: MIT
// chat/async_chat.cpp — asynchat's handle_read loop over scan(), per received chunk.
#include "async_chat.hpp"

#include <string>

#include "../core/error.hpp"

namespace ringchat::chat {

terminator async_chat::get_terminator() const {
    if (in_collect_ > 0 && term_.kind() == terminator_kind::count) {
        return terminator::count(term_.remaining() + in_collect_);
    }
    return term_;
}

void async_chat::discard_buffers() {
    held_.clear();
    discarded_ = true;
    ch_.discard_buffers();
}

task<> async_chat::run() {
    std::string buffer;  // ac_in_buffer: held prefix + this read
    const std::size_t limit = ch_.options().max_frame;
    for (;;) {
        // A record in progress (bytes collected, or a terminator's start held): the frame
        // deadline runs.
        const bool in_record = collected_ > 0 || !held_.empty();
        auto chunk = co_await ch_.read_chunk(in_record);
        if (!chunk && chunk.error() == errc::stopped) {
            // A graceful stop between records: what found_terminator queued goes out first.
            co_await ch_.finish();
            break;
        }
        if (!chunk || chunk->empty()) {
            break;
        }
        std::span<const std::byte> in = chunk->data();
        if (!held_.empty()) {
            buffer.assign(held_);
            buffer.append(reinterpret_cast<const char*>(in.data()), in.size());
            held_.clear();
            in = std::as_bytes(std::span(buffer.data(), buffer.size()));
        }
        discarded_ = false;
        bool stopped = false;
        const auto held = scan_each(in, term_, [&](std::span<const std::byte> data,
                                                   const scan_step& step) {
            // A record is what lies between terminators; with none active there is no record.
            collected_ = step.found || !term_.active() ? 0 : collected_ + step.deliver;
            if (limit != 0 && collected_ > limit) {
                // The frame limit: a record longer than max_frame closes the channel.
                ch_.close(make_error_code(errc::frame_too_long));
                stopped = true;
                return false;
            }
            if (!data.empty()) {
                // A count still running shows the data being delivered (scan() has counted
                // it down already: it was running if it is still, or just reached 0); a count
                // of 0 is none (§4.3).
                const bool counting = term_.kind() == terminator_kind::count &&
                                      (step.found || term_.active());
                in_collect_ = counting ? data.size() : 0;
                collect_incoming_data(data);
                in_collect_ = 0;
            }
            if (step.found) {
                found_terminator();
                stopped = discarded_;  // discard_buffers() in it: the rest of this read goes
                return !stopped;
            }
            return true;
        });
        if (!stopped && !held.empty()) {
            held_.assign(reinterpret_cast<const char*>(held.data()), held.size());
        }
    }
    ch_.close();
    handle_close();
}

}  // namespace ringchat::chat
