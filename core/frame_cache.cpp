// SPDX-License-Identifier: MIT
// core/frame_cache.cpp — the per-thread cache of freed coroutine frames (see frame_cache.hpp).
#include "frame_cache.hpp"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

#if defined(__SANITIZE_ADDRESS__)
#define RINGCHAT_FRAME_CACHE_OFF 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RINGCHAT_FRAME_CACHE_OFF 1
#endif
#endif

namespace ringchat::detail {

#if defined(RINGCHAT_FRAME_CACHE_OFF)

void* allocate_frame(std::size_t size) { return ::operator new(size); }
void free_frame(void* frame, std::size_t) noexcept { ::operator delete(frame); }
bool frame_cache_enabled() noexcept { return false; }
std::size_t cached_frame_bytes() noexcept { return 0; }

#else

namespace {

constexpr std::size_t class_count = (max_cached_frame - 24) / 16 + 1;

// A cached frame's block holds the link to the next one of its class.
struct free_block {
    free_block* next;
};

// Trivially destructible and constant-initialised, so it is usable at any time in the thread's
// life, also while other thread-locals are destroyed; the drainer below empties it first.
struct cache_state {
    enum : std::uint8_t { unread, on, off, gone };
    free_block* heads[class_count];
    std::size_t bytes;
    std::uint8_t state;
};
constinit thread_local cache_state cache{};

struct drainer {
    ~drainer() {
        cache.state = cache_state::gone;  // what is freed after this goes to the heap
        for (std::size_t i = 0; i < class_count; ++i) {
            while (free_block* b = cache.heads[i]) {
                cache.heads[i] = b->next;
                ::operator delete(b);
            }
        }
        cache.bytes = 0;
    }
};

// The first use on a thread: on unless RINGCHAT_FRAME_CACHE is 0, and emptied when it ends.
void read_setting() noexcept {
    const char* setting = std::getenv("RINGCHAT_FRAME_CACHE");
    if (setting != nullptr && std::strcmp(setting, "0") == 0) {
        cache.state = cache_state::off;
        return;
    }
    cache.state = cache_state::on;
    static thread_local drainer at_exit;  // constructed here, destroyed when the thread ends
    (void)at_exit;
}

// A frame's class and the size of its block. Every frame that may be cached is allocated at its
// class's full size, so any frame of the class fits in it later; the sizes are those glibc's
// malloc rounds a request up to anyway on 64-bit (a chunk of 16n + 32 bytes less its 8-byte
// header), so a frame from here takes no more memory than one malloc'd at its own size.
// (Classes 64 bytes wide cost idle connections 80 bytes each: measured, 2,042 against 1,962.)
constexpr std::size_t class_of(std::size_t size) noexcept {
    return size <= 24 ? 0 : (size - 24 + 15) / 16;
}
constexpr std::size_t block_size(std::size_t cls) noexcept { return 16 * cls + 24; }
static_assert(block_size(class_of(max_cached_frame)) == max_cached_frame);
static_assert(class_of(max_cached_frame) == class_count - 1);

}  // namespace

void* allocate_frame(std::size_t size) {
    if (size == 0 || size > max_cached_frame) {
        return ::operator new(size);
    }
    const std::size_t cls = class_of(size);
    if (cache.state == cache_state::unread) {
        read_setting();
    }
    if (free_block* b = cache.heads[cls]) {
        cache.heads[cls] = b->next;
        cache.bytes -= block_size(cls);
        return b;
    }
    return ::operator new(block_size(cls));
}

void free_frame(void* frame, std::size_t size) noexcept {
    if (size == 0 || size > max_cached_frame) {
        ::operator delete(frame);
        return;
    }
    const std::size_t cls = class_of(size);
    if (cache.state == cache_state::unread) {
        read_setting();  // allocated on another thread: this one's cache takes it
    }
    if (cache.state != cache_state::on || cache.bytes + block_size(cls) > max_cached_bytes) {
        ::operator delete(frame);
        return;
    }
    auto* b = static_cast<free_block*>(frame);
    b->next = cache.heads[cls];
    cache.heads[cls] = b;
    cache.bytes += block_size(cls);
}

bool frame_cache_enabled() noexcept {
    if (cache.state == cache_state::unread) {
        read_setting();
    }
    return cache.state == cache_state::on;
}

std::size_t cached_frame_bytes() noexcept { return cache.bytes; }

#endif

}  // namespace ringchat::detail
