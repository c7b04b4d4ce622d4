// SPDX-License-Identifier: MIT
// examples/http/mime.hpp — the Content-Type of a file, from its name's extension.
#pragma once

#include <string_view>

namespace http {

/// The media type for `name` (a path or a file name): text types carry "; charset=utf-8";
/// an unknown or missing extension gives application/octet-stream.
std::string_view content_type(std::string_view name) noexcept;

}  // namespace http
