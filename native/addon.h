// Each native file registers its own functions on the module's exports.
#pragma once

#include <napi.h>
#include <sys/stat.h>

#include <cstdint>

namespace iommufd {

void InitFd(Napi::Env env, Napi::Object exports);
void InitMemory(Napi::Env env, Napi::Object exports);
void InitProcess(Napi::Env env, Napi::Object exports);
void InitFailNth(Napi::Env env, Napi::Object exports);

// A regular file that may back mappings was resized to `size` bytes
// (native/memory.cc): their views follow.
void FileResized(napi_env env, const struct stat& st, uint64_t size);

// Result convention shared by every file: the call's result if >= 0, else -errno.
inline Napi::Value Result(Napi::Env env, long ret, int err) {
  return Napi::Number::New(env, static_cast<double>(ret < 0 ? -err : ret));
}

}  // namespace iommufd
