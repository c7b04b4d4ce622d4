// SPDX-License-Identifier: MIT
// The per-thread cache of coroutine frames (core/frame_cache.hpp): reuse by size class, its
// bounds, and the two ways it is off. Each case runs on a thread of its own, whose cache
// starts empty.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <thread>
#include <vector>

#include "core/frame_cache.hpp"
#include "core/task.hpp"

using namespace ringchat;
using namespace ringchat::detail;

namespace {

template <class F>
void on_new_thread(F f) {
    std::thread t(f);
    t.join();
}

task<int> add(int a, int b) { co_return a + b; }

}  // namespace

TEST_CASE("frame cache: a freed frame is taken again by the next frame of its class; large "
          "frames and frames past the per-thread bound go back to the heap",
          "[core][frame_cache]") {
    struct seen {
        bool enabled = false;
        std::size_t after_free = 0, after_reuse = 0, after_large = 0, before_flood = 0,
                    after_flood = 0;
        bool reused = false, other_class = false, task_cached = false;
        int sum = 0;
    } s;
    on_new_thread([&] {
        s.enabled = frame_cache_enabled();
        void* p = allocate_frame(100);
        free_frame(p, 100);
        s.after_free = cached_frame_bytes();  // a block of 104 bytes, as malloc(100) gives
        void* other = allocate_frame(105);    // the next class: not that block
        s.other_class = other != p;
        free_frame(other, 105);
        const std::size_t before_reuse = cached_frame_bytes();
        void* q = allocate_frame(89);  // the same class as 100 (89..104 bytes)
        s.reused = q == p;
        s.after_reuse = before_reuse - cached_frame_bytes();
        free_frame(q, 89);

        void* big = allocate_frame(max_cached_frame + 1);
        const std::size_t before_large = cached_frame_bytes();
        free_frame(big, max_cached_frame + 1);
        s.after_large = cached_frame_bytes() - before_large;

        s.before_flood = cached_frame_bytes();
        std::vector<void*> flood;
        for (std::size_t i = 0; i < max_cached_bytes / max_cached_frame + 10; ++i) {
            flood.push_back(allocate_frame(max_cached_frame));
        }
        for (void* f : flood) {
            free_frame(f, max_cached_frame);
        }
        s.after_flood = cached_frame_bytes();

        // A task's frame comes from the cache and goes back to it.
        {
            task<int> t = add(2, 3);
            const std::size_t while_alive = cached_frame_bytes();
            t.start();
            s.sum = t.done() ? 5 : 0;
            t = task<int>();
            s.task_cached = !s.enabled || cached_frame_bytes() > while_alive;
        }
    });
    if (!s.enabled) {
        // AddressSanitizer builds: every frame goes to the heap, so a use after free is seen.
        CHECK(s.after_free == 0);
        CHECK(s.after_flood == 0);
        return;
    }
    CHECK(s.after_free == 104);
    CHECK(s.other_class);
    CHECK(s.reused);
    CHECK(s.after_reuse == 104);
    CHECK(s.after_large == 0);
    // As many whole blocks of the largest class as fit beside what was cached already.
    const std::size_t room = max_cached_bytes - s.before_flood;
    CHECK(s.after_flood == s.before_flood + room / max_cached_frame * max_cached_frame);
    CHECK(s.task_cached);
    CHECK(s.sum == 5);
}

TEST_CASE("frame cache: RINGCHAT_FRAME_CACHE=0 turns it off for the threads that start after",
          "[core][frame_cache]") {
    ::setenv("RINGCHAT_FRAME_CACHE", "0", 1);
    bool enabled = true;
    std::size_t cached = 1;
    on_new_thread([&] {
        enabled = frame_cache_enabled();
        void* p = allocate_frame(200);
        free_frame(p, 200);
        cached = cached_frame_bytes();
    });
    ::unsetenv("RINGCHAT_FRAME_CACHE");
    CHECK_FALSE(enabled);
    CHECK(cached == 0);
    bool enabled_again = false;
    on_new_thread([&] { enabled_again = frame_cache_enabled(); });
#if defined(__SANITIZE_ADDRESS__)
    CHECK_FALSE(enabled_again);
#else
    CHECK(enabled_again);
#endif
}
