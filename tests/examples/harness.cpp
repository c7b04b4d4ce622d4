// SPDX-License-Identifier: MIT
// tests/examples/harness.cpp — child processes for the example tests: servers and clients.
#include "tests/examples/harness.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <utility>

extern char** environ;

namespace ringchat::test {
namespace {

using steady = std::chrono::steady_clock;

void ignore_sigpipe() {
    // A child that exits before reading all its input must not kill the test with SIGPIPE.
    static const bool done = [] {
        ::signal(SIGPIPE, SIG_IGN);
        return true;
    }();
    (void)done;
}

void make_pipe(int fds[2]) {
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        throw std::system_error(errno, std::system_category(), "pipe2");
    }
}

int exit_code(int status) {
    if (WIFEXITED(status)) {
        return WEXITSTATUS(status);
    }
    if (WIFSIGNALED(status)) {
        return 128 + WTERMSIG(status);
    }
    return -1;
}

/// Waits for `pid` until `deadline`; false if it is still running then.
bool reap(pid_t pid, steady::time_point deadline, int& code) {
    for (;;) {
        int status = 0;
        const pid_t got = ::waitpid(pid, &status, WNOHANG);
        if (got == pid) {
            code = exit_code(status);
            return true;
        }
        if (got < 0 && errno != EINTR) {
            code = -1;
            return true;  // not our child any more: nothing to wait for
        }
        if (steady::now() >= deadline) {
            return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
}

int kill_and_reap(pid_t pid) {
    ::kill(pid, SIGKILL);
    int code = -1;
    reap(pid, steady::now() + std::chrono::seconds(10), code);
    return code;
}

pid_t spawn(const std::vector<std::string>& args, int in, int out, int err) {
    ignore_sigpipe();
    std::vector<char*> argv;
    for (const auto& a : args) {
        argv.push_back(const_cast<char*>(a.c_str()));
    }
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (in >= 0) {
        posix_spawn_file_actions_adddup2(&fa, in, 0);
    }
    if (out >= 0) {
        posix_spawn_file_actions_adddup2(&fa, out, 1);
    }
    if (err >= 0) {
        posix_spawn_file_actions_adddup2(&fa, err, 2);
    }
    pid_t pid = -1;
    const int rc = ::posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        throw std::system_error(rc, std::system_category(), "posix_spawn " + args[0]);
    }
    return pid;
}

}  // namespace

std::filesystem::path build_dir() {
    return std::filesystem::read_symlink("/proc/self/exe").parent_path().parent_path();
}

std::filesystem::path example_program(const std::string& name) {
    const auto dir = build_dir() / "examples";
    for (const auto& p : {dir / name, dir / name / name}) {
        if (std::filesystem::is_regular_file(p)) {
            return p;
        }
    }
    throw std::runtime_error("example program not built: " + (dir / name).string());
}

std::filesystem::path example_script(const std::string& name) {
    return std::filesystem::path(RINGCHAT_SOURCE_ROOT) / "tests" / "examples" / name;
}

std::string backend_flag(backend_kind kind) { return kind == backend_kind::uring ? "uring" : "epoll"; }
std::string backend_shown(backend_kind kind) {
    return kind == backend_kind::uring ? "io_uring" : "epoll";
}

bool sanitized() noexcept {
#if defined(__SANITIZE_ADDRESS__)
    return true;
#else
    return false;
#endif
}

std::filesystem::path temp_log(const std::string& what) {
    return std::filesystem::temp_directory_path() /
           ("ringchat-" + what + "-" + std::to_string(::getpid()) + ".log");
}

std::string read_log(const std::filesystem::path& log) {
    std::ifstream in(log);
    std::string said(std::istreambuf_iterator<char>(in), {});
    std::filesystem::remove(log);
    return said;
}

std::vector<std::size_t> served_by_each(const std::string& said, const std::string& program) {
    const std::string line = program + ": connections served by each reactor:";
    const auto at = said.find(line);
    std::vector<std::size_t> counts;
    if (at == std::string::npos) {
        return counts;
    }
    std::istringstream words(said.substr(at + line.size(), said.find('\n', at) - at - line.size()));
    for (std::size_t n = 0; words >> n;) {
        counts.push_back(n);
    }
    return counts;
}

bool have_program(const std::string& program) {
    const char* path = std::getenv("PATH");
    std::string_view rest = path != nullptr ? path : "/usr/bin:/bin";
    while (!rest.empty()) {
        const auto colon = rest.find(':');
        const auto dir = rest.substr(0, colon);
        if (::access((std::string(dir) + "/" + program).c_str(), X_OK) == 0) {
            return true;
        }
        rest = colon == std::string_view::npos ? std::string_view() : rest.substr(colon + 1);
    }
    return false;
}

command_result run_command(const std::vector<std::string>& argv, const std::string& input,
                           std::chrono::seconds limit) {
    int in[2], out[2], err[2];
    make_pipe(in);
    make_pipe(out);
    make_pipe(err);
    const pid_t pid = spawn(argv, in[0], out[1], err[1]);
    ::close(in[0]);
    ::close(out[1]);
    ::close(err[1]);
    ::fcntl(in[1], F_SETFL, O_NONBLOCK);

    command_result r;
    const auto deadline = steady::now() + limit;
    std::size_t written = 0;
    int to_child = in[1];
    if (input.empty()) {
        ::close(to_child);
        to_child = -1;
    }
    int from[2] = {out[0], err[0]};
    std::string* into[2] = {&r.out, &r.err};
    while (from[0] >= 0 || from[1] >= 0) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
        if (left.count() <= 0) {
            r.timed_out = true;
            break;
        }
        pollfd fds[3] = {{from[0], POLLIN, 0}, {from[1], POLLIN, 0}, {to_child, POLLOUT, 0}};
        if (::poll(fds, 3, static_cast<int>(left.count())) < 0 && errno != EINTR) {
            break;
        }
        for (int i = 0; i < 2; ++i) {
            if (from[i] >= 0 && fds[i].revents != 0) {
                char buf[65536];
                const ssize_t n = ::read(from[i], buf, sizeof buf);
                if (n > 0) {
                    into[i]->append(buf, static_cast<std::size_t>(n));
                } else if (n == 0 || errno != EAGAIN) {
                    ::close(from[i]);
                    from[i] = -1;
                }
            }
        }
        if (to_child >= 0 && fds[2].revents != 0) {
            const ssize_t n = ::write(to_child, input.data() + written, input.size() - written);
            if (n > 0) {
                written += static_cast<std::size_t>(n);
            }
            if ((n < 0 && errno != EAGAIN) || written == input.size()) {
                ::close(to_child);  // all of it (or the child stopped reading): EOF for it
                to_child = -1;
            }
        }
    }
    for (int fd : {from[0], from[1], to_child}) {
        if (fd >= 0) {
            ::close(fd);
        }
    }
    if (r.timed_out || !reap(pid, deadline, r.status)) {
        r.timed_out = true;
        r.status = kill_and_reap(pid);
    }
    return r;
}

example_server::example_server(const std::string& name, backend_kind kind,
                               std::vector<std::string> extra)
    : example_server(name, kind, server_options{std::move(extra), {}, 0}) {}

example_server::example_server(const std::string& name, backend_kind kind,
                               const server_options& o) {
    std::vector<std::string> args;
    if (o.nofile > 0) {
        // The shell sets the limit, then becomes the server (same pid).
        args = {"/bin/sh", "-c", "ulimit -n " + std::to_string(o.nofile) + " && exec \"$@\"",
                "sh"};
    }
    args.insert(args.end(), {example_program(name).string(), "--port", "0", "--backend",
                             backend_flag(kind)});
    args.insert(args.end(), o.extra.begin(), o.extra.end());
    int err = -1;  // -1: its stderr is ours, so that its complaints show up in the log
    if (!o.log.empty()) {
        err = ::open(o.log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
        if (err < 0) {
            throw std::system_error(errno, std::system_category(), "open " + o.log.string());
        }
    }
    int out[2];
    make_pipe(out);
    try {
        pid_ = spawn(args, -1, out[1], err);
    } catch (...) {
        ::close(out[0]);
        ::close(out[1]);
        if (err >= 0) {
            ::close(err);
        }
        throw;
    }
    ::close(out[1]);
    if (err >= 0) {
        ::close(err);
    }
    out_ = out[0];

    // The ready line: "<name>: ready on 127.0.0.1:PORT (backend)".
    const auto deadline = steady::now() + std::chrono::seconds(30);
    std::string got;
    while (got.find('\n') == std::string::npos) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
        pollfd p{out_, POLLIN, 0};
        if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
            stop();
            throw std::runtime_error(name + ": no ready line within 30 s; got '" + got + "'");
        }
        char buf[512];
        const ssize_t n = ::read(out_, buf, sizeof buf);
        if (n <= 0) {
            const int code = stop();
            throw std::runtime_error(name + " exited (" + std::to_string(code) +
                                     ") before it was ready; it said '" + got + "'");
        }
        got.append(buf, static_cast<std::size_t>(n));
    }
    ready_ = got.substr(0, got.find('\n'));
    const auto on = ready_.find(" on ");
    const auto paren = ready_.rfind(" (");
    const auto colon = ready_.rfind(':', paren);
    if (on == std::string::npos || paren == std::string::npos || colon == std::string::npos ||
        colon < on) {
        stop();
        throw std::runtime_error(name + ": unexpected ready line '" + ready_ + "'");
    }
    port_ = static_cast<std::uint16_t>(std::stoi(ready_.substr(colon + 1, paren - colon - 1)));
}

std::vector<int> example_server::descriptors() const {
    std::vector<int> fds;
    std::error_code ec;
    for (const auto& e :
         std::filesystem::directory_iterator("/proc/" + std::to_string(pid_) + "/fd", ec)) {
        fds.push_back(std::stoi(e.path().filename().string()));
    }
    std::sort(fds.begin(), fds.end());
    return fds;
}

bool example_server::wait_for_descriptors(std::size_t n, std::chrono::milliseconds limit) const {
    const auto deadline = steady::now() + limit;
    for (;;) {
        if (descriptors().size() == n) {
            return true;
        }
        if (steady::now() >= deadline) {
            return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
}

example_server::~example_server() {
    stop();
}

int example_server::stop(std::chrono::seconds grace) {
    int code = -1;
    if (pid_ > 0) {
        ::kill(pid_, SIGTERM);
        if (!reap(pid_, steady::now() + grace, code)) {
            code = kill_and_reap(pid_);
        }
        pid_ = -1;
    }
    if (out_ >= 0) {
        ::close(out_);
        out_ = -1;
    }
    return code;
}

}  // namespace ringchat::test
