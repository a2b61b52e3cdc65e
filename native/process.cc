// Process state: resource limits, capabilities, and ioctls issued from a
// forked child.
//
// capget/capset use the raw syscalls (no libcap) with version 3: two 32-bit
// words per set, joined here into one 64-bit bigint per set. They act on the
// calling thread, which is the main JS thread where every ioctl runs.
//
// forkIoctl mirrors the iommufd selftests' fork_gone / fork_present cases: a
// child process issues the ioctl (so the kernel records the child's mm), and
// then either exits at once (the mm goes away) or stays alive until
// forkRelease. Node is multi-threaded, so between fork() and _exit() the
// child only makes async-signal-safe calls (ioctl, read, write, close,
// _exit) and touches no allocator or lock.
#include <fcntl.h>
#include <linux/capability.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "addon.h"
#include "args.h"

namespace iommufd {
namespace {

Napi::Value Getrlimit(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  int64_t resource;
  if (!ToInteger(env, info[0], "getrlimit", "resource", 0, 2147483647.0, &resource)) return Napi::Value();
  struct rlimit limit;
  if (::getrlimit(static_cast<__rlimit_resource>(resource), &limit) < 0) return Napi::Number::New(env, -errno);
  Napi::Object out = Napi::Object::New(env);
  out.Set("cur", Napi::BigInt::New(env, static_cast<uint64_t>(limit.rlim_cur)));
  out.Set("max", Napi::BigInt::New(env, static_cast<uint64_t>(limit.rlim_max)));
  return out;
}

Napi::Value Setrlimit(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  int64_t resource;
  napi_value cur, max;
  uint64_t cur_value, max_value;
  if (!ToInteger(env, info[0], "setrlimit", "resource", 0, 2147483647.0, &resource)) return Napi::Value();
  if (!GetProperty(env, info[1], "setrlimit", "limit", "cur", &cur) ||
      !ToUint64(env, cur, "setrlimit", "limit.cur", &cur_value)) return Napi::Value();
  if (!GetProperty(env, info[1], "setrlimit", "limit", "max", &max) ||
      !ToUint64(env, max, "setrlimit", "limit.max", &max_value)) return Napi::Value();
  struct rlimit limit = {static_cast<rlim_t>(cur_value), static_cast<rlim_t>(max_value)};
  int ret = ::setrlimit(static_cast<__rlimit_resource>(resource), &limit);
  return Result(env, ret, errno);
}

Napi::Value Capget(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (syscall(SYS_capget, &header, data) < 0) return Napi::Number::New(env, -errno);
  auto join = [&](uint32_t lo, uint32_t hi) {
    return Napi::BigInt::New(env, static_cast<uint64_t>(lo) | (static_cast<uint64_t>(hi) << 32));
  };
  Napi::Object out = Napi::Object::New(env);
  out.Set("effective", join(data[0].effective, data[1].effective));
  out.Set("permitted", join(data[0].permitted, data[1].permitted));
  out.Set("inheritable", join(data[0].inheritable, data[1].inheritable));
  return out;
}

Napi::Value Capset(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  napi_value v;
  uint64_t effective, permitted, inheritable;
  if (!GetProperty(env, info[0], "capset", "caps", "effective", &v) ||
      !ToUint64(env, v, "capset", "caps.effective", &effective)) return Napi::Value();
  if (!GetProperty(env, info[0], "capset", "caps", "permitted", &v) ||
      !ToUint64(env, v, "capset", "caps.permitted", &permitted)) return Napi::Value();
  if (!GetProperty(env, info[0], "capset", "caps", "inheritable", &v) ||
      !ToUint64(env, v, "capset", "caps.inheritable", &inheritable)) return Napi::Value();
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
  data[0] = {static_cast<uint32_t>(effective), static_cast<uint32_t>(permitted), static_cast<uint32_t>(inheritable)};
  data[1] = {static_cast<uint32_t>(effective >> 32), static_cast<uint32_t>(permitted >> 32),
             static_cast<uint32_t>(inheritable >> 32)};
  long ret = syscall(SYS_capset, &header, data);
  return Result(env, ret, errno);
}

// Kept-alive children: the write end of the pipe each one blocks on. A
// plain array rather than a map so that a later child can walk it after
// fork() (to close the other children's release fds) without allocating.
struct KeptChild {
  pid_t pid;
  int release_fd;
};
std::vector<KeptChild> kept_children;

// Full-length write/read that retry on EINTR and short transfers.
bool WriteAll(int fd, const void* data, size_t length) {
  const char* p = static_cast<const char*>(data);
  while (length > 0) {
    ssize_t n = ::write(fd, p, length);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    length -= static_cast<size_t>(n);
  }
  return true;
}

// Returns 0, or -errno, or -EPIPE when the other end closed early.
int ReadAll(int fd, void* data, size_t length) {
  char* p = static_cast<char*>(data);
  while (length > 0) {
    ssize_t n = ::read(fd, p, length);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -errno;
    if (n == 0) return -EPIPE;
    p += n;
    length -= static_cast<size_t>(n);
  }
  return 0;
}

int WaitChild(pid_t pid) {
  int status;
  pid_t r;
  do r = ::waitpid(pid, &status, 0);
  while (r < 0 && errno == EINTR);
  if (r < 0) return -errno;
  // Exit status, or 128 + signal number like a shell reports it.
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

[[noreturn]] void RunChild(int fd, uint32_t request, void* data, size_t length, int result_fd, int release_fd) {
  int ret = ::ioctl(fd, request, data);
  if (ret < 0) ret = -errno;
  bool ok = WriteAll(result_fd, &ret, sizeof ret) && WriteAll(result_fd, data, length);
  ::close(result_fd);
  if (release_fd >= 0) {
    char byte;
    ssize_t n;
    // Blocks until the parent closes the write end (forkRelease, or the
    // parent's exit), which reads as end of file.
    do n = ::read(release_fd, &byte, 1);
    while (n < 0 && errno == EINTR);
  }
  _exit(ok ? 0 : 1);
}

Napi::Value ForkIoctl(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  int fd;
  uint32_t request;
  void* data;
  size_t length;
  if (!ToFd(env, info[0], "forkIoctl", "fd", &fd)) return Napi::Value();
  if (!ToUint32(env, info[1], "forkIoctl", "request", &request)) return Napi::Value();
  if (!ToView(env, info[2], "forkIoctl", "arg", &data, &length)) return Napi::Value();
  if (!info[3].IsBoolean()) {
    ThrowTypeError(env, "forkIoctl", "keepAlive", "a boolean", info[3]);
    return Napi::Value();
  }
  const bool keep_alive = info[3].As<Napi::Boolean>().Value();

  int result_pipe[2], release_pipe[2] = {-1, -1};
  if (::pipe2(result_pipe, O_CLOEXEC) < 0) return Napi::Number::New(env, -errno);
  if (keep_alive && ::pipe2(release_pipe, O_CLOEXEC) < 0) {
    int err = errno;
    ::close(result_pipe[0]);
    ::close(result_pipe[1]);
    return Napi::Number::New(env, -err);
  }
  // Grow the registry before forking, so the parent never fails to record a
  // child it has already created.
  if (keep_alive) kept_children.reserve(kept_children.size() + 1);

  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(result_pipe[0]);
    if (keep_alive) ::close(release_pipe[1]);
    // Another kept child's release fd held open here would keep that child
    // alive after its forkRelease.
    for (const KeptChild& child : kept_children) ::close(child.release_fd);
    RunChild(fd, request, data, length, result_pipe[1], release_pipe[0]);
  }
  int fork_errno = errno;
  ::close(result_pipe[1]);
  if (keep_alive) ::close(release_pipe[0]);
  if (pid < 0) {
    ::close(result_pipe[0]);
    if (keep_alive) ::close(release_pipe[1]);
    return Napi::Number::New(env, -fork_errno);
  }

  int ret = 0;
  Napi::ArrayBuffer out = Napi::ArrayBuffer::New(env, length);
  int read_ret = ReadAll(result_pipe[0], &ret, sizeof ret);
  if (read_ret == 0) read_ret = ReadAll(result_pipe[0], out.Data(), length);
  ::close(result_pipe[0]);

  if (read_ret < 0 || !keep_alive) {
    if (keep_alive) ::close(release_pipe[1]);
    WaitChild(pid);
    if (read_ret < 0) return Napi::Number::New(env, read_ret);
  } else {
    kept_children.push_back({pid, release_pipe[1]});
  }

  Napi::Object result = Napi::Object::New(env);
  result.Set("pid", Napi::Number::New(env, pid));
  result.Set("ret", Napi::Number::New(env, ret));
  result.Set("out", Napi::Uint8Array::New(env, length, out, 0));
  return result;
}

Napi::Value ForkRelease(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  int64_t pid;
  if (!ToInteger(env, info[0], "forkRelease", "pid", 1, 2147483647.0, &pid)) return Napi::Value();
  for (auto it = kept_children.begin(); it != kept_children.end(); ++it) {
    if (it->pid != pid) continue;
    ::close(it->release_fd);
    kept_children.erase(it);
    return Napi::Number::New(env, WaitChild(static_cast<pid_t>(pid)));
  }
  ThrowRangeError(env, "forkRelease", "pid", "is not a child kept alive by forkIoctl (got " + std::to_string(pid) + ")");
  return Napi::Value();
}

}  // namespace

void InitProcess(Napi::Env env, Napi::Object exports) {
  exports.Set("getrlimit", Napi::Function::New(env, Getrlimit, "getrlimit"));
  exports.Set("setrlimit", Napi::Function::New(env, Setrlimit, "setrlimit"));
  exports.Set("capget", Napi::Function::New(env, Capget, "capget"));
  exports.Set("capset", Napi::Function::New(env, Capset, "capset"));
  exports.Set("forkIoctl", Napi::Function::New(env, ForkIoctl, "forkIoctl"));
  exports.Set("forkRelease", Napi::Function::New(env, ForkRelease, "forkRelease"));
}

}  // namespace iommufd
