// SPDX-License-Identifier: MIT
// bench/heap_census/census.c — where a server's heap goes: live blocks counted by size.
//
// Preloaded into a server (LD_PRELOAD=build-release/bench/libheap_census.so), it counts every
// block malloc, calloc, realloc and the aligned allocators hand out and free takes back, by the
// block's usable size (malloc_usable_size: what glibc really gives, 24, 40, 56 ... bytes).
// Each SIGUSR2 writes the live counts to $RINGCHAT_HEAP_CENSUS.N (N = 1, 2, ...; default
// prefix /tmp/heap-census.PID), one "usable_bytes blocks" line per size, blocks over 64 KiB
// together on a "large BLOCKS BYTES" line. Two censuses, before and while connections are
// held, give what each connection costs and in which blocks (bench/suite.py's idle scenario;
// loadgen --census sends the signals). The blocks are glibc's own (__libc_malloc and friends),
// so the measured process allocates exactly as it would without the census; only the counting
// (one relaxed atomic add per call) is added.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// glibc's allocator under its internal names (exported by libc.so.6 since glibc 2.0).
extern void* __libc_malloc(size_t);
extern void* __libc_calloc(size_t, size_t);
extern void* __libc_realloc(void*, size_t);
extern void* __libc_memalign(size_t, size_t);
extern void __libc_free(void*);

// 64-bit glibc's usable sizes are 16k + 8 (24, 40, 56 ...): one bucket each, written as
// i * 16 + 8, the size itself.
enum { step = 16, small_limit = 64 * 1024, buckets = small_limit / step + 1 };

static long live_[buckets];  // blocks of usable size in [i*16, i*16+16); signed: see free()
static long large_blocks_;
static long large_bytes_;
static char prefix_[512];
static long census_number_;

static void count(void* p, long sign) {
    if (p == NULL) {
        return;
    }
    const size_t usable = malloc_usable_size(p);
    if (usable <= small_limit) {
        __atomic_fetch_add(&live_[usable / step], sign, __ATOMIC_RELAXED);
    } else {
        __atomic_fetch_add(&large_blocks_, sign, __ATOMIC_RELAXED);
        __atomic_fetch_add(&large_bytes_, sign * (long)usable, __ATOMIC_RELAXED);
    }
}

void* malloc(size_t n) {
    void* p = __libc_malloc(n);
    count(p, 1);
    return p;
}

void* calloc(size_t n, size_t size) {
    void* p = __libc_calloc(n, size);
    count(p, 1);
    return p;
}

void* realloc(void* old, size_t n) {
    // Counted out first: once realloc returns, `old` may belong to another thread's block.
    const size_t was = old != NULL ? malloc_usable_size(old) : 0;
    count(old, -1);
    void* p = __libc_realloc(old, n);
    if (p == NULL && n != 0 && old != NULL) {
        // Failed: the old block is still live. Counted back by its size, not by looking at it.
        if (was <= small_limit) {
            __atomic_fetch_add(&live_[was / step], 1, __ATOMIC_RELAXED);
        } else {
            __atomic_fetch_add(&large_blocks_, 1, __ATOMIC_RELAXED);
            __atomic_fetch_add(&large_bytes_, (long)was, __ATOMIC_RELAXED);
        }
    }
    count(p, 1);
    return p;
}

// A block the census did not count (made before it was loaded) makes its bucket go below
// zero when freed; that shows in the census instead of being hidden.
void free(void* p) {
    count(p, -1);
    __libc_free(p);
}

void* reallocarray(void* old, size_t n, size_t size) {
    size_t bytes = 0;
    if (__builtin_mul_overflow(n, size, &bytes)) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc(old, bytes);  // glibc's own would reach its realloc uncounted
}

void* memalign(size_t align, size_t n) {
    void* p = __libc_memalign(align, n);
    count(p, 1);
    return p;
}

void* aligned_alloc(size_t align, size_t n) { return memalign(align, n); }

int posix_memalign(void** out, size_t align, size_t n) {
    if (align < sizeof(void*) || (align & (align - 1)) != 0) {
        return EINVAL;
    }
    void* p = memalign(align, n);
    if (p == NULL) {
        return ENOMEM;
    }
    *out = p;
    return 0;
}

void* valloc(size_t n) { return memalign((size_t)sysconf(_SC_PAGESIZE), n); }

// ---- the census, written from the signal handler: only async-signal-safe calls below

static size_t put_text(char* out, size_t at, const char* s) {
    for (; *s != '\0'; ++s) {
        out[at++] = *s;
    }
    return at;
}

static size_t put_number(char* out, size_t at, long v) {
    char digits[24];
    size_t n = 0;
    unsigned long u = v < 0 ? 0UL - (unsigned long)v : (unsigned long)v;
    do {
        digits[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0) {
        out[at++] = '-';
    }
    while (n > 0) {
        out[at++] = digits[--n];
    }
    return at;
}

static void write_all(int fd, const char* s, size_t n) {
    while (n > 0) {
        const ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return;
        }
        s += w;
        n -= (size_t)w;
    }
}

static void write_census(int sig) {
    (void)sig;
    const int saved_errno = errno;
    char path[600];
    char tmp[640];
    size_t at = put_text(path, 0, prefix_);
    path[at++] = '.';
    at = put_number(path, at, __atomic_add_fetch(&census_number_, 1, __ATOMIC_RELAXED));
    path[at] = '\0';
    memcpy(tmp, path, at);
    memcpy(tmp + at, ".tmp", 5);
    const int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
        char line[64];
        write_all(fd, "# usable_bytes blocks\n", 22);
        for (size_t i = 0; i < buckets; ++i) {
            const long n = __atomic_load_n(&live_[i], __ATOMIC_RELAXED);
            if (n != 0) {
                size_t k = put_number(line, 0, (long)(i * step + step / 2));
                line[k++] = ' ';
                k = put_number(line, k, n);
                line[k++] = '\n';
                write_all(fd, line, k);
            }
        }
        size_t k = put_text(line, 0, "large ");
        k = put_number(line, k, __atomic_load_n(&large_blocks_, __ATOMIC_RELAXED));
        line[k++] = ' ';
        k = put_number(line, k, __atomic_load_n(&large_bytes_, __ATOMIC_RELAXED));
        line[k++] = '\n';
        write_all(fd, line, k);
        close(fd);
        rename(tmp, path);  // whole or not at all, for whoever waits for the file
    }
    errno = saved_errno;
}

__attribute__((constructor)) static void start_census(void) {
    const char* p = getenv("RINGCHAT_HEAP_CENSUS");
    size_t at = 0;
    if (p != NULL && *p != '\0' && strlen(p) < sizeof prefix_ - 32) {
        at = put_text(prefix_, 0, p);
    } else {
        at = put_text(prefix_, 0, "/tmp/heap-census.");
        at = put_number(prefix_, at, (long)getpid());
    }
    prefix_[at] = '\0';
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = write_census;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR2, &sa, NULL);
}
