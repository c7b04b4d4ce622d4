// SPDX-License-Identifier: MIT
// The seam holds: only the backend files name a kernel interface (<liburing.h>,
// <sys/epoll.h>), and chat/ and producers/ include no kernel header at all.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <catch2/catch.hpp>

namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

bool is_backend_file(const fs::path& p) {
    const std::string name = p.filename().string();
    return name.starts_with("uring_") || name.starts_with("epoll_");
}

}  // namespace

TEST_CASE("only the backend files include a kernel interface", "[core][headers]") {
    const fs::path root = RINGCHAT_SOURCE_ROOT;
    std::size_t checked = 0;
    for (const char* folder : {"core", "chat", "producers", "examples"}) {
        if (!fs::exists(root / folder)) {
            continue;
        }
        for (const auto& entry : fs::recursive_directory_iterator(root / folder)) {
            const fs::path& p = entry.path();
            if (!entry.is_regular_file() || (p.extension() != ".hpp" && p.extension() != ".cpp")) {
                continue;
            }
            ++checked;
            const std::string text = slurp(p);
            CAPTURE(p.string());
            if (!is_backend_file(p)) {
                CHECK(text.find("<liburing.h>") == std::string::npos);
                CHECK(text.find("<sys/epoll.h>") == std::string::npos);
            }
            if (std::string(folder) == "chat" || std::string(folder) == "producers") {
                CHECK(text.find("<liburing") == std::string::npos);
                CHECK(text.find("<linux/") == std::string::npos);
            }
        }
    }
    CHECK(checked > 20);
}
