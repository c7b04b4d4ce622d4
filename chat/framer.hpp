// SPDX-License-Identifier: MIT
// chat/framer.hpp — the input side of a channel as a pure state machine: chunks in, frames out.
//
// Fed the chunks a transport receives, it cuts them with the current terminator exactly as
// asynchat's handle_read would (it is built on scan()), and hands out frames: the data
// between two terminators, coalesced across reads. It does no I/O, so it is tested over every
// chunking of a stream without a socket (tests/chat/test_framer.cpp).
//
// Invariants: a frame is a view into the chunk being scanned when it lies in one chunk (no
// copy), otherwise into the framer's own buffer; either stays valid until the next call of
// next() or feed() (discard() keeps it). Memory never grows past max_frame plus one terminator: a
// longer frame ends with too_long and is discarded up to its terminator (see status).
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "terminator.hpp"

namespace ringchat::chat {

class framer {
public:
    enum class status {
        frame,      ///< a frame is ready (found_terminator; or, with no active terminator, the
                    ///< data that arrived, delivered at once as asynchat does)
        need_more,  ///< everything fed so far is consumed: feed the next chunk
        piece,      ///< with pieces on: max_frame bytes (or a little more) of a frame longer
                    ///< than max_frame; the rest follows, its last part as a `frame`
        too_long,   ///< the frame grew past max_frame; its rest is skipped up to its terminator.
                    ///< A string terminator's frame: reported as soon as it passes the
                    ///< limit. A count's: reported where the body ends (after the skip), so
                    ///< that a terminator set then applies to the bytes after the body.
    };

    /// `max_frame` = 0: no limit (asynchat's behaviour; memory then follows the peer).
    explicit framer(std::size_t max_frame = 64 * 1024) : max_frame_(max_frame) {}

    /// The terminator in force; a change applies from the next byte not yet scanned, held
    /// prefix bytes included (they are rescanned under the new terminator).
    void set_terminator(terminator t) { term_ = std::move(t); }
    /// The same as set_terminator(terminator::bytes(s)) and (terminator::count(n)), in place.
    void set_terminator(std::string_view s) { term_.assign_bytes(s); }
    void set_terminator_count(std::uint64_t n) noexcept { term_.assign_count(n); }
    const terminator& get_terminator() const noexcept { return term_; }
    std::size_t max_frame() const noexcept { return max_frame_; }
    void set_max_frame(std::size_t n) noexcept { max_frame_ = n; }
    /// A frame longer than max_frame is handed out in pieces (status::piece, each at least
    /// max_frame and less than max_frame plus one chunk) instead of ending with too_long, as
    /// asynchat's collect_incoming_data gets a long record in parts. Memory stays bounded.
    void set_pieces(bool on) noexcept { pieces_ = on; }
    bool pieces() const noexcept { return pieces_; }

    /// Offers a chunk. It must stay valid until next() returns need_more.
    void feed(std::span<const std::byte> chunk);
    /// The next event; on `frame`, `out` is the frame's data.
    status next(std::span<const std::byte>& out) {
        // The common cases inline (a read() per message runs them): no frame in progress,
        // nothing held, and a string terminator found in the chunk or a count the chunk holds
        // whole (a length-prefixed body). The general loop would cut the same frame; where
        // this finds no string (or one too long) the loop goes on from where it searched, so
        // nothing is searched twice.
        // (A frame handed out of frame_ leaves it non-empty, so that case goes the general way.)
        if (in_joined_ || !frame_.empty() || skipping_ || !held_.empty()) {
            return next_from(out, unknown);
        }
        if (term_.kind() == terminator_kind::count) {
            const std::uint64_t n = term_.remaining();
            if (n == 0 || n > input_.size() || (max_frame_ != 0 && n > max_frame_)) {
                return next_from(out, unknown);
            }
            out = input_.first(static_cast<std::size_t>(n));
            input_ = input_.subspan(static_cast<std::size_t>(n));
            term_.assign_count(0);  // as scan() leaves it: asynchat's get_terminator() is 0
            return status::frame;
        }
        if (term_.kind() == terminator_kind::bytes && term_.active()) {
            const std::string_view text = term_.text();
            const std::size_t at = find_terminator(input_, text);
            if (at != std::string_view::npos && (max_frame_ == 0 || at <= max_frame_)) {
                out = input_.first(at);
                input_ = input_.subspan(at + text.size());
                return status::frame;
            }
            return next_from(out, at);
        }
        return next_from(out, unknown);
    }
    /// Bytes received but not delivered as a frame: the frame in progress and a held
    /// terminator prefix (at end of stream, asyncio's IncompleteReadError.partial).
    std::string partial() const;
    /// The buffer of the frame next() handed out as `handed`, when that frame spanned chunks
    /// (it was joined in the framer's own buffer): moved out, no copy. Empty otherwise (the
    /// frame is a view of the chunk; the caller copies it).
    std::string take_frame(std::span<const std::byte> handed) noexcept;
    /// asynchat's discard_buffers() on the input side: drops the frame in progress, the held
    /// prefix and the rest of the current chunk.
    void discard() noexcept;
    /// A frame is in progress: some of its bytes (or a possible terminator's start, or the
    /// rest of a frame too long being skipped) arrived, its terminator not yet.
    bool mid_frame() const noexcept {
        return (!handed_out_ && !frame_.empty()) || !held_.empty() || skipping_;
    }
    /// Bytes fed but not scanned yet (the rest of the current chunk and the held prefix).
    std::size_t pending() const noexcept {
        // While input_ is in joined_, the part of rest_ not copied there is pending too.
        return input_.size() + held_.size() +
               (in_joined_ ? rest_.size() - (joined_.size() - head_) : 0);
    }

private:
    static constexpr std::size_t unknown = std::string_view::npos - 1;  // next(): no search yet

    status next_from(std::span<const std::byte>& out, std::size_t found_at);
    void release_frame() noexcept;
    void grow_frame(std::span<const std::byte> data);
    std::span<const std::byte> frame_bytes() const noexcept {
        return {reinterpret_cast<const std::byte*>(frame_.data()), frame_.size()};
    }
    void join(std::span<const std::byte> rest) noexcept;
    void widen();
    void settle() noexcept;

    terminator term_ = terminator::bytes("\n");
    std::size_t max_frame_;
    std::span<const std::byte> input_;    // the part of the current chunk not scanned yet
    std::vector<std::byte> held_;         // a possible terminator prefix from the last chunk
    std::vector<std::byte> joined_;       // held bytes + the first bytes of rest_ (widen())
    std::span<const std::byte> rest_;     // the chunk that follows the held bytes in joined_
    std::size_t head_ = 0;                // how many bytes of joined_ were held
    std::string frame_;                   // a frame that spans chunks
    std::size_t last_taken_ = 0;          // the size of the last frame take_frame() gave away
    // The flags together, where they pack (a connection holds a framer).
    bool in_joined_ = false;              // input_ is a part of joined_, not of the chunk
    bool skipping_ = false;               // the rest of a too-long frame is being dropped
    bool report_at_end_ = false;          // ... a count body's: too_long comes at its end
    bool handed_out_ = false;             // frame_ was returned: clear it at the next call
    bool pieces_ = false;                 // a long frame goes out in pieces, not too_long
};

}  // namespace ringchat::chat
