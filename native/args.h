// Argument validation for the addon's entry points.
//
// Every helper reads one JS argument, and on a wrong argument throws a
// TypeError (wrong type) or RangeError (right type, unusable value) whose
// message names the function and the argument ("ioctl: fd must be an
// integer"), then returns false so the caller can return at once. Kernel
// errors never pass through here: they are values (-errno) returned to JS.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace iommufd {

// The largest integer a JS number holds exactly (2^53 - 1).
constexpr double kMaxSafeInteger = 9007199254740991.0;

void ThrowTypeError(napi_env env, const char* fn, const char* name, const char* expected, napi_value got);
void ThrowRangeError(napi_env env, const char* fn, const char* name, const std::string& why);

// An integer number in [min, max] (both within the safe-integer range).
bool ToInteger(napi_env env, napi_value v, const char* fn, const char* name, double min, double max, int64_t* out);

// A file descriptor: an integer in [0, INT32_MAX].
bool ToFd(napi_env env, napi_value v, const char* fn, const char* name, int* out);

// Flag words (open flags, prot, mmap flags, advice, memfd flags): an integer
// in [INT32_MIN, UINT32_MAX], reinterpreted as a C int.
bool ToFlags(napi_env env, napi_value v, const char* fn, const char* name, int* out);

// An unsigned 32-bit value given as a number or a bigint (ioctl request codes).
bool ToUint32(napi_env env, napi_value v, const char* fn, const char* name, uint32_t* out);

// A length or offset: a non-negative safe integer.
bool ToLength(napi_env env, napi_value v, const char* fn, const char* name, size_t* out);

// A 64-bit unsigned value given as a bigint in [0, 2^64) or a non-negative
// safe integer (addresses, rlimits, capability sets).
bool ToUint64(napi_env env, napi_value v, const char* fn, const char* name, uint64_t* out);

// An ArrayBufferView (typed array or DataView): pointer to its first byte and
// its byte length. Asking V8 for the data pointer moves an on-heap typed
// array's bytes off the heap, so the pointer stays valid across GCs.
bool ToView(napi_env env, napi_value v, const char* fn, const char* name, void** data, size_t* length);

// A string without NUL bytes (paths, memfd names).
bool ToPath(napi_env env, napi_value v, const char* fn, const char* name, std::string* out);

// An ioctl's third argument: a view (pointer to its first byte), a bigint or a
// non-negative number (passed by value), or null (NULL).
bool ToIoctlArg(napi_env env, napi_value v, const char* fn, const char* name, unsigned long* out);

// The argument at index i, or undefined when the caller passed fewer.
inline napi_value ArgAt(const Napi::CallbackInfo& info, size_t i) { return info[i]; }

// Reads property `key` of an object argument; throws a TypeError naming
// `name` when v is not an object.
bool GetProperty(napi_env env, napi_value v, const char* fn, const char* name, const char* key, napi_value* out);

}  // namespace iommufd
