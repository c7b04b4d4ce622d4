// SPDX-License-Identifier: MIT
// bench/file_send — a file through a channel over TCP loopback: the zero-copy path
// (sendfile) against the read path (read into memory, then send), on each backend.
//
// One process, one reactor: the channel pushes a file producer and finishes, a client in the
// same reactor receives and discards. Both paths share the client's cost, so the difference
// is the sender's. Reported: throughput (MiB/s) and the process's CPU time per GiB
// (getrusage), medians over the repetitions, which run interleaved (read, zero copy, read,
// zero copy ...) so that drift on a shared machine hits both alike.
//
// Usage: file_send [--size MIB] [--reps N] [--backend uring|epoll|all]
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "chat/channel.hpp"
#include "core/listener.hpp"
#include "core/reactor.hpp"
#include "examples/common/cli.hpp"
#include "producers/file.hpp"

using namespace ringchat;

namespace {

struct sample {
    double seconds = 0;
    double cpu_seconds = 0;
};

double cpu_now() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

task<std::uint64_t> drain_socket(ringchat::socket s) {
    std::vector<std::byte> buf(256 * 1024);
    std::uint64_t total = 0;
    for (;;) {
        auto n = co_await s.recv(buf);
        if (!n || *n == 0) {
            co_return total;
        }
        total += *n;
    }
}

task<std::uint64_t> send_once(reactor& r, const std::string& path, bool zero_copy) {
    auto l = listener::bind(r, address::ipv4("127.0.0.1", 0)).value();
    auto client = (co_await ringchat::socket::connect(r, l.local_address())).value();
    auto server = (co_await l.accept()).value();
    chat::channel_options o;
    o.zero_copy = zero_copy;
    chat::channel ch(std::move(server), o);
    auto f = producers::file::open(r, path);
    if (!f) {
        throw std::system_error(f.error(), path);
    }
    ch.push_with_producer(std::move(*f));
    bool finished = false;
    r.spawn([](chat::channel& ch, bool& finished) -> task<> {
        co_await ch.finish();  // sends the file, then closes: the client sees end of stream
        finished = true;
    }(ch, finished));
    const std::uint64_t got = co_await drain_socket(std::move(client));
    while (!finished) {
        co_await r.sleep_for(std::chrono::milliseconds(1));
    }
    co_return got;
}

sample measure(backend_kind kind, const std::string& path, std::uint64_t size, bool zero_copy) {
    reactor_options options;
    options.kind = kind;
    reactor r(options);
    const double cpu0 = cpu_now();
    const auto t0 = std::chrono::steady_clock::now();
    const std::uint64_t got = r.block_on(send_once(r, path, zero_copy));
    const auto t1 = std::chrono::steady_clock::now();
    if (got != size) {
        fmt::print(stderr, "file_send: received {} bytes of {}\n", got, size);
        std::exit(1);
    }
    return {std::chrono::duration<double>(t1 - t0).count(), cpu_now() - cpu0};
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
    std::uint64_t mib = 256;
    int reps = 5;
    std::string which = "all";
    constexpr std::string_view usage =
        "usage: file_send [--size MIB] [--reps N] [--backend uring|epoll|all]\n"
        "A file through a channel over TCP loopback: sendfile against read-and-send.\n"
        "\n"
        "options:\n"
        "  --size MIB           the file's size (default 256)\n"
        "  --reps N             repetitions, medians reported (default 5)\n"
        "  --backend KIND       uring, epoll or all (default all)\n"
        "  --help               show this help and exit\n"
        "  --version            show the version and exit\n";
    cli::args a("file_send", usage, argc, argv);
    while (a.next()) {
        if (a.is("--size")) {
            mib = a.number("a size in MiB (1 or more)", std::uint64_t{1}, std::uint64_t{1} << 20);
        } else if (a.is("--reps")) {
            reps = a.number("a number of repetitions (1 or more)", 1, 1000);
        } else if (a.is("--backend")) {
            which = std::string(a.value());
            if (which != "all" && which != "uring" && which != "epoll") {
                a.bad_value("uring, epoll or all");
            }
        } else {
            a.unknown();
        }
    }
    std::vector<backend_kind> kinds;
    if (which == "all" || which == "uring") {
        kinds.push_back(backend_kind::uring);
    }
    if (which == "all" || which == "epoll") {
        kinds.push_back(backend_kind::epoll);
    }

    // The file: in the page cache (written just now), so the disk is not what is measured.
    const std::string path =
        (std::filesystem::temp_directory_path() / fmt::format("ringchat-file-send-{}", getpid()))
            .string();
    {
        std::string block(1 << 20, '\0');
        for (std::size_t i = 0; i < block.size(); ++i) {
            block[i] = static_cast<char>(i * 131 % 251);
        }
        const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        for (std::uint64_t i = 0; i < mib; ++i) {
            if (fd < 0 || ::write(fd, block.data(), block.size()) != static_cast<ssize_t>(block.size())) {
                fmt::print(stderr, "file_send: cannot write {}\n", path);
                return 1;
            }
        }
        ::close(fd);
    }
    const std::uint64_t size = mib << 20;

    fmt::print("file_send: {} MiB through a channel over TCP loopback, {} repetitions, medians\n",
               mib, reps);
    fmt::print("{:<8} {:>14} {:>14} {:>16} {:>16} {:>10} {:>10}\n", "backend", "read MiB/s",
               "0-copy MiB/s", "read CPU ms/GiB", "0-copy CPU ms/GiB", "speed x", "CPU x");
    for (const backend_kind kind : kinds) {
        std::vector<double> rt, zt, rc, zc;
        bool available = true;
        for (int i = 0; i < reps && available; ++i) {
            for (const bool zero_copy : {false, true}) {
                sample s;
                try {
                    s = measure(kind, path, size, zero_copy);
                } catch (const std::exception& e) {
                    fmt::print("{:<8} unavailable: {}\n", to_string(kind), e.what());
                    available = false;
                    break;
                }
                (zero_copy ? zt : rt).push_back(static_cast<double>(mib) / s.seconds);
                (zero_copy ? zc : rc).push_back(s.cpu_seconds * 1000.0 * 1024.0 /
                                                static_cast<double>(mib));
            }
        }
        if (!available) {
            continue;
        }
        const double r_speed = median(rt), z_speed = median(zt);
        const double r_cpu = median(rc), z_cpu = median(zc);
        fmt::print("{:<8} {:>14.0f} {:>14.0f} {:>16.0f} {:>16.0f} {:>10.2f} {:>10.2f}\n",
                   to_string(kind), r_speed, z_speed, r_cpu, z_cpu, z_speed / r_speed,
                   z_cpu / r_cpu);
    }
    std::filesystem::remove(path);
    return 0;
}
