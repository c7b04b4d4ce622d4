// SPDX-License-Identifier: MIT
// examples/http/request.cpp — request line, header fields, body framing, path and range.
#include "examples/http/request.hpp"

#include <charconv>

namespace http {
namespace {

bool is_tchar(char c) noexcept {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
        return true;
    }
    return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) noexcept {
    if (s.empty()) {
        return false;
    }
    for (char c : s) {
        if (!is_tchar(c)) {
            return false;
        }
    }
    return true;
}

char lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string lowered(std::string_view s) {
    std::string out(s);
    for (auto& c : out) {
        c = lower(c);
    }
    return out;
}

bool iequal(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) {
        return false;
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (lower(a[i]) != lower(b[i])) {
            return false;
        }
    }
    return true;
}

std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
        s.remove_suffix(1);
    }
    return s;
}

bool all_digits(std::string_view s) noexcept {
    if (s.empty()) {
        return false;
    }
    for (char c : s) {
        if (c < '0' || c > '9') {
            return false;
        }
    }
    return true;
}

/// A whole decimal number; false when it is not one or does not fit.
bool to_number(std::string_view s, std::uint64_t& out) noexcept {
    if (!all_digits(s)) {
        return false;
    }
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && end == s.data() + s.size();
}

/// Calls f(item) for each comma-separated item, trimmed, empty ones skipped.
template <class F>
void each_item(std::string_view list, F f) {
    while (!list.empty()) {
        const auto comma = list.find(',');
        const auto item = trim(list.substr(0, comma));
        if (!item.empty()) {
            f(item);
        }
        list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    }
}

int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c = lower(c);
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

/// "HTTP/1.1" → 1 (minor); "HTTP/2", "HTTP/2.0", "HTTP/0.9" → 505; anything else → 400.
int parse_version(std::string_view v, int& minor) {
    if (!v.starts_with("HTTP/")) {
        return 400;
    }
    v.remove_prefix(5);
    const auto dot = v.find('.');
    const auto major_text = v.substr(0, dot);
    const bool has_minor = dot != std::string_view::npos;
    if (!all_digits(major_text) || (has_minor && !all_digits(v.substr(dot + 1)))) {
        return 400;
    }
    if (major_text != "1") {
        return 505;
    }
    if (dot == std::string_view::npos) {
        return 400;  // "HTTP/1": the grammar wants a minor version
    }
    minor = v.substr(dot + 1) == "0" ? 0 : 1;  // 1.2 and later: answered as 1.1 (RFC 9110 §6.2)
    return 0;
}

}  // namespace

const std::string* request::find(std::string_view lower_name) const noexcept {
    for (const auto& h : headers) {
        if (h.name == lower_name) {
            return &h.value;
        }
    }
    return nullptr;
}

bool request::lists(std::string_view lower_name, std::string_view token) const {
    bool found = false;
    for (const auto& h : headers) {
        if (h.name == lower_name) {
            each_item(h.value,
                      [&](std::string_view item) { found = found || iequal(item, token); });
        }
    }
    return found;
}

bool request::keep_alive() const {
    if (lists("connection", "close")) {
        return false;
    }
    return minor >= 1 || lists("connection", "keep-alive");
}

int parse_head(std::string_view block, request& out, std::string& why) {
    const auto eol = block.find("\r\n");
    const auto line = block.substr(0, eol);
    std::string_view rest =
        eol == std::string_view::npos ? std::string_view() : block.substr(eol + 2);

    // request-line = method SP request-target SP HTTP-version
    const auto sp1 = line.find(' ');
    const auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
        why = "the request line is not 'METHOD TARGET VERSION'";
        return 400;
    }
    const auto method = line.substr(0, sp1);
    const auto target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    if (!is_token(method)) {
        why = "the method is not a token";
        return 400;
    }
    if (target.empty()) {
        why = "an empty request target";
        return 400;
    }
    for (char c : target) {
        if (c <= ' ' || c == 0x7f) {
            why = "a control character or a space in the request target";
            return 400;
        }
    }
    if (const int st = parse_version(line.substr(sp2 + 1), out.minor); st != 0) {
        why = st == 505 ? "only HTTP/1.0 and HTTP/1.1 are served" : "a malformed HTTP version";
        return st;
    }
    out.method = std::string(method);
    out.target = std::string(target);

    while (!rest.empty()) {
        const auto end = rest.find("\r\n");
        const auto field = rest.substr(0, end);
        rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 2);
        if (field.empty()) {
            continue;  // leading empty lines before the request line end up here: harmless
        }
        if (field.front() == ' ' || field.front() == '\t') {
            why = "a folded header line (obs-fold)";
            return 400;
        }
        const auto colon = field.find(':');
        if (colon == std::string_view::npos || !is_token(field.substr(0, colon))) {
            why = "a header line without a valid 'name:'";
            return 400;
        }
        const auto value = trim(field.substr(colon + 1));
        for (char c : value) {
            const auto u = static_cast<unsigned char>(c);
            if ((u < 0x20 && c != '\t') || u == 0x7f) {
                why = "a control character in a header value";
                return 400;
            }
        }
        if (out.headers.size() == max_headers) {
            why = "too many header fields";
            return 431;
        }
        out.headers.push_back({lowered(field.substr(0, colon)), std::string(value)});
    }
    if (out.minor >= 1) {
        std::size_t hosts = 0;
        for (const auto& h : out.headers) {
            hosts += h.name == "host" ? 1 : 0;
        }
        if (hosts != 1) {
            why = "an HTTP/1.1 request needs exactly one Host header";
            return 400;
        }
    }
    return 0;
}

int body_framing_of(const request& req, body_framing& out) {
    bool has_te = false;
    bool has_cl = false;
    bool chunked_last = false;
    bool bad_length = false;
    std::uint64_t length = 0;
    for (const auto& h : req.headers) {
        if (h.name == "transfer-encoding") {
            has_te = true;
            each_item(h.value,
                      [&](std::string_view item) { chunked_last = iequal(item, "chunked"); });
        } else if (h.name == "content-length") {
            // "5, 5" (a list of the same value) is allowed; "5, 6" and "5x" are not.
            bool any = false;
            each_item(h.value, [&](std::string_view item) {
                std::uint64_t n = 0;
                if (!to_number(item, n) || ((has_cl || any) && n != length)) {
                    bad_length = true;
                }
                length = n;
                any = true;
            });
            bad_length = bad_length || !any;
            has_cl = true;
        }
    }
    if (has_te) {
        if (has_cl || req.minor == 0) {
            return 400;  // request smuggling territory (RFC 9112 §6.1, §6.3)
        }
        if (!chunked_last) {
            return 501;
        }
        out.what = body_framing::kind::chunked;
        return 0;
    }
    if (has_cl) {
        if (bad_length) {
            return 400;
        }
        out.what = length > 0 ? body_framing::kind::length : body_framing::kind::none;
        out.length = length;
    }
    return 0;
}

int decode_path(std::string_view target, std::string& path) {
    if (target.size() > 7 && (iequal(target.substr(0, 7), "http://") ||
                              iequal(target.substr(0, 8), "https://"))) {
        target.remove_prefix(target.find("//") + 2);
        const auto slash = target.find('/');
        target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
    }
    if (target.empty() || target.front() != '/') {
        return 400;
    }
    target = target.substr(0, target.find_first_of("?#"));
    path.clear();
    for (std::size_t i = 0; i < target.size(); ++i) {
        char c = target[i];
        if (c == '%') {
            const int hi = i + 2 < target.size() ? hex_value(target[i + 1]) : -1;
            const int lo = hi >= 0 ? hex_value(target[i + 2]) : -1;
            if (lo < 0) {
                return 400;
            }
            c = static_cast<char>(hi * 16 + lo);
            if (c == '\0') {
                return 400;
            }
            i += 2;
        }
        path.push_back(c);
    }
    return 0;
}

range_kind parse_range(std::string_view value, std::uint64_t size, std::uint64_t& first,
                       std::uint64_t& length) {
    value = trim(value);
    if (value.size() < 6 || !iequal(value.substr(0, 6), "bytes=")) {
        return range_kind::none;
    }
    const auto spec = trim(value.substr(6));
    const auto dash = spec.find('-');
    if (spec.find(',') != std::string_view::npos || dash == std::string_view::npos) {
        return range_kind::none;  // several ranges, or garbage: the whole resource
    }
    const auto a = trim(spec.substr(0, dash));
    const auto b = trim(spec.substr(dash + 1));
    std::uint64_t start = 0;
    std::uint64_t end = 0;
    if (a.empty()) {  // "-n": the last n bytes
        if (!to_number(b, end)) {
            return range_kind::none;
        }
        if (end == 0 || size == 0) {
            return range_kind::unsatisfiable;
        }
        length = end < size ? end : size;
        first = size - length;
        return range_kind::satisfiable;
    }
    if (!to_number(a, start)) {
        return all_digits(a) ? range_kind::unsatisfiable : range_kind::none;  // too big to fit
    }
    if (b.empty()) {
        end = ~std::uint64_t{0};  // to the end
    } else if (!to_number(b, end)) {
        if (!all_digits(b)) {
            return range_kind::none;
        }
        end = ~std::uint64_t{0};  // past any file: clamped below
    }
    if (end < start) {
        return range_kind::none;  // invalid: ignored (RFC 9110 §14.1.1)
    }
    if (start >= size) {
        return range_kind::unsatisfiable;
    }
    if (end >= size) {
        end = size - 1;
    }
    first = start;
    length = end - start + 1;
    return range_kind::satisfiable;
}

}  // namespace http
