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
#include <cstring>

#include "addon.h"
#include "args.h"

namespace iommufd {
namespace {

Napi::Value IoctlFailNth(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  int fd;
  uint32_t request;
  unsigned long arg;
  int64_t nth;
  // Every argument is converted before arming: nothing but the ioctl may run
  // on this thread between the arming write and the read-back.
  if (!ToFd(env, info[0], "ioctlFailNth", "fd", &fd)) return Napi::Value();
  if (!ToUint32(env, info[1], "ioctlFailNth", "request", &request)) return Napi::Value();
  if (!ToIoctlArg(env, info[2], "ioctlFailNth", "arg", &arg)) return Napi::Value();
  if (!ToInteger(env, info[3], "ioctlFailNth", "nth", 1, 2147483647.0, &nth)) return Napi::Value();

  int proc_fd = ::open("/proc/thread-self/fail-nth", O_RDWR | O_CLOEXEC);
  if (proc_fd < 0) return Napi::Number::New(env, -errno);

  char nth_text[16];
  int nth_length = snprintf(nth_text, sizeof nth_text, "%d", static_cast<int>(nth));
  if (::pwrite(proc_fd, nth_text, static_cast<size_t>(nth_length), 0) != nth_length) {
    int err = errno;
    ::close(proc_fd);
    return Napi::Number::New(env, -err);
  }

  int ret = ::ioctl(fd, request, arg);
  if (ret < 0) ret = -errno;

  char counter[32] = {0};
  ssize_t n = ::pread(proc_fd, counter, sizeof counter - 1, 0);
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
    // Still armed: a later syscall on this thread would fail at random.
    Napi::Error::New(env, std::string("ioctlFailNth: could not disarm /proc/thread-self/fail-nth: ") +
                              std::strerror(disarm_errno)).ThrowAsJavaScriptException();
    return Napi::Value();
  }

  bool injected = n == 2 && counter[0] == '0' && counter[1] == '\n';
  Napi::Object result = Napi::Object::New(env);
  result.Set("ret", Napi::Number::New(env, ret));
  result.Set("injected", Napi::Boolean::New(env, injected));
  return result;
}

}  // namespace

void InitFailNth(Napi::Env env, Napi::Object exports) {
  exports.Set("ioctlFailNth", Napi::Function::New(env, IoctlFailNth, "ioctlFailNth"));
}

}  // namespace iommufd
