// SPDX-License-Identifier: MIT
// ringchat's own error codes, for outcomes no errno describes.
//
// Everything else is std::system_category(): an operation past its deadline ends with
// ETIMEDOUT, a cancelled one with ECANCELED, both backends alike.
#pragma once

#include <system_error>

namespace ringchat {

enum class errc {
    frame_too_long = 1,    ///< a frame grew past the channel's maximum without its terminator
    backend_unavailable,   ///< the requested backend cannot be created on this machine
    stopped,               ///< the reactor is stopping; no new operation is started
    output_overflow,       ///< a channel's queued output passed its max_output
};

const std::error_category& ringchat_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), ringchat_category()};
}

}  // namespace ringchat

template <>
struct std::is_error_code_enum<ringchat::errc> : std::true_type {};
