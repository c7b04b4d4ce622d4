// SPDX-License-Identifier: MIT
// tests/examples/test_smtp.cpp — the smtp example against Python's smtplib on both backends:
// several messages over two sessions, dot-stuffed lines, commands out of order, a line and a
// message over the limits; every stored file compared byte for byte (smtp_client.py).
#include <unistd.h>

#include <filesystem>
#include <string>

#include <catch2/catch.hpp>

#include "tests/examples/harness.hpp"
#include "tests/support/support.hpp"

using namespace ringchat;
using namespace ringchat::test;

TEST_CASE("smtp: smtplib's messages are stored byte for byte; errors are SMTP replies",
          "[examples][smtp]") {
    const auto kind = GENERATE(from_range(backends()));
    CAPTURE(kind);
    const auto maildir = std::filesystem::temp_directory_path() /
                         ("ringchat-smtp-" + std::to_string(getpid()) + "-" + backend_flag(kind));
    std::filesystem::remove_all(maildir);
    {
        example_server server("smtp", kind,
                              {"--maildir", maildir.string(), "--max-size", "100000"});
        const auto r = run_command({"python3", example_script("smtp_client.py").string(),
                                    server.port_text(), maildir.string()},
                                   {}, std::chrono::seconds(60));
        INFO("smtp_client.py said:\n" << r.out << r.err);
        CHECK_FALSE(r.timed_out);
        CHECK(r.out == "ok\n");
        CHECK(server.stop() == 0);
    }
    std::filesystem::remove_all(maildir);
}

TEST_CASE("smtp: --maildir is required", "[examples][smtp]") {
    const auto r = run_command({example_program("smtp").string(), "--port", "0"});
    CHECK(r.status == 2);
    CHECK(r.err.find("--maildir") != std::string::npos);
}
