// File descriptors: open, close, ioctl, memfd_create, ftruncate, addressOf.
//
// ioctl is the hot path (every conformance case issues many, and it is
// benchmarked against a plain C loop), so it is written against the raw
// Node-API C interface: no node-addon-api wrappers, no allocation, and the
// common argument shapes (integer fd and request, typed-array arg) are checked
// with one Node-API call each before the general validators run.
#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdint>
#include <string>

#include "addon.h"
#include "args.h"

namespace iommufd {
namespace {

// _IOC_DIR and _IOC_SIZE of asm-generic/ioctl.h: 2 direction bits at 30, 14 size bits at 16.
uint32_t IocSize(uint32_t request) { return (request >> 30) != 0 ? (request >> 16) & 0x3fff : 0; }

// Throws a RangeError if arg is a view shorter than the size the request encodes.
bool CheckIocSize(napi_env env, napi_value arg, uint32_t request, uint32_t encoded) {
  napi_valuetype t;
  if (napi_typeof(env, arg, &t) != napi_ok || t != napi_object) return true;  // a value or NULL: the caller's pointer
  void* data;
  size_t length;
  if (!ToView(env, arg, "ioctl", "arg", &data, &length)) return false;
  if (length >= encoded) return true;
  char hex[16];
  snprintf(hex, sizeof hex, "0x%x", request);
  ThrowRangeError(env, "ioctl", "arg", "is " + std::to_string(length) + " bytes, shorter than the " + std::to_string(encoded) +
                                           " bytes request " + hex + " encodes");
  return false;
}

napi_value Ioctl(napi_env env, napi_callback_info cbinfo) {
  size_t argc = 3;
  napi_value argv[3];
  // Missing arguments come back as undefined, which the validators reject.
  napi_get_cb_info(env, cbinfo, &argc, argv, nullptr, nullptr);

  int fd;
  double d;
  if (napi_get_value_double(env, argv[0], &d) == napi_ok && d >= 0 && d <= 2147483647.0 &&
      d == static_cast<double>(static_cast<int>(d))) {
    fd = static_cast<int>(d);
  } else if (!ToFd(env, argv[0], "ioctl", "fd", &fd)) {
    return nullptr;
  }

  uint32_t request;
  if (napi_get_value_double(env, argv[1], &d) == napi_ok && d >= 0 && d <= 4294967295.0 &&
      d == static_cast<double>(static_cast<uint32_t>(d))) {
    request = static_cast<uint32_t>(d);
  } else if (!ToUint32(env, argv[1], "ioctl", "request", &request)) {
    return nullptr;
  }

  void* data;
  unsigned long arg;
  if (napi_get_typedarray_info(env, argv[2], nullptr, nullptr, &data, nullptr, nullptr) == napi_ok) {
    arg = reinterpret_cast<unsigned long>(data);
  } else if (!ToIoctlArg(env, argv[2], "ioctl", "arg", &arg)) {
    return nullptr;
  }
  // A request made with _IOR/_IOW/_IOWR says how many bytes the kernel reads
  // or writes at arg: a shorter buffer would let it write into Node's heap.
  // iommufd and VFIO requests are _IO (no size): their structs carry their
  // size at offset 0, checked by lib/sys (checkLeadingSize).
  const uint32_t encoded = IocSize(request);
  if (encoded != 0 && !CheckIocSize(env, argv[2], request, encoded)) return nullptr;

  int ret = ::ioctl(fd, request, arg);
  if (ret < 0) ret = -errno;
  napi_value result;
  napi_create_int32(env, ret, &result);
  return result;
}

Napi::Value Open(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  std::string path;
  int flags;
  int64_t mode = 0;
  if (!ToPath(env, info[0], "open", "path", &path)) return Napi::Value();
  if (!ToFlags(env, info[1], "open", "flags", &flags)) return Napi::Value();
  if (!info[2].IsUndefined() && !ToInteger(env, info[2], "open", "mode", 0, 07777, &mode)) return Napi::Value();
  int fd = ::open(path.c_str(), flags, static_cast<mode_t>(mode));
  return Result(info.Env(), fd, errno);
}

Napi::Value Close(const Napi::CallbackInfo& info) {
  int fd;
  if (!ToFd(info.Env(), info[0], "close", "fd", &fd)) return Napi::Value();
  int ret = ::close(fd);
  return Result(info.Env(), ret, errno);
}

Napi::Value AddressOf(const Napi::CallbackInfo& info) {
  void* data;
  size_t length;
  if (!ToView(info.Env(), info[0], "addressOf", "view", &data, &length)) return Napi::Value();
  return Napi::BigInt::New(info.Env(), static_cast<uint64_t>(reinterpret_cast<uintptr_t>(data)));
}

Napi::Value MemfdCreate(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  std::string name;
  int flags;
  if (!ToPath(env, info[0], "memfdCreate", "name", &name)) return Napi::Value();
  if (!ToFlags(env, info[1], "memfdCreate", "flags", &flags)) return Napi::Value();
  int fd = ::memfd_create(name.c_str(), static_cast<unsigned>(flags));
  return Result(info.Env(), fd, errno);
}

Napi::Value Ftruncate(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  int fd;
  size_t length;
  if (!ToFd(env, info[0], "ftruncate", "fd", &fd)) return Napi::Value();
  if (!ToLength(env, info[1], "ftruncate", "length", &length)) return Napi::Value();
  int ret = ::ftruncate(fd, static_cast<off_t>(length));
  if (ret < 0) return Result(info.Env(), ret, errno);
  // A mapping of this file must not keep a view over pages now past its end (SIGBUS).
  struct stat st;
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) FileResized(env, st, static_cast<uint64_t>(st.st_size));
  return Napi::Number::New(env, 0);
}

// read(fd, view): the bytes read into the view (0 at the end), or -errno.
// Event queue fds (iommufd's fault and vEVENTQ fds) answer a whole read or
// nothing, so one read(2) of the view's length is the call.
Napi::Value Read(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  int fd;
  void* data;
  size_t length;
  if (!ToFd(env, info[0], "read", "fd", &fd)) return Napi::Value();
  if (!ToView(env, info[1], "read", "buffer", &data, &length)) return Napi::Value();
  ssize_t ret = ::read(fd, data, length);
  return Result(env, static_cast<long>(ret), errno);
}

// write(fd, view): the bytes written, or -errno. An iommufd fault fd takes
// whole struct iommu_hwpt_page_response records (or nothing) per write(2).
Napi::Value Write(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  int fd;
  void* data;
  size_t length;
  if (!ToFd(env, info[0], "write", "fd", &fd)) return Napi::Value();
  if (!ToView(env, info[1], "write", "buffer", &data, &length)) return Napi::Value();
  ssize_t ret = ::write(fd, data, length);
  return Result(env, static_cast<long>(ret), errno);
}

// poll(fd, events, timeoutMs): the revents of one pollfd (0 on timeout), or -errno.
Napi::Value Poll(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  int fd;
  int64_t events, timeout;
  if (!ToFd(env, info[0], "poll", "fd", &fd)) return Napi::Value();
  if (!ToInteger(env, info[1], "poll", "events", 0, 0x7fff, &events)) return Napi::Value();
  if (!ToInteger(env, info[2], "poll", "timeoutMs", -1, 2147483647.0, &timeout)) return Napi::Value();
  struct pollfd pfd = {fd, static_cast<short>(events), 0};
  int ret = ::poll(&pfd, 1, static_cast<int>(timeout));
  if (ret <= 0) return Result(env, ret, errno);
  return Napi::Number::New(env, pfd.revents);
}

// Two floors for bench/ioctl.ts, not part of Sys (lib/sys/addon.ts leaves them
// out). NapiFloor does nothing with ioctl's three arguments: what any N-API
// call costs. NapiFloorIoctl issues the ioctl with the least work that is
// still safe: int32 arguments and a typed array only, its length against the
// request's encoded size and against the leading u32 (iommufd's and VFIO's
// structs carry their own size there), no messages. A system call costs more
// inside Node's process than in a small C program (measured: ~290 ns against
// ~195 ns for ENOTTY on /dev/null), so this, not NapiFloor plus the C loop,
// is the floor the addon's ioctl is held to.
napi_value NapiFloor(napi_env env, napi_callback_info cbinfo) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, cbinfo, &argc, argv, nullptr, nullptr);
  napi_value result;
  napi_create_int32(env, 0, &result);
  return result;
}

napi_value NapiFloorIoctl(napi_env env, napi_callback_info cbinfo) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, cbinfo, &argc, argv, nullptr, nullptr);
  int32_t fd = -1, request = 0;
  void* data = nullptr;
  size_t length = 0;
  napi_typedarray_type type;
  int ret = -EINVAL;
  if (napi_get_value_int32(env, argv[0], &fd) == napi_ok && napi_get_value_int32(env, argv[1], &request) == napi_ok &&
      napi_get_typedarray_info(env, argv[2], &type, &length, &data, nullptr, nullptr) == napi_ok &&
      type == napi_uint8_array && length >= 4 && IocSize(static_cast<uint32_t>(request)) <= length &&
      *static_cast<uint32_t*>(data) <= length) {
    ret = ::ioctl(fd, static_cast<uint32_t>(request), data);
    if (ret < 0) ret = -errno;
  }
  napi_value result;
  napi_create_int32(env, ret, &result);
  return result;
}

}  // namespace

void InitFd(Napi::Env env, Napi::Object exports) {
  napi_value ioctl;
  napi_create_function(env, "ioctl", NAPI_AUTO_LENGTH, Ioctl, nullptr, &ioctl);
  exports.Set("ioctl", ioctl);
  napi_value floor;
  napi_create_function(env, "napiFloor", NAPI_AUTO_LENGTH, NapiFloor, nullptr, &floor);
  exports.Set("napiFloor", floor);
  napi_value floorIoctl;
  napi_create_function(env, "napiFloorIoctl", NAPI_AUTO_LENGTH, NapiFloorIoctl, nullptr, &floorIoctl);
  exports.Set("napiFloorIoctl", floorIoctl);
  exports.Set("open", Napi::Function::New(env, Open, "open"));
  exports.Set("close", Napi::Function::New(env, Close, "close"));
  exports.Set("addressOf", Napi::Function::New(env, AddressOf, "addressOf"));
  exports.Set("memfdCreate", Napi::Function::New(env, MemfdCreate, "memfdCreate"));
  exports.Set("ftruncate", Napi::Function::New(env, Ftruncate, "ftruncate"));
  exports.Set("read", Napi::Function::New(env, Read, "read"));
  exports.Set("write", Napi::Function::New(env, Write, "write"));
  exports.Set("poll", Napi::Function::New(env, Poll, "poll"));
}

}  // namespace iommufd
