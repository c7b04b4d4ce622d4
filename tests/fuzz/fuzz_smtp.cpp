// SPDX-License-Identifier: MIT
// tests/fuzz/fuzz_smtp.cpp — examples/smtp's command parser and DATA reader, driven as the
// session drives them (examples/smtp/main.cpp): the input is what a client sends, cut into
// lines by the framer with "\r\n" (commands limited to 1,000 bytes, a longer one answered
// 500; DATA's lines in pieces of at most the write batch, picked by the input's size).
//
// Checked: each reply is one line (no CR or LF in it) of a 2xx-5xx code and text, every line
// but the last of a reply with '-' after the code, the last with ' '; the envelope keeps its
// rules (MAIL only after HELO/EHLO, RCPT only after MAIL, at most 100 recipients, DATA only
// with one); a message read, dot-stuffed again and ended with ".", reads back to itself, its
// size is what was counted, and it is refused (too big) exactly when it passes max_size; and
// the replies and messages are the same in one chunk and in small chunks.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "examples/smtp/protocol.hpp"
#include "tests/fuzz/drive.hpp"

using namespace fuzz;

namespace {

struct message {
    std::string data;
    bool too_big = false;
    friend bool operator==(const message&, const message&) = default;
};

struct transcript {
    std::vector<std::string> replies;
    std::vector<message> messages;
};

void check_reply(const std::vector<std::string>& lines) {
    FUZZ_CHECK(!lines.empty(), "a command with no reply");
    for (std::size_t i = 0; i < lines.size(); ++i) {
        const std::string& l = lines[i];
        FUZZ_CHECK(l.find_first_of("\r\n") == std::string::npos, "a reply line \"%s\"",
                   escaped(l).c_str());
        FUZZ_CHECK(l.size() >= 4 && l[0] >= '2' && l[0] <= '5' && l[1] >= '0' && l[1] <= '9' &&
                       l[2] >= '0' && l[2] <= '9' && l[3] == (i + 1 == lines.size() ? ' ' : '-'),
                   "reply line %zu of %zu: \"%s\"", i, lines.size(), escaped(l).c_str());
    }
}

/// The session's loop over `in`; `batch` is DATA's max_frame (pieces on).
transcript converse(std::string_view in, bool small, std::size_t max_size, std::size_t batch) {
    transcript out;
    smtp::dialogue envelope("ringchat.local", max_size);
    std::optional<smtp::data_reader> data;
    std::string body;
    std::vector<std::string> replies;
    frames(
        in, small,
        [&](ringchat::chat::framer& f) {
            f.set_terminator(terminator::bytes("\r\n"));
            f.set_pieces(data.has_value());
            f.set_max_frame(data ? batch : smtp::max_line);
        },
        [&](const piece_of_input& p) {
            if (data) {
                FUZZ_CHECK(p.f, "a DATA line too long with pieces on");
                std::string_view text;
                bool crlf = false;
                if (data->line(p.f.text(), p.piece, text, crlf)) {
                    FUZZ_CHECK(!data->too_big() || (text.empty() && !crlf),
                               "kept data past max_size");
                    FUZZ_CHECK(data->too_big() || data->size() <= max_size,
                               "%zu bytes kept, max %zu", data->size(), max_size);
                    body += text;
                    body += crlf ? "\r\n" : "";
                    return true;
                }
                FUZZ_CHECK(!p.piece, "a piece ended DATA");
                FUZZ_CHECK(data->too_big() || data->size() == body.size(),
                           "counted %zu bytes, kept %zu", data->size(), body.size());
                out.messages.push_back({data->too_big() ? std::string() : body, data->too_big()});
                body.clear();
                data.reset();
                envelope.reset();
                return true;
            }
            replies.clear();
            if (!p.f) {
                out.replies.push_back("500 5.5.6 Line too long");
                return true;
            }
            const bool had_from = envelope.from().has_value();
            const bool had_to = !envelope.to().empty();
            const bool greeted = envelope.greeted();
            const auto next = envelope.command(p.f.text(), replies);
            check_reply(replies);
            const char code = replies.back()[0];
            FUZZ_CHECK(envelope.to().size() <= smtp::max_recipients, "%zu recipients",
                       envelope.to().size());
            FUZZ_CHECK(!envelope.from() || envelope.greeted(), "MAIL before HELO");
            FUZZ_CHECK(envelope.to().empty() || envelope.from(), "RCPT before MAIL");
            FUZZ_CHECK(next != smtp::dialogue::next::data || (had_to && had_from && greeted),
                       "DATA without recipients");
            FUZZ_CHECK(code != '5' || (had_from == envelope.from().has_value() &&
                                       had_to == !envelope.to().empty()),
                       "a command refused with 5xx changed the envelope");
            for (std::string& r : replies) {
                out.replies.push_back(std::move(r));
            }
            if (next == smtp::dialogue::next::data) {
                data.emplace(max_size);
            }
            return next != smtp::dialogue::next::quit;
        });
    return out;
}

/// A message as a client sends it: each line that starts with "." gets another, then ".".
std::string stuffed(std::string_view msg) {
    std::string out;
    bool line_start = true;
    for (char c : msg) {
        if (line_start && c == '.') {
            out += '.';
        }
        out += c;
        line_start = c == '\n' && out.size() >= 2 && out[out.size() - 2] == '\r';
    }
    return out + ".\r\n";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto [in, batch, max_size] = input_of(data, size, {64 * 1024, 5, 64}, {10 << 20, 40});
    const transcript whole = converse(in, false, max_size, batch);
    const transcript small = converse(in, true, max_size, batch);
    FUZZ_CHECK(whole.replies == small.replies && whole.messages == small.messages,
               "one chunk: %zu replies, %zu messages; small chunks: %zu replies, %zu messages",
               whole.replies.size(), whole.messages.size(), small.replies.size(),
               small.messages.size());
    const std::string session = "EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n";
    for (const message& m : whole.messages) {
        FUZZ_CHECK(m.too_big || m.data.size() <= max_size, "a message over max_size kept");
        if (m.too_big) {
            continue;
        }
        const transcript again = converse(session + stuffed(m.data), false, max_size, batch);
        FUZZ_CHECK(again.messages.size() == 1 && again.messages[0] == m,
                   "\"%s\" stuffed does not read back", escaped(m.data).c_str());
    }
    return 0;
}
