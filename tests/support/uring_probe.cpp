// SPDX-License-Identifier: MIT
// Exits 0 when an io_uring reactor can be created here, 1 (with the reason) otherwise;
// tests/run uses it to require io_uring in the tests where the kernel offers it.
#include <cstdio>
#include <exception>

#include "core/reactor.hpp"

int main() {
    try {
        ringchat::reactor_options options;
        options.kind = ringchat::backend_kind::uring;
        ringchat::reactor r(options);
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "io_uring: %s\n", e.what());
        return 1;
    }
}
