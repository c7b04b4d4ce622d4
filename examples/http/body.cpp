// SPDX-License-Identifier: MIT
// examples/http/body.cpp — Content-Length and chunked request bodies.
#include "examples/http/body.hpp"

#include <algorithm>
#include <charconv>

namespace http {

bool chunk_size_of(std::string_view line, std::uint64_t& size) {
    line = line.substr(0, line.find(';'));
    while (!line.empty() && (line.back() == ' ' || line.back() == '\t')) {
        line.remove_suffix(1);
    }
    const auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), size, 16);
    return !line.empty() && ec == std::errc() && end == line.data() + line.size() &&
           line.front() != '+' && line.front() != '-';
}

body_reader::body_reader(body_framing framing, std::size_t max_body, std::size_t slice,
                         bool keep, std::string& body)
    : max_body_(max_body),
      slice_(slice),
      keep_(keep),
      chunked_(framing.what == body_framing::kind::chunked),
      body_(body),
      state_(chunked_ ? state::size_line : framing.length > 0 ? state::data : state::done),
      left_(chunked_ ? 0 : framing.length) {}

ringchat::chat::terminator body_reader::terminator() const {
    if (state_ == state::data) {
        return ringchat::chat::terminator::count(std::min<std::uint64_t>(left_, slice_));
    }
    return ringchat::chat::terminator::bytes("\r\n");
}

body_reader::status body_reader::refuse(int why) {
    refusal_ = why;
    return status::refused;
}

body_reader::status body_reader::feed(const ringchat::chat::frame& f) {
    if (!f) {
        // A line longer than the slice (a count's frames never are).
        return refuse(state_ == state::trailers ? 431 : 400);
    }
    const std::string_view text = f.text();
    switch (state_) {
    case state::data:
        if (keep_) {
            body_.append(text);
        }
        left_ -= std::min<std::uint64_t>(left_, text.size());
        if (left_ == 0) {
            state_ = chunked_ ? state::data_end : state::done;
        }
        break;
    case state::size_line: {
        std::uint64_t size = 0;
        if (!chunk_size_of(text, size)) {
            return refuse(400);
        }
        if (size == 0) {
            state_ = state::trailers;
            break;
        }
        if (size > max_body_ - total_) {
            return refuse(413);
        }
        total_ += size;
        left_ = size;
        state_ = state::data;
        break;
    }
    case state::data_end:
        if (!text.empty()) {
            return refuse(400);  // the data was not followed by CRLF
        }
        state_ = state::size_line;
        break;
    case state::trailers:
        if (text.empty()) {
            state_ = state::done;
            break;
        }
        trailers_ += text.size() + 2;  // trailer fields: read and dropped
        if (trailers_ > slice_) {
            return refuse(431);
        }
        break;
    case state::done:
        break;
    }
    return state_ == state::done ? status::done : status::more;
}

}  // namespace http
