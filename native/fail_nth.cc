// Fault injection around one ioctl, through /proc/thread-self/fail-nth.
//
// Writing N to fail-nth makes the Nth fault-injection site this thread
// reaches fail (a kernel allocation returns NULL, a copy_*_user faults).
// Reading it back gives the remaining count: "0\n" once the Nth site was
// reached. The sequence follows tools/testing/selftests/iommu/
// iommufd_fail_nth.c: arm, ioctl on the same thread, pread the counter,
// pwrite "0" to disarm. When the ioctl did not reach the Nth site the
// counter is still armed, and the pread or pwrite itself can be the site
// that fails, with EFAULT; the selftest then takes the fault as not having
// happened in the ioctl (it sets the read-back to "1\n") and retries the
// disarming write, and so does this file.
#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "addon.h"
#include "args.h"

namespace iommufd {
namespace {

// Arms /proc/thread-self/fail-nth with nth, runs one system call on this
// thread, reads the counter back and disarms it. The counter still holds the
// sites left when the nth was not reached, which lets JS carry one "nth fault
// site" across several calls (the selftests arm it for a whole test body),
// arming only around the calls under test and never while JS runs.
template <typename Call>
Napi::Value ArmedCall(napi_env env, const char* fn, int64_t nth, Call call) {
  int proc_fd = ::open("/proc/thread-self/fail-nth", O_RDWR | O_CLOEXEC);
  if (proc_fd < 0) return Napi::Number::New(env, -errno);

  char nth_text[16];
  int nth_length = snprintf(nth_text, sizeof nth_text, "%d", static_cast<int>(nth));
  if (::pwrite(proc_fd, nth_text, static_cast<size_t>(nth_length), 0) != nth_length) {
    int err = errno;
    ::close(proc_fd);
    return Napi::Number::New(env, -err);
  }

  int ret = call();
  if (ret < 0) ret = -errno;

  char counter[32] = {0};
  ssize_t n = ::pread(proc_fd, counter, sizeof counter - 1, 0);
  // As iommufd_fail_nth.c: an EFAULT here means the read itself was the
  // failure site, so the test's own call was not: count it as not injected.
  if (n < 0 && errno == EFAULT) {
    std::memcpy(counter, "1\n", 3);
    n = 2;
  }
  static const char kDisarm[] = "0";
  ssize_t w = ::pwrite(proc_fd, kDisarm, sizeof kDisarm - 1, 0);
  if (w < 0 && errno == EFAULT) {
    w = ::pwrite(proc_fd, kDisarm, sizeof kDisarm - 1, 0);
    std::memcpy(counter, "1\n", 3);
    n = 2;
  }
  int disarm_errno = errno;
  ::close(proc_fd);
  if (w != static_cast<ssize_t>(sizeof kDisarm - 1)) {
    Napi::Error::New(env, std::string(fn) + ": could not disarm /proc/thread-self/fail-nth: " +
                              std::strerror(disarm_errno)).ThrowAsJavaScriptException();
    return Napi::Value();
  }

  bool injected = n == 2 && counter[0] == '0' && counter[1] == '\n';
  Napi::Object result = Napi::Object::New(env);
  result.Set("ret", Napi::Number::New(env, ret));
  result.Set("injected", Napi::Boolean::New(env, injected));
  result.Set("remaining", Napi::Number::New(env, injected ? 0 : std::strtol(counter, nullptr, 10)));
  return result;
}

Napi::Value IoctlFailNth(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  int fd;
  uint32_t request;
  unsigned long arg;
  int64_t nth;
  if (!ToFd(env, info[0], "ioctlFailNth", "fd", &fd)) return Napi::Value();
  if (!ToUint32(env, info[1], "ioctlFailNth", "request", &request)) return Napi::Value();
  if (!ToIoctlArg(env, info[2], "ioctlFailNth", "arg", &arg)) return Napi::Value();
  if (!ToInteger(env, info[3], "ioctlFailNth", "nth", 1, 2147483647.0, &nth)) return Napi::Value();
  return ArmedCall(env, "ioctlFailNth", nth, [&] { return ::ioctl(fd, request, arg); });
}

// close() can be the call under test too: closing an access fd destroys the access.
Napi::Value CloseFailNth(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  int fd;
  int64_t nth;
  if (!ToFd(env, info[0], "closeFailNth", "fd", &fd)) return Napi::Value();
  if (!ToInteger(env, info[1], "closeFailNth", "nth", 1, 2147483647.0, &nth)) return Napi::Value();
  return ArmedCall(env, "closeFailNth", nth, [&] { return ::close(fd); });
}

// open() of /dev/iommu allocates the context: a fault site of the selftests' bodies too.
Napi::Value OpenFailNth(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  std::string path;
  int flags;
  int64_t nth;
  if (!ToPath(env, info[0], "openFailNth", "path", &path)) return Napi::Value();
  if (!ToFlags(env, info[1], "openFailNth", "flags", &flags)) return Napi::Value();
  if (!ToInteger(env, info[2], "openFailNth", "nth", 1, 2147483647.0, &nth)) return Napi::Value();
  return ArmedCall(env, "openFailNth", nth, [&] { return ::open(path.c_str(), flags); });
}

}  // namespace

void InitFailNth(Napi::Env env, Napi::Object exports) {
  exports.Set("ioctlFailNth", Napi::Function::New(env, IoctlFailNth, "ioctlFailNth"));
  exports.Set("closeFailNth", Napi::Function::New(env, CloseFailNth, "closeFailNth"));
  exports.Set("openFailNth", Napi::Function::New(env, OpenFailNth, "openFailNth"));
}

}  // namespace iommufd
