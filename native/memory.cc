// Memory mappings: mmap, munmap, mprotect, mmapOver, madvise.
//
// A mapping reaches JS as { address, length, buffer }, where buffer is an
// external ArrayBuffer over the mapped bytes. Unmapping is always explicit
// (no finalizer unmaps: a test decides when memory goes away, and the GC must
// not do it behind the kernel's back).
//
// How JS and native agree on what is still mapped: mmap attaches (napi_wrap)
// a MappingState to the ArrayBuffer, holding the base, the length and, per
// page, whether it is still mapped, readable and writable, and which file
// (and file offset) backs it. Later calls consult the state, not the buffer:
// a range that touches an unmapped page is a RangeError ("already
// unmapped"), never a syscall on an address some newer mapping may now
// occupy. An object that did not come from mmap has no state and is refused,
// so a forged { address, buffer } cannot unmap arbitrary memory.
//
// The view follows the memory, so that JS can never fault on it: a JS
// ArrayBuffer is always readable and writable, so mapping.buffer is a live
// view only while every page of the mapping is mapped, readable and writable,
// and backed (a file page at or past the file's end would raise SIGBUS).
// Otherwise it is a 0-byte (detached) buffer. Every call that changes one of
// those (mmap, mprotect, mmapOver, munmap, and ftruncate of a file that backs
// a mapping) recomputes it: a view that must go is detached (so every typed
// array over it sees 0 bytes), and when the memory is usable again
// mapping.buffer is a new view (an ArrayBuffer cannot come back from
// detached). A file shrunk behind the addon's back (another process, or
// truncate(2) by path) is not seen: the view then faults, as it would in C.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "addon.h"
#include "args.h"

namespace iommufd {
namespace {

size_t PageSize() {
  static const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return page;
}

// A file that backs pages of a mapping.
struct BackingFile {
  dev_t dev;
  ino_t ino;
  // Only a regular file (a memfd too) has a size that says which pages
  // exist; a device's mapping may fault anywhere, so it gets no view.
  bool regular;
  uint64_t size;
};

struct Page {
  bool unmapped = false;
  bool readWrite = true;
  int32_t file = -1;  // index into MappingState::files, -1 for anonymous memory
  uint64_t fileOffset = 0;
};

struct MappingState {
  napi_env env;
  uintptr_t base;
  size_t length;
  std::vector<Page> pages;
  std::vector<BackingFile> files;
  // Weak references to the mapping object and to its live view (if any), so
  // that ftruncate, which knows only a file, can detach or renew the view.
  napi_ref mapping = nullptr;
  napi_ref view = nullptr;
  ~MappingState();
};

// The live states, for ftruncate: a file that shrinks under a mapping must
// take its view away before JS touches a page past the end.
std::mutex registry_lock;
std::set<MappingState*> registry;

MappingState::~MappingState() {
  {
    std::lock_guard<std::mutex> hold(registry_lock);
    registry.erase(this);
  }
  if (mapping) napi_delete_reference(env, mapping);
  if (view) napi_delete_reference(env, view);
}

using StateRef = std::shared_ptr<MappingState>;

// Each ArrayBuffer (the first view, and each renewed one) holds a reference
// to the one state, freed with the last of them.
void FreeStateRef(napi_env, void* data, void*) { delete static_cast<StateRef*>(data); }

bool Attach(napi_env env, napi_value buffer, const StateRef& state) {
  auto* ref = new StateRef(state);
  if (napi_wrap(env, buffer, ref, FreeStateRef, nullptr, nullptr) != napi_ok) {
    delete ref;
    return false;
  }
  return true;
}

// May JS hold a view of the whole mapping right now?
bool Viewable(const MappingState& state) {
  for (size_t p = 0; p < state.pages.size(); p++) {
    const Page& pg = state.pages[p];
    if (pg.unmapped || !pg.readWrite) return false;
    if (pg.file >= 0) {
      const BackingFile& f = state.files[static_cast<size_t>(pg.file)];
      // A page that starts at or past the end of the file raises SIGBUS.
      if (!f.regular || pg.fileOffset >= f.size) return false;
    }
  }
  return true;
}

napi_value RefValue(napi_env env, napi_ref ref) {
  napi_value v = nullptr;
  if (ref != nullptr && napi_get_reference_value(env, ref, &v) != napi_ok) return nullptr;
  return v;
}

bool IsLive(napi_env env, napi_value buffer) {
  if (buffer == nullptr) return false;
  bool detached = true;
  napi_is_detached_arraybuffer(env, buffer, &detached);
  if (detached) return false;
  void* data;
  size_t length = 0;
  napi_get_arraybuffer_info(env, buffer, &data, &length);
  return length > 0;
}

// Brings mapping.buffer in line with the memory (see the top of this file).
// Returns false with a JS exception pending if a new view could not be made.
bool UpdateView(napi_env env, const StateRef& state) {
  napi_value view = RefValue(env, state->view);
  const bool live = IsLive(env, view);
  const bool wanted = Viewable(*state);
  if (live && !wanted) {
    napi_detach_arraybuffer(env, view);
    return true;
  }
  if (!live && wanted) {
    napi_value mapping = RefValue(env, state->mapping);
    if (mapping == nullptr) return true;  // nobody holds the mapping any more
    napi_value buffer;
    if (napi_create_external_arraybuffer(env, reinterpret_cast<void*>(state->base), state->length, nullptr, nullptr,
                                         &buffer) != napi_ok ||
        !Attach(env, buffer, state)) {
      Napi::Error::New(env, "mmap: could not make a view of the mapping").ThrowAsJavaScriptException();
      return false;
    }
    if (state->view) napi_delete_reference(env, state->view);
    state->view = nullptr;
    napi_create_reference(env, buffer, 0, &state->view);
    napi_set_named_property(env, mapping, "buffer", buffer);
  }
  return true;
}

// Records what now backs pages [first, first + count): anonymous memory (fd
// < 0 or MAP_ANONYMOUS) or the file behind fd from fileOffset, and whether
// the pages are readable and writable. Fills *file with the file's index.
void SetBacking(MappingState& state, size_t first, size_t count, int prot, int flags, int fd, uint64_t fileOffset,
                const struct stat* st) {
  int32_t file = -1;
  if (fd >= 0 && (flags & MAP_ANONYMOUS) == 0 && st != nullptr) {
    const bool regular = S_ISREG(st->st_mode);
    for (size_t i = 0; i < state.files.size(); i++) {
      if (state.files[i].dev == st->st_dev && state.files[i].ino == st->st_ino) file = static_cast<int32_t>(i);
    }
    if (file < 0) {
      state.files.push_back({st->st_dev, st->st_ino, regular, static_cast<uint64_t>(st->st_size)});
      file = static_cast<int32_t>(state.files.size() - 1);
    } else {
      state.files[static_cast<size_t>(file)].size = static_cast<uint64_t>(st->st_size);
    }
  }
  const bool rw = (prot & (PROT_READ | PROT_WRITE)) == (PROT_READ | PROT_WRITE);
  for (size_t p = first; p < first + count && p < state.pages.size(); p++) {
    Page& pg = state.pages[p];
    pg.unmapped = false;
    pg.readWrite = rw;
    pg.file = file;
    pg.fileOffset = file >= 0 ? fileOffset + (p - first) * PageSize() : 0;
  }
}

// fstat of a mapping's fd, for SetBacking; false (errno set) if it fails.
bool StatFd(int fd, int flags, struct stat* st) {
  if (fd < 0 || (flags & MAP_ANONYMOUS) != 0) return true;
  return ::fstat(fd, st) == 0;
}

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

  // What backs the pages (before any address space is reserved: a bad fd is EBADF, as mmap would say).
  struct stat st;
  if (!StatFd(static_cast<int>(fd), flags, &st)) return Napi::Number::New(env, -errno);

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

  auto state = std::make_shared<MappingState>();
  state->env = env;
  state->base = reinterpret_cast<uintptr_t>(addr);
  state->length = length;
  state->pages.resize((length + PageSize() - 1) / PageSize());
  SetBacking(*state, 0, state->pages.size(), prot, flags, static_cast<int>(fd), offset, &st);
  {
    std::lock_guard<std::mutex> hold(registry_lock);
    registry.insert(state.get());
  }
  // The first buffer: a 0-byte one that identifies the mapping (it carries
  // the state) until UpdateView puts a live view in its place.
  Napi::ArrayBuffer placeholder = Napi::ArrayBuffer::New(env, 0);
  Napi::Object mapping = Napi::Object::New(env);
  if (!Attach(env, placeholder, state) ||
      napi_create_reference(env, mapping, 0, &state->mapping) != napi_ok) {
    ::munmap(addr, length);
    Napi::Error::New(env, "mmap: could not attach mapping state").ThrowAsJavaScriptException();
    return Napi::Value();
  }
  mapping.Set("address", Napi::BigInt::New(env, static_cast<uint64_t>(state->base)));
  mapping.Set("length", Napi::Number::New(env, static_cast<double>(length)));
  mapping.Set("buffer", placeholder);
  if (!UpdateView(env, state)) {
    ::munmap(addr, length);
    return Napi::Value();
  }
  return mapping;
}

// Finds the state of a Mapping argument and checks that its address and
// length still describe the buffer mmap returned.
bool ToMapping(napi_env env, napi_value v, const char* fn, napi_value* buffer, StateRef* out) {
  napi_value address, length;
  if (!GetProperty(env, v, fn, "mapping", "buffer", buffer)) return false;
  void* data = nullptr;
  if (napi_unwrap(env, *buffer, &data) != napi_ok || data == nullptr) {
    ThrowTypeError(env, fn, "mapping", "a Mapping returned by mmap", v);
    return false;
  }
  const StateRef& state = *static_cast<StateRef*>(data);
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
    if (state.pages[p].unmapped) {
      ThrowRangeError(env, fn, "mapping", "is already unmapped (page at offset " + std::to_string(p * page) + ")");
      return false;
    }
  }
  return true;
}

Napi::Value Munmap(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  napi_value buffer;
  StateRef state;
  size_t offset, length;
  if (!ToMapping(env, info[0], "munmap", &buffer, &state)) return Napi::Value();
  if (!ToRange(env, info, 1, "munmap", *state, true, true, &offset, &length)) return Napi::Value();

  int ret = ::munmap(reinterpret_cast<void*>(state->base + offset), length);
  if (ret < 0) return Napi::Number::New(env, -errno);
  const size_t page = PageSize();
  for (size_t p = offset / page; p < (offset + length + page - 1) / page; p++) state->pages[p].unmapped = true;
  // Pages a partial munmap left mapped can still be unmapped, protected or
  // advised, but no longer read from JS (a view cannot shrink).
  if (!UpdateView(env, state)) return Napi::Value();
  return Napi::Number::New(env, 0);
}

// peek(mapping, offset, length): a copy of `length` bytes at `offset` of a
// mapping JS has no view of (a device's, such as an iommufd mmap region), or
// -errno. The bytes go through a pipe: write(2) reads them with
// copy_from_user, which answers EFAULT where a direct load would raise
// SIGSEGV or SIGBUS, so no address can crash Node. At most one page, the
// least a pipe holds, so the write never blocks.
Napi::Value Peek(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  napi_value buffer;
  StateRef state;
  size_t offset, length;
  if (!ToMapping(env, info[0], "peek", &buffer, &state)) return Napi::Value();
  if (!ToLength(env, info[1], "peek", "offset", &offset)) return Napi::Value();
  if (!ToLength(env, info[2], "peek", "length", &length)) return Napi::Value();
  const size_t page = PageSize();
  if (length > page) {
    ThrowRangeError(env, "peek", "length", "must be at most the page size (" + std::to_string(page) + ")");
    return Napi::Value();
  }
  if (offset > state->length || length > state->length - offset) {
    ThrowRangeError(env, "peek", "offset", "and length must lie inside the mapping (offset " + std::to_string(offset) +
                                            ", length " + std::to_string(length) + ", mapping length " +
                                            std::to_string(state->length) + ")");
    return Napi::Value();
  }
  for (size_t p = offset / page; p < (offset + length + page - 1) / page; p++) {
    if (state->pages[p].unmapped) {
      ThrowRangeError(env, "peek", "mapping", "is already unmapped (page at offset " + std::to_string(p * page) + ")");
      return Napi::Value();
    }
  }
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0) return Napi::Number::New(env, -errno);
  Napi::Uint8Array out = Napi::Uint8Array::New(env, length);
  ssize_t w = length ? ::write(fds[1], reinterpret_cast<const void*>(state->base + offset), length) : 0;
  int err = errno;
  ssize_t r = w > 0 ? ::read(fds[0], out.Data(), static_cast<size_t>(w)) : 0;
  if (r < 0) err = errno;
  ::close(fds[0]);
  ::close(fds[1]);
  if (w < 0 || r < 0) return Napi::Number::New(env, -err);
  if (static_cast<size_t>(r) != length) return Napi::Number::New(env, -EFAULT);
  return out;
}

// mmapOver(mapping, offset, length, prot, flags, fd = -1, fileOffset = 0):
// MAP_FIXED over [offset, offset + length) of a mapping this addon made, to
// give that range new pages (anonymous, hugetlb, or a file such as a memfd).
// The range stays the mapping's: its other calls keep working, and its view
// follows what the new pages allow (a file page past the file's end, or a
// protection without read and write, takes it away).
Napi::Value MmapOver(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  napi_value buffer;
  StateRef state;
  size_t offset, length, file_offset = 0;
  int prot, flags;
  int64_t fd = -1;
  if (!ToMapping(env, info[0], "mmapOver", &buffer, &state)) return Napi::Value();
  if (!ToRange(env, info, 1, "mmapOver", *state, false, true, &offset, &length)) return Napi::Value();
  if (!ToFlags(env, info[3], "mmapOver", "prot", &prot)) return Napi::Value();
  if (!ToFlags(env, info[4], "mmapOver", "flags", &flags)) return Napi::Value();
  if (!info[5].IsUndefined() && !ToInteger(env, info[5], "mmapOver", "fd", -1, 2147483647.0, &fd)) return Napi::Value();
  if (!info[6].IsUndefined() && !ToLength(env, info[6], "mmapOver", "fileOffset", &file_offset)) return Napi::Value();
  struct stat st;
  if (!StatFd(static_cast<int>(fd), flags, &st)) return Napi::Number::New(env, -errno);
  // No JS runs between the mmap and UpdateView, so no view is used in between.
  void* target = reinterpret_cast<void*>(state->base + offset);
  void* addr = ::mmap(target, length, prot, flags | MAP_FIXED, static_cast<int>(fd), static_cast<off_t>(file_offset));
  if (addr == MAP_FAILED) return Napi::Number::New(env, -errno);
  const size_t page = PageSize();
  SetBacking(*state, offset / page, (length + page - 1) / page, prot, flags, static_cast<int>(fd), file_offset, &st);
  if (!UpdateView(env, state)) return Napi::Value();
  return Napi::Number::New(env, 0);
}

Napi::Value Mprotect(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  napi_value buffer;
  StateRef state;
  size_t offset, length;
  int prot;
  if (!ToMapping(env, info[0], "mprotect", &buffer, &state)) return Napi::Value();
  if (!ToRange(env, info, 1, "mprotect", *state, false, false, &offset, &length)) return Napi::Value();
  if (!ToFlags(env, info[3], "mprotect", "prot", &prot)) return Napi::Value();
  int ret = ::mprotect(reinterpret_cast<void*>(state->base + offset), length, prot);
  if (ret < 0) return Napi::Number::New(env, -errno);
  const size_t page = PageSize();
  const bool rw = (prot & (PROT_READ | PROT_WRITE)) == (PROT_READ | PROT_WRITE);
  for (size_t p = offset / page; p < (offset + length + page - 1) / page; p++) state->pages[p].readWrite = rw;
  if (!UpdateView(env, state)) return Napi::Value();
  return Napi::Number::New(env, 0);
}

Napi::Value Madvise(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  napi_value buffer;
  StateRef state;
  size_t offset, length;
  int advice;
  if (!ToMapping(env, info[0], "madvise", &buffer, &state)) return Napi::Value();
  if (!ToRange(env, info, 1, "madvise", *state, false, false, &offset, &length)) return Napi::Value();
  if (!ToFlags(env, info[3], "madvise", "advice", &advice)) return Napi::Value();
  int ret = ::madvise(reinterpret_cast<void*>(state->base + offset), length, advice);
  return Result(env, ret, errno);
}

}  // namespace

// ftruncate (native/fd.cc) tells the mappings of a file its new size: a view
// over pages now past the end is taken away, one over pages back inside it
// given back.
void FileResized(napi_env env, const struct stat& st, uint64_t size) {
  std::vector<StateRef> touched;
  {
    std::lock_guard<std::mutex> hold(registry_lock);
    for (MappingState* state : registry) {
      if (state->env != env) continue;
      bool backs = false;
      for (BackingFile& f : state->files) {
        if (f.dev == st.st_dev && f.ino == st.st_ino) {
          f.size = size;
          backs = true;
        }
      }
      if (!backs) continue;
      // The StateRef lives on the buffers: the live view's, else the mapping's.
      napi_value buffer = RefValue(env, state->view);
      napi_value mapping = RefValue(env, state->mapping);
      if (buffer == nullptr && mapping != nullptr) napi_get_named_property(env, mapping, "buffer", &buffer);
      void* data = nullptr;
      if (buffer != nullptr && napi_unwrap(env, buffer, &data) == napi_ok && data != nullptr) {
        touched.push_back(*static_cast<StateRef*>(data));
      }
    }
  }
  for (const StateRef& state : touched) UpdateView(env, state);
}

void InitMemory(Napi::Env env, Napi::Object exports) {
  exports.Set("mmap", Napi::Function::New(env, Mmap, "mmap"));
  exports.Set("munmap", Napi::Function::New(env, Munmap, "munmap"));
  exports.Set("mprotect", Napi::Function::New(env, Mprotect, "mprotect"));
  exports.Set("mmapOver", Napi::Function::New(env, MmapOver, "mmapOver"));
  exports.Set("madvise", Napi::Function::New(env, Madvise, "madvise"));
  exports.Set("peek", Napi::Function::New(env, Peek, "peek"));
}

}  // namespace iommufd
