// SPDX-License-Identifier: MIT
// frame_cache: where ringchat's coroutine frames come from — a per-thread cache of freed frames.
//
// A channel's writer is a coroutine that ends when its queue empties, so a request-reply
// protocol allocates and frees one writer frame per reply (and a task per message, where the
// handler awaits one). Fifty connections answered in one turn hold fifty such frames at once;
// glibc's per-thread cache keeps seven blocks of a size, and the rest went through its arenas
// (callgrind, echo at 50 connections: about 250 instructions of malloc and free per request).
// Here a freed frame goes onto a free list of its size class, kept per thread, and the next
// frame of that class takes it back: a few instructions, no lock.
//
// Bounds: frames up to max_cached_frame bytes, in classes 16 bytes apart (each the size malloc
// rounds its requests to, so a cached frame is no larger than a malloc'd one); at most
// max_cached_bytes cached per thread in all (frames beyond go back to the heap), released when
// the thread ends. A frame freed on another thread than the one that allocated it joins the
// freeing thread's cache (both are plain heap blocks).
//
// Off under AddressSanitizer (a reused frame would hide a use after free), and where the
// environment variable RINGCHAT_FRAME_CACHE is 0 (read once per thread, for measuring).
#pragma once

#include <cstddef>

namespace ringchat::detail {

inline constexpr std::size_t max_cached_frame = 1032;
inline constexpr std::size_t max_cached_bytes = 256 * 1024;

/// A frame of `size` bytes: from this thread's cache, else from ::operator new (which throws
/// std::bad_alloc as usual).
void* allocate_frame(std::size_t size);
/// Gives back a frame from allocate_frame(size), with the same size.
void free_frame(void* frame, std::size_t size) noexcept;

/// Whether this thread caches frames (false under AddressSanitizer, or RINGCHAT_FRAME_CACHE=0).
bool frame_cache_enabled() noexcept;
/// What this thread's cache holds now, in bytes (for tests).
std::size_t cached_frame_bytes() noexcept;

/// Mixed into a promise type: its coroutine's frames come from the cache.
struct cached_frame {
    static void* operator new(std::size_t size) { return allocate_frame(size); }
    static void operator delete(void* frame, std::size_t size) noexcept {
        free_frame(frame, size);
    }
};

}  // namespace ringchat::detail
