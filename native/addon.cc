// Module entry point: the exported names match lib/sys/types.ts (Sys).
#include <napi.h>

#include "addon.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  iommufd::InitFd(env, exports);
  iommufd::InitMemory(env, exports);
  iommufd::InitProcess(env, exports);
  iommufd::InitFailNth(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(iommufd_native, Init)
