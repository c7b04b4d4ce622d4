// SPDX-License-Identifier: MIT
// tests/examples/test_smtp_protocol.cpp — examples/smtp's protocol without a server: the
// command dialogue and DATA's unstuffing, and the findings of tests/fuzz/fuzz_smtp as
// regression cases (their inputs are in tests/fuzz/corpus/smtp/regression-*).
#include "examples/smtp/protocol.hpp"

#include <string>
#include <string_view>
#include <vector>

#include <catch2/catch.hpp>

namespace {

std::vector<std::string> answer(smtp::dialogue& d, std::string_view line) {
    std::vector<std::string> replies;
    d.command(line, replies);
    return replies;
}

}  // namespace

TEST_CASE("smtp protocol: a session's commands and their replies", "[examples][smtp]") {
    smtp::dialogue d("ringchat.local", 100);
    CHECK(answer(d, "MAIL FROM:<a@x>") == std::vector<std::string>{"503 5.5.1 Say HELO or EHLO first"});
    CHECK(answer(d, "EHLO client") ==
          std::vector<std::string>{"250-ringchat.local greets client", "250-SIZE 100",
                                   "250-8BITMIME", "250 PIPELINING"});
    CHECK(answer(d, "mail from: <a@x>") == std::vector<std::string>{"250 2.1.0 OK"});
    CHECK(answer(d, "RCPT TO:<>") == std::vector<std::string>{"501 5.5.4 Syntax: RCPT TO:<address>"});
    CHECK(answer(d, "RCPT TO:<b@y>") == std::vector<std::string>{"250 2.1.5 OK"});
    std::vector<std::string> replies;
    CHECK(d.command("DATA", replies) == smtp::dialogue::next::data);
    CHECK(d.to() == std::vector<std::string>{"b@y"});
}

TEST_CASE("smtp protocol: STARTTLS offered, answered 220, then forgotten after the upgrade",
          "[examples][smtp]") {
    smtp::dialogue plain("ringchat.local", 100);
    CHECK(answer(plain, "STARTTLS") == std::vector<std::string>{"500 5.5.2 Command not recognized"});
    smtp::dialogue d("ringchat.local", 100);
    d.offer_starttls(true);
    CHECK(answer(d, "EHLO client") ==
          std::vector<std::string>{"250-ringchat.local greets client", "250-SIZE 100",
                                   "250-8BITMIME", "250-STARTTLS", "250 PIPELINING"});
    CHECK(answer(d, "MAIL FROM:<a@x>") == std::vector<std::string>{"250 2.1.0 OK"});
    CHECK(answer(d, "STARTTLS now") == std::vector<std::string>{"501 5.5.4 Syntax: STARTTLS"});
    std::vector<std::string> replies;
    CHECK(d.command("starttls", replies) == smtp::dialogue::next::starttls);
    CHECK(replies == std::vector<std::string>{"220 2.0.0 Ready to start TLS"});
    d.started_tls();
    // RFC 3207 §4.2: the client greets again, the envelope is gone, STARTTLS is not offered.
    CHECK_FALSE(d.greeted());
    CHECK_FALSE(d.from());
    CHECK(answer(d, "EHLO client") ==
          std::vector<std::string>{"250-ringchat.local greets client", "250-SIZE 100",
                                   "250-8BITMIME", "250 PIPELINING"});
    CHECK(answer(d, "STARTTLS") == std::vector<std::string>{"500 5.5.2 Command not recognized"});
}

TEST_CASE("smtp protocol: a bare CR or LF in a command is refused, never echoed (fuzz finding)",
          "[examples][smtp]") {
    // fuzz_smtp: "EHLO cl\nient" was answered "250-ringchat.local greets cl\nient": a client
    // reading replies by LF saw "ient" as a reply line of its own.
    for (const std::string_view line : {"EHLO cl\nient", "HELO a\rb", "MAIL FROM:<a@x>\n250 ok"}) {
        CAPTURE(line);
        smtp::dialogue d("ringchat.local", 100);
        std::vector<std::string> replies;
        CHECK(d.command(line, replies) == smtp::dialogue::next::command);
        CHECK(replies == std::vector<std::string>{
                             "500 5.5.2 Syntax error: bare <CR> or <LF> in a command"});
        CHECK_FALSE(d.greeted());
        CHECK_FALSE(d.from());
    }
}

TEST_CASE("smtp protocol: DATA ends at a line that is '.', and stuffed dots go",
          "[examples][smtp]") {
    smtp::data_reader r(1000);
    std::string_view text;
    bool crlf = false;
    REQUIRE(r.line("..two dots", false, text, crlf));
    CHECK(text == ".two dots");
    CHECK(crlf);
    REQUIRE(r.line(".abc", true, text, crlf));  // the first piece of a long line
    CHECK(text == "abc");
    CHECK_FALSE(crlf);
    REQUIRE(r.line(".", false, text, crlf));  // its last piece: not the end line
    CHECK(text == ".");
    CHECK_FALSE(r.line(".", false, text, crlf));
    CHECK(r.size() == 11 + 3 + 3);
}
