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

// Installed, the headers live in include/ringchat/<folder>/: a header that named its neighbour
// from the source root ("core/task.hpp") would not be found there, or would find a user's file
// of the same name. Each one names its neighbours relative to itself.
TEST_CASE("the library's files include each other by relative path", "[core][headers]") {
    const fs::path root = RINGCHAT_SOURCE_ROOT;
    std::size_t checked = 0;
    for (const char* folder : {"core", "chat", "producers"}) {
        for (const auto& entry : fs::directory_iterator(root / folder)) {
            const fs::path& p = entry.path();
            if (p.extension() != ".hpp" && p.extension() != ".cpp") {
                continue;
            }
            ++checked;
            const std::string text = slurp(p);
            CAPTURE(p.string());
            for (const char* from_root : {"#include \"core/", "#include \"chat/",
                                          "#include \"producers/"}) {
                CHECK(text.find(from_root) == std::string::npos);
            }
        }
    }
    CHECK(checked > 40);
}

// Every source file says its licence in its first lines (the LICENSE file has the text).
TEST_CASE("every source file carries its SPDX licence line", "[core][headers]") {
    const fs::path root = RINGCHAT_SOURCE_ROOT;
    std::size_t checked = 0;
    for (const char* folder : {"core", "chat", "producers", "examples", "bench", "tests"}) {
        for (const auto& entry : fs::recursive_directory_iterator(root / folder)) {
            const fs::path& p = entry.path();
            const auto ext = p.extension();
            if (!entry.is_regular_file() || (ext != ".hpp" && ext != ".cpp" && ext != ".py")) {
                continue;
            }
            ++checked;
            const std::string head = slurp(p).substr(0, 200);
            CAPTURE(p.string());
            CHECK(head.find("SPDX-License-Identifier: MIT") != std::string::npos);
        }
    }
    CHECK(checked > 100);
}
