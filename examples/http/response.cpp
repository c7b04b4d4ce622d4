// SPDX-License-Identifier: MIT
// examples/http/response.cpp — status lines, common fields, error pages.
#include "examples/http/response.hpp"

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

std::string_view http_date() {
    // One reactor per thread: a cache per thread needs no lock.
    thread_local std::time_t cached_at = -1;
    thread_local std::string cached;
    const std::time_t now = std::time(nullptr);
    if (now != cached_at) {
        cached = http_date(now);
        cached_at = now;
    }
    return cached;
}

response_head::response_head(int status) {
    out_ = fmt::format("HTTP/1.1 {} {}\r\n", status, reason(status));
}

response_head& response_head::field(std::string_view name, std::string_view value) {
    out_.append(name).append(": ").append(value).append("\r\n");
    return *this;
}

response_head& response_head::length(std::uint64_t n) {
    return field("Content-Length", fmt::format("{}", n));
}

std::string response_head::finish(const exchange& ex) {
    field("Date", http_date());
    field("Server", "ringchat-http");
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
