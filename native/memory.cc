// Memory mappings: mmap, munmap, mprotect, madvise.
//
// A mapping reaches JS as { address, length, buffer }, where buffer is an
// external ArrayBuffer over the mapped bytes. Unmapping is always explicit
// (no finalizer unmaps: a test decides when memory goes away, and the GC must
// not do it behind the kernel's back).
//
// How JS and native agree on what is still mapped: mmap attaches (napi_wrap)
// a MappingState to the ArrayBuffer, holding the base, the length and one
// "unmapped" flag per page. munmap marks the pages it removed and detaches
// the ArrayBuffer, so JS access afterwards sees a 0-length buffer instead of
// faulting. Later calls consult the state, not the buffer: a range that
// touches an unmapped page is a RangeError ("already unmapped"), never a
// syscall on an address some newer mapping may now occupy. Pages that a
// partial munmap left mapped can still be unmapped, protected or advised,
// but no longer read from JS (an ArrayBuffer cannot shrink, so it is
// detached whole). An object that did not come from mmap has no state and is
// refused, so a forged { address, buffer } cannot unmap arbitrary memory.
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <string>
#include <vector>

#include "addon.h"
#include "args.h"

namespace iommufd {
namespace {

struct MappingState {
  uintptr_t base;
  size_t length;
  std::vector<bool> unmapped;  // one flag per page
};

size_t PageSize() {
  static const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return page;
}

void FreeState(napi_env, void* data, void*) { delete static_cast<MappingState*>(data); }

Napi::Value Mmap(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  size_t length, offset = 0;
  int prot, flags;
  int64_t fd = -1;
  if (!ToLength(env, info[0], "mmap", "length", &length)) return Napi::Value();
  if (!ToFlags(env, info[1], "mmap", "prot", &prot)) return Napi::Value();
  if (!ToFlags(env, info[2], "mmap", "flags", &flags)) return Napi::Value();
  if (!info[3].IsUndefined() && !ToInteger(env, info[3], "mmap", "fd", -1, 2147483647.0, &fd)) return Napi::Value();
  if (!info[4].IsUndefined() && !ToLength(env, info[4], "mmap", "offset", &offset)) return Napi::Value();
  size_t align = 0;
  if (!info[5].IsUndefined() && !ToLength(env, info[5], "mmap", "align", &align)) return Napi::Value();
  if (align != 0 && (align % PageSize() != 0 || (align & (align - 1)) != 0)) {
    ThrowRangeError(env, "mmap", "align", "must be a power of two multiple of the page size (got " + std::to_string(align) + ")");
    return Napi::Value();
  }
  if ((flags & MAP_FIXED) != 0) {
    // A fixed address could land on Node's own memory: use mmapOver, which
    // only replaces pages of a mapping this addon made.
    ThrowRangeError(env, "mmap", "flags", "must not contain MAP_FIXED (use mmapOver)");
    return Napi::Value();
  }

  void* hint = nullptr;
  size_t reserved = 0;
  if (align > PageSize()) {
    // Reserve length + align of address space, place the mapping at the
    // aligned address inside it, and give back the rest (what the selftests
    // get from posix_memalign + MAP_FIXED).
    reserved = length + align;
    void* r = ::mmap(nullptr, reserved, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (r == MAP_FAILED) return Napi::Number::New(env, -errno);
    uintptr_t start = reinterpret_cast<uintptr_t>(r);
    uintptr_t aligned = (start + align - 1) & ~(static_cast<uintptr_t>(align) - 1);
    if (aligned > start) ::munmap(r, aligned - start);
    uintptr_t end = start + reserved, mapped_end = aligned + ((length + PageSize() - 1) & ~(PageSize() - 1));
    if (end > mapped_end) ::munmap(reinterpret_cast<void*>(mapped_end), end - mapped_end);
    hint = reinterpret_cast<void*>(aligned);
    flags |= MAP_FIXED;
  }
  void* addr = ::mmap(hint, length, prot, flags, static_cast<int>(fd), static_cast<off_t>(offset));
  if (addr == MAP_FAILED) {
    int err = errno;
    if (hint != nullptr) ::munmap(hint, length);
    return Napi::Number::New(env, -err);
  }

  Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(env, addr, length);
  auto* state = new MappingState{reinterpret_cast<uintptr_t>(addr), length,
                                 std::vector<bool>((length + PageSize() - 1) / PageSize(), false)};
  if (napi_wrap(env, buffer, state, FreeState, nullptr, nullptr) != napi_ok) {
    delete state;
    ::munmap(addr, length);
    Napi::Error::New(env, "mmap: could not attach mapping state").ThrowAsJavaScriptException();
    return Napi::Value();
  }
  Napi::Object mapping = Napi::Object::New(env);
  mapping.Set("address", Napi::BigInt::New(env, static_cast<uint64_t>(state->base)));
  mapping.Set("length", Napi::Number::New(env, static_cast<double>(length)));
  mapping.Set("buffer", buffer);
  return mapping;
}

// Finds the state of a Mapping argument and checks that its address and
// length still describe the buffer mmap returned.
bool ToMapping(napi_env env, napi_value v, const char* fn, napi_value* buffer, MappingState** out) {
  napi_value address, length;
  if (!GetProperty(env, v, fn, "mapping", "buffer", buffer)) return false;
  void* data = nullptr;
  if (napi_unwrap(env, *buffer, &data) != napi_ok || data == nullptr) {
    ThrowTypeError(env, fn, "mapping", "a Mapping returned by mmap", v);
    return false;
  }
  auto* state = static_cast<MappingState*>(data);
  uint64_t a;
  size_t l;
  if (!GetProperty(env, v, fn, "mapping", "address", &address) ||
      !ToUint64(env, address, fn, "mapping.address", &a)) return false;
  if (!GetProperty(env, v, fn, "mapping", "length", &length) ||
      !ToLength(env, length, fn, "mapping.length", &l)) return false;
  if (a != state->base || l != state->length) {
    ThrowRangeError(env, fn, "mapping", "address and length do not match the ones mmap returned");
    return false;
  }
  *out = state;
  return true;
}

// Validates [offset, offset + length) against the mapping: offset page
// aligned, the range inside the mapping, and (for munmap) its end page
// aligned or the mapping's end. Returns the range's first page and page count.
bool ToRange(napi_env env, const Napi::CallbackInfo& info, size_t first, const char* fn, const MappingState& state,
             bool default_range, bool end_aligned, size_t* offset, size_t* length) {
  const size_t page = PageSize();
  *offset = 0;
  *length = state.length;
  if (!(default_range && info[first].IsUndefined()) && !ToLength(env, info[first], fn, "offset", offset)) return false;
  if (!(default_range && info[first + 1].IsUndefined())) {
    if (!ToLength(env, info[first + 1], fn, "length", length)) return false;
  } else if (*offset <= state.length) {
    *length = state.length - *offset;
  }
  if (*offset % page != 0) {
    ThrowRangeError(env, fn, "offset", "must be a multiple of the page size (" + std::to_string(page) + ")");
    return false;
  }
  if (*offset > state.length || *length > state.length - *offset) {
    ThrowRangeError(env, fn, "offset", "and length must lie inside the mapping (offset " + std::to_string(*offset) +
                                           ", length " + std::to_string(*length) + ", mapping length " +
                                           std::to_string(state.length) + ")");
    return false;
  }
  if (end_aligned && (*offset + *length) % page != 0 && *offset + *length != state.length) {
    ThrowRangeError(env, fn, "length", "must end on a page boundary or at the end of the mapping");
    return false;
  }
  for (size_t p = *offset / page; p < (*offset + *length + page - 1) / page; p++) {
    if (state.unmapped[p]) {
      ThrowRangeError(env, fn, "mapping", "is already unmapped (page at offset " + std::to_string(p * page) + ")");
      return false;
    }
  }
  return true;
}

Napi::Value Munmap(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  napi_value buffer;
  MappingState* state;
  size_t offset, length;
  if (!ToMapping(env, info[0], "munmap", &buffer, &state)) return Napi::Value();
  if (!ToRange(env, info, 1, "munmap", *state, true, true, &offset, &length)) return Napi::Value();

  int ret = ::munmap(reinterpret_cast<void*>(state->base + offset), length);
  if (ret < 0) return Napi::Number::New(env, -errno);
  const size_t page = PageSize();
  for (size_t p = offset / page; p < (offset + length + page - 1) / page; p++) state->unmapped[p] = true;
  bool detached = false;
  napi_is_detached_arraybuffer(env, buffer, &detached);
  if (!detached) napi_detach_arraybuffer(env, buffer);
  return Napi::Number::New(env, 0);
}

// mmapOver(mapping, offset, length, prot, flags, fd = -1, fileOffset = 0):
// MAP_FIXED over [offset, offset + length) of a mapping this addon made, to
// give that range new pages (anonymous, hugetlb, or a file such as a memfd).
// The range stays the mapping's: its view and its other calls keep working.
Napi::Value MmapOver(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  napi_value buffer;
  MappingState* state;
  size_t offset, length, file_offset = 0;
  int prot, flags;
  int64_t fd = -1;
  if (!ToMapping(env, info[0], "mmapOver", &buffer, &state)) return Napi::Value();
  if (!ToRange(env, info, 1, "mmapOver", *state, false, true, &offset, &length)) return Napi::Value();
  if (!ToFlags(env, info[3], "mmapOver", "prot", &prot)) return Napi::Value();
  if (!ToFlags(env, info[4], "mmapOver", "flags", &flags)) return Napi::Value();
  if (!info[5].IsUndefined() && !ToInteger(env, info[5], "mmapOver", "fd", -1, 2147483647.0, &fd)) return Napi::Value();
  if (!info[6].IsUndefined() && !ToLength(env, info[6], "mmapOver", "fileOffset", &file_offset)) return Napi::Value();
  void* target = reinterpret_cast<void*>(state->base + offset);
  void* addr = ::mmap(target, length, prot, flags | MAP_FIXED, static_cast<int>(fd), static_cast<off_t>(file_offset));
  if (addr == MAP_FAILED) return Napi::Number::New(env, -errno);
  return Napi::Number::New(env, 0);
}

Napi::Value Mprotect(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  napi_value buffer;
  MappingState* state;
  size_t offset, length;
  int prot;
  if (!ToMapping(env, info[0], "mprotect", &buffer, &state)) return Napi::Value();
  if (!ToRange(env, info, 1, "mprotect", *state, false, false, &offset, &length)) return Napi::Value();
  if (!ToFlags(env, info[3], "mprotect", "prot", &prot)) return Napi::Value();
  int ret = ::mprotect(reinterpret_cast<void*>(state->base + offset), length, prot);
  return Result(env, ret, errno);
}

Napi::Value Madvise(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  napi_value buffer;
  MappingState* state;
  size_t offset, length;
  int advice;
  if (!ToMapping(env, info[0], "madvise", &buffer, &state)) return Napi::Value();
  if (!ToRange(env, info, 1, "madvise", *state, false, false, &offset, &length)) return Napi::Value();
  if (!ToFlags(env, info[3], "madvise", "advice", &advice)) return Napi::Value();
  int ret = ::madvise(reinterpret_cast<void*>(state->base + offset), length, advice);
  return Result(env, ret, errno);
}

}  // namespace

void InitMemory(Napi::Env env, Napi::Object exports) {
  exports.Set("mmap", Napi::Function::New(env, Mmap, "mmap"));
  exports.Set("munmap", Napi::Function::New(env, Munmap, "munmap"));
  exports.Set("mprotect", Napi::Function::New(env, Mprotect, "mprotect"));
  exports.Set("mmapOver", Napi::Function::New(env, MmapOver, "mmapOver"));
  exports.Set("madvise", Napi::Function::New(env, Madvise, "madvise"));
}

}  // namespace iommufd
