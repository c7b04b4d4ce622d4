// SPDX-License-Identifier: MIT
// examples/http/request.hpp — an HTTP/1.1 request head (RFC 9112), parsed from the block of
// bytes before its empty line, and what it says about the body, the connection, the path and
// the range asked for. Pure functions over strings: no I/O, so each rule reads on its own.
//
// Strict where leniency would be a hazard: single spaces in the request line, no whitespace
// before a header's colon, no obs-fold, no bare CR or LF, Content-Length and
// Transfer-Encoding not both, one Content-Length value. Each refusal is a status to answer
// with (400, 431, 501, 505) and the connection is closed after it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace http {

struct header {
    std::string name;  ///< lower case
    std::string value;  ///< without the whitespace around it
};

struct request {
    std::string method;
    std::string target;  ///< as sent: origin-form ("/a/b?q") or absolute-form
    int minor = 1;       ///< HTTP/1.minor (0 or 1)
    std::vector<header> headers;

    /// The first value of the header `lower_name`, or nullptr.
    const std::string* find(std::string_view lower_name) const noexcept;
    /// Whether a comma-separated header (Connection) lists `token` (case-insensitive).
    bool lists(std::string_view lower_name, std::string_view token) const;
    /// HTTP/1.1 unless "Connection: close"; HTTP/1.0 only with "Connection: keep-alive".
    bool keep_alive() const;
};

/// Most header fields in one request (a block under max-header can still hold many).
constexpr std::size_t max_headers = 100;

/// Parses a request head: the request line and the header lines, each ended by CRLF, the
/// final empty line not included. \return 0, or the status to refuse it with: 400
/// (malformed), 431 (too many fields), 505 (an HTTP version other than 1.x); `why` then
/// says what was wrong.
int parse_head(std::string_view block, request& out, std::string& why);

struct body_framing {
    enum class kind { none, length, chunked } what = kind::none;
    std::uint64_t length = 0;
};

/// How the body is framed (RFC 9112 §6.3). \return 0, or 400 (conflicting or malformed
/// Content-Length, both headers, chunked in HTTP/1.0), 501 (a coding other than chunked).
int body_framing_of(const request& req, body_framing& out);

/// The path of a request target, percent-decoded, without its query: "/a%20b?x" → "/a b".
/// Accepts the absolute form ("http://host/p"). \return 0, or 400 (not a path, a bad %XX,
/// an encoded NUL).
int decode_path(std::string_view target, std::string& path);

/// A single byte range of a resource of `size` bytes (RFC 9110 §14): "bytes=a-b", "a-", "-n".
enum class range_kind {
    none,           ///< no usable Range: answer with the whole resource (also multiple ranges)
    satisfiable,    ///< first/length set: 206
    unsatisfiable,  ///< 416 with "Content-Range: bytes */size"
};
range_kind parse_range(std::string_view value, std::uint64_t size, std::uint64_t& first,
                       std::uint64_t& length);

}  // namespace http
