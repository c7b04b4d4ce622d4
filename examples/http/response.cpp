// SPDX-License-Identifier: MIT
// examples/http/response.cpp — status lines, common fields, error pages.
#include "examples/http/response.hpp"

#include <charconv>
#include <ctime>

#include <fmt/core.h>

namespace http {

std::string_view reason(int status) noexcept {
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 416: return "Range Not Satisfiable";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

std::string http_date(long long t) {
    const std::time_t when = static_cast<std::time_t>(t);
    std::tm tm{};
    ::gmtime_r(&when, &tm);
    char buf[64];
    const auto n = std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    return std::string(buf, n);
}

namespace {

/// The fields that change at most once a second, made once a second. One reactor per
/// thread: a cache per thread needs no lock.
struct per_second {
    std::time_t at = -1;
    std::string date;    // "Sun, 06 Nov 1994 08:49:37 GMT"
    std::string fields;  // "Date: ...\r\nServer: ringchat-http\r\n"

    const per_second& now() {
        const std::time_t t = std::time(nullptr);  // the vDSO: no system call
        if (t != at) {
            date = http_date(t);
            fields = "Date: " + date + "\r\nServer: ringchat-http\r\n";
            at = t;
        }
        return *this;
    }
};

thread_local per_second current;

}  // namespace

std::string_view http_date() { return current.now().date; }

std::string_view common_fields() { return current.now().fields; }

response_head::response_head(int status) {
    const std::string_view why = reason(status);
    out_.reserve(256);
    out_.append("HTTP/1.1 ");
    char digits[4] = {static_cast<char>('0' + status / 100 % 10),
                      static_cast<char>('0' + status / 10 % 10),
                      static_cast<char>('0' + status % 10), ' '};
    out_.append(digits, 4).append(why).append("\r\n");
}

response_head& response_head::field(std::string_view name, std::string_view value) {
    out_.append(name).append(": ").append(value).append("\r\n");
    return *this;
}

response_head& response_head::length(std::uint64_t n) {
    char digits[24];
    const auto end = std::to_chars(digits, digits + sizeof digits, n).ptr;
    return field("Content-Length", std::string_view(digits, static_cast<std::size_t>(end - digits)));
}

std::string response_head::finish(const exchange& ex) {
    out_.append(common_fields());
    if (!ex.keep_alive) {
        field("Connection", "close");
    } else if (ex.minor == 0) {
        field("Connection", "keep-alive");
    }
    out_.append("\r\n");
    return std::move(out_);
}

std::string error_response(int status, const exchange& ex, std::string_view extra) {
    const std::string body = fmt::format(
        "<!DOCTYPE html>\n<html><head><title>{0} {1}</title></head>"
        "<body><h1>{0} {1}</h1></body></html>\n",
        status, reason(status));
    response_head h(status);
    h.field("Content-Type", "text/html; charset=utf-8").length(body.size());
    std::string out = h.finish(ex);
    if (!extra.empty()) {
        out.insert(out.size() - 2, extra);  // before the empty line
    }
    if (!ex.head_only) {
        out += body;
    }
    return out;
}

}  // namespace http
