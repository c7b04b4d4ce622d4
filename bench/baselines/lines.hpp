// SPDX-License-Identifier: MIT
// bench/baselines/lines.hpp — the --lines mode of the hand-written baselines: the work a
// hand-written line server does per message, and nothing more.
//
// By default a baseline sends each received buffer back as it is: the same bytes as echoing
// each line, but it never looks for the lines, so it is the floor for any server of a line
// protocol. With --lines it does what ringchat's echo does with each message: finds each
// "\n" (memchr), hands the line to its handler, and the handler appends the reply (the line
// and its "\n") to the connection's output, which goes out in one send per received buffer.
// A line split across reads is kept, joined, and handed over whole. The suite measures
// ringchat against both: the floor, and the same work done by hand.
#pragma once

#include <cstddef>
#include <cstring>
#include <string>

namespace baselines {

/// As ringchat's default max_frame: a longer line ends the connection.
constexpr std::size_t max_line = 64 * 1024;

/// One connection's input side in --lines mode.
class line_echo {
public:
    /// Echoes every line completed by [p, p + n) into `out`; false when a line is too long.
    bool feed(const char* p, std::size_t n, std::string& out) {
        const char* const end = p + n;
        while (p < end) {
            const auto* nl = static_cast<const char*>(std::memchr(p, '\n', end - p));
            if (nl == nullptr) {
                if (partial_.size() + static_cast<std::size_t>(end - p) > max_line) {
                    return false;
                }
                partial_.append(p, end);
                return true;
            }
            if (partial_.empty()) {
                on_line(p, static_cast<std::size_t>(nl - p), out);
            } else {
                partial_.append(p, nl);
                if (partial_.size() > max_line) {
                    return false;
                }
                on_line(partial_.data(), partial_.size(), out);
                partial_.clear();
            }
            p = nl + 1;
        }
        return true;
    }

private:
    // The handler: the reply is the line with its "\n".
    static void on_line(const char* line, std::size_t n, std::string& out) {
        out.append(line, n);
        out.push_back('\n');
    }

    std::string partial_;  // the start of a line the next read completes
};

}  // namespace baselines
