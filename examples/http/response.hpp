// SPDX-License-Identifier: MIT
// examples/http/response.hpp — response heads: the status line, the fields every response
// carries (Date, Server, Connection), and the small HTML body of an error.
//
//     response_head h(200);
//     h.field("Content-Type", "text/plain").length(5);
//     ch.push(h.finish(ex));                 // "HTTP/1.1 200 OK\r\n...\r\n\r\n"
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace http {

/// What a response depends on in the request it answers.
struct exchange {
    int minor = 1;            ///< the request's HTTP/1.minor
    bool keep_alive = true;   ///< the connection stays open after this response
    bool head_only = false;   ///< HEAD: the fields of a GET, no body
};

/// The reason phrase of `status` ("Not Found").
std::string_view reason(int status) noexcept;

/// The current time as an HTTP-date ("Sun, 06 Nov 1994 08:49:37 GMT"), made once a second.
std::string_view http_date();
/// "Date: <http_date()>\r\nServer: ringchat-http\r\n", made once a second.
std::string_view common_fields();
/// `t` (seconds since the epoch) as an HTTP-date.
std::string http_date(long long t);

class response_head {
public:
    explicit response_head(int status);
    response_head& field(std::string_view name, std::string_view value);
    /// Fields made before, each "Name: value\r\n".
    response_head& fields(std::string_view block) {
        out_.append(block);
        return *this;
    }
    response_head& length(std::uint64_t n);
    /// Adds Date, Server and Connection (close, or keep-alive for HTTP/1.0) and the empty line.
    std::string finish(const exchange& ex);

private:
    std::string out_;
};

/// A whole error response: the head (with `extra` fields, each "Name: value\r\n") and, unless
/// HEAD, a short HTML page naming the status.
std::string error_response(int status, const exchange& ex, std::string_view extra = {});

}  // namespace http
