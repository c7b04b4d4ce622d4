// SPDX-License-Identifier: MIT
// chat/framer.cpp — scan() driven over chunks, with the frame limit.
#include "framer.hpp"

#include <algorithm>
#include <utility>

namespace ringchat::chat {

void framer::feed(std::span<const std::byte> chunk) {
    release_frame();
    if (held_.empty()) {
        input_ = chunk;
        in_joined_ = false;
        return;
    }
    // A terminator prefix was held back: it is scanned again in front of the new bytes.
    joined_.swap(held_);
    held_.clear();
    join(chunk);
}

// TRICKY: joined_ holds the held bytes and only a copy of the first bytes of the chunk that
// follows (rest_), never the whole chunk: once the scan is past the held bytes it goes on in
// the chunk itself (settle()), so the frames there are views of it and a held "\r" does not
// cost a copy of the next chunk.
void framer::join(std::span<const std::byte> rest) noexcept {
    head_ = joined_.size();
    rest_ = rest;
    input_ = joined_;
    in_joined_ = true;
}

// Before a scan inside the held bytes: a string terminator needs |T| - 1 bytes of the chunk
// in joined_ for scan() to give the step it gives on held + the whole chunk (a match that
// starts in the held bytes ends within them, and what is held at the end of joined_ then lies
// in the chunk). A count or an inactive terminator takes what is there and needs none.
void framer::widen() {
    if (!in_joined_) {
        return;
    }
    std::size_t want = 0;
    if (term_.active() && term_.kind() == terminator_kind::bytes) {
        want = std::min(rest_.size(), term_.text().size() - 1);
    }
    const std::size_t copied = joined_.size() - head_;
    if (want > copied) {
        const std::size_t left = input_.size();
        const auto more = rest_.subspan(copied, want - copied);
        joined_.insert(joined_.end(), more.begin(), more.end());
        input_ = std::span<const std::byte>(joined_).last(left + more.size());
    }
}

// After input_ advanced: once past the held bytes, go on in the chunk.
void framer::settle() noexcept {
    if (!in_joined_) {
        return;
    }
    const std::size_t at = joined_.size() - input_.size();
    if (at >= head_) {
        input_ = rest_.subspan(at - head_);
        in_joined_ = false;
    }
}

void framer::grow_frame(std::span<const std::byte> data) {
    if (frame_.capacity() < frame_.size() + data.size() && frame_.size() < last_taken_) {
        // A frame was taken (take_frame()): size the new buffer like it at once, rather than
        // growing it by doubling (a copy at each step).
        frame_.reserve(std::max(last_taken_, frame_.size() + data.size()));
    }
    frame_.append(reinterpret_cast<const char*>(data.data()), data.size());
}

std::string framer::take_frame(std::span<const std::byte> handed) noexcept {
    if (!handed_out_ || handed.empty() || handed.data() != frame_bytes().data() ||
        handed.size() != frame_.size()) {
        return {};
    }
    handed_out_ = false;
    last_taken_ = frame_.size();
    return std::exchange(frame_, std::string());
}

void framer::release_frame() noexcept {
    if (handed_out_) {
        frame_.clear();
        handed_out_ = false;
    }
}

// next()'s general case. `found_at`: where next() found the terminator in input_ (npos: not
// there), or unknown.
framer::status framer::next_from(std::span<const std::byte>& out, std::size_t found_at) {
    release_frame();
    while (!input_.empty() || !held_.empty()) {
        if (input_.empty()) {
            // Only a held prefix is left (the terminator changed between reads): rescan it.
            joined_.swap(held_);
            held_.clear();
            join({});
        }
        widen();
        const std::size_t before = input_.size();
        const scan_step step = found_at != unknown
                                   ? scan_text(input_, term_.text(), std::exchange(found_at, unknown))
                                   : scan(input_, term_);
        const auto data = input_.first(step.deliver);
        if (step.found) {
            input_ = input_.subspan(step.deliver + step.skip);
            settle();
        } else if (in_joined_ && joined_.size() - head_ < rest_.size()) {
            // Only the start of the chunk was scanned: the rest of it follows (widen()).
            input_ = input_.subspan(step.deliver);
            settle();
        } else {
            held_.assign(input_.begin() + static_cast<std::ptrdiff_t>(step.deliver), input_.end());
            input_ = {};
            in_joined_ = false;
            if (held_.size() == before && step.deliver == 0) {
                return status::need_more;  // all of it may be a terminator's start
            }
        }
        if (skipping_) {
            if (step.found) {
                skipping_ = false;
                if (std::exchange(report_at_end_, false)) {
                    return status::too_long;  // a count body ended: where its frame would
                }
            }
            continue;
        }
        const bool eager = !step.found && !term_.active();
        if (max_frame_ != 0 && frame_.size() + data.size() > max_frame_ && !eager && !pieces_) {
            frame_.clear();
            if (step.found) {
                return status::too_long;
            }
            skipping_ = true;
            // A string terminator may never come: say so now. A count's end is known: say
            // so there, so that the terminator the caller sets then applies after the body.
            report_at_end_ = term_.kind() == terminator_kind::count;
            if (!report_at_end_) {
                return status::too_long;
            }
            continue;
        }
        if (step.found || eager) {
            if (frame_.empty()) {
                out = data;  // the whole frame lies in this chunk: no copy
            } else {
                grow_frame(data);
                out = frame_bytes();
                handed_out_ = true;
            }
            if (eager && data.empty()) {
                continue;
            }
            return status::frame;
        }
        grow_frame(data);
        if (pieces_ && max_frame_ != 0 && frame_.size() >= max_frame_) {
            out = frame_bytes();  // a piece of a long frame; the scan goes on after it
            handed_out_ = true;
            return status::piece;
        }
    }
    if (!term_.active() && !frame_.empty()) {
        // The terminator was made inactive with a frame in progress: that is data now, and
        // data is delivered as soon as it is there, not with the next chunk.
        out = frame_bytes();
        handed_out_ = true;
        return status::frame;
    }
    return status::need_more;
}

std::string framer::partial() const {
    // A frame handed out of frame_ stays there until the next call, but is delivered.
    std::string out;
    if (!handed_out_) {
        out.assign(reinterpret_cast<const char*>(frame_.data()), frame_.size());
    }
    out.append(reinterpret_cast<const char*>(held_.data()), held_.size());
    return out;
}

void framer::discard() noexcept {
    input_ = {};
    in_joined_ = false;
    held_.clear();
    // A frame handed out of frame_ stays valid until the next call, as next() promises; one
    // in progress is dropped.
    if (!handed_out_) {
        frame_.clear();
    }
    skipping_ = false;
    report_at_end_ = false;
}

}  // namespace ringchat::chat
