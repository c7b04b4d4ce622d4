// SPDX-License-Identifier: MIT
// producers/lines.hpp — a sequence of lines, each followed by a separator (medusa's
// lines_producer): a multi-line reply, a directory listing, an SMTP or POP3 response.
//
//     producers::lines({"250-mail.example.org", "250 PIPELINING"})
//     // "250-mail.example.org\r\n250 PIPELINING\r\n"
//
// The separator ("\r\n" by default) follows every line, the last one included: the output is
// a sequence of terminated lines, as line protocols want. Each chunk holds up to
// `lines_per_chunk` whole lines (50 by default, as medusa's); a line is never split.
// Invariant: no empty chunk before the end (lines that add up to nothing are skipped).
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "producer.hpp"

namespace ringchat::producers {

class lines {
public:
    explicit lines(std::vector<std::string> text, std::string separator = "\r\n",
                   std::size_t lines_per_chunk = 50) noexcept
        : lines_(std::move(text)),
          separator_(std::move(separator)),
          per_chunk_(lines_per_chunk == 0 ? 1 : lines_per_chunk) {}

    /// The next up to lines_per_chunk lines, each with its separator; empty at the end.
    chunk more();

private:
    std::vector<std::string> lines_;
    std::string separator_;
    std::size_t per_chunk_;
    std::size_t next_ = 0;  // the first line not produced yet
};

}  // namespace ringchat::producers
