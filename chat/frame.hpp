// SPDX-License-Identifier: MIT
// chat/frame.hpp — what a channel's read() gives: a frame, or why there is none.
//
// A frame is a view of the received bytes between two terminators (valid until the next
// read()), or at the end of the input its reason (a clean end of stream, a reset, a timeout,
// a stop) with the bytes received after the last terminator. It is made for every read(), so
// it is kept cheap to move: two words for the error, the partial behind a pointer.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

namespace ringchat::chat {

class channel;

/// What read() gives: a frame, or why there is none (end of stream, an error).
class frame {
public:
    frame() = default;
    static frame of(std::span<const std::byte> data) noexcept {
        frame f;
        f.data_ = data;
        f.has_ = true;
        return f;
    }
    static frame end(std::error_code why, std::string partial) {
        frame f;
        f.error_value_ = why.value();
        f.error_category_ = why ? &why.category() : nullptr;
        if (!partial.empty()) {
            f.partial_ = std::make_unique<std::string>(std::move(partial));
        }
        return f;
    }

    /// True when this holds a frame; false at end of stream or on an error.
    explicit operator bool() const noexcept { return has_; }
    /// The frame's data (without its terminator); valid until the next read().
    std::span<const std::byte> data() const noexcept { return data_; }
    std::string_view text() const noexcept {
        return {reinterpret_cast<const char*>(data_.data()), data_.size()};
    }
    /// Why there is no frame: empty at a clean end of stream; ECONNRESET, ETIMEDOUT,
    /// ECANCELED (closed here), or errc::frame_too_long (the frame was dropped; the next
    /// read() goes on with the frame after it).
    std::error_code error() const noexcept {
        return error_category_ != nullptr ? std::error_code(error_value_, *error_category_)
                                          : std::error_code();
    }
    /// A part of a frame longer than max_frame, with set_frame_pieces(true): the rest
    /// follows in the next read()s, its last part with piece() false (and the terminator
    /// after it). Each part holds at least max_frame bytes.
    bool piece() const noexcept { return piece_; }
    /// At end of stream: bytes received after the last terminator (asyncio's partial).
    const std::string& partial() const noexcept {
        static const std::string none;
        return partial_ ? *partial_ : none;
    }

private:
    friend class channel;
    // In place, for the read path: no temporary frame, no string moved.
    void hold(std::span<const std::byte> data, bool piece = false) noexcept {
        data_ = data;
        has_ = true;
        piece_ = piece;
        error_category_ = nullptr;
        partial_.reset();
    }
    void forget() noexcept {
        data_ = {};
        has_ = false;
    }

    // A frame is made and moved for every read(), so it is kept cheap to move and destroy: the
    // error in two parts, not a std::error_code (whose default constructor calls
    // std::system_category() out of line), and the partial, which only an end of stream has,
    // behind a pointer rather than a std::string.
    std::span<const std::byte> data_;
    const std::error_category* error_category_ = nullptr;  // null: no error
    int error_value_ = 0;
    bool has_ = false;  // beside error_value_: in what would be padding (40 bytes, not 48)
    bool piece_ = false;
    std::unique_ptr<std::string> partial_;
};

}  // namespace ringchat::chat
