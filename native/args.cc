#include "args.h"

#include <cmath>
#include <cstring>
#include <limits>

namespace iommufd {
namespace {

const char* TypeName(napi_env env, napi_value v) {
  napi_valuetype t;
  if (v == nullptr || napi_typeof(env, v, &t) != napi_ok) return "undefined";
  switch (t) {
    case napi_undefined: return "undefined";
    case napi_null: return "null";
    case napi_boolean: return "boolean";
    case napi_number: return "number";
    case napi_string: return "string";
    case napi_symbol: return "symbol";
    case napi_object: return "object";
    case napi_function: return "function";
    case napi_external: return "external";
    case napi_bigint: return "bigint";
  }
  return "unknown";
}

// How JS itself prints the value (String(v) for numbers), so the backends
// written in JS can produce the very same message.
std::string Describe(napi_env env, napi_value v) {
  std::string type = TypeName(env, v);
  if (type != "number") return type;
  napi_value text;
  size_t length;
  char buf[64];
  if (napi_coerce_to_string(env, v, &text) != napi_ok ||
      napi_get_value_string_utf8(env, text, buf, sizeof buf, &length) != napi_ok) return type;
  return std::string(buf, length);
}

std::string FormatNumber(double d) {
  char buf[64];
  snprintf(buf, sizeof buf, "%.0f", d);
  return buf;
}

}  // namespace

void ThrowTypeError(napi_env env, const char* fn, const char* name, const char* expected, napi_value got) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) return;
  std::string msg = std::string(fn) + ": " + name + " must be " + expected + " (got " + Describe(env, got) + ")";
  napi_throw_type_error(env, nullptr, msg.c_str());
}

void ThrowRangeError(napi_env env, const char* fn, const char* name, const std::string& why) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) return;
  std::string msg = std::string(fn) + ": " + name + " " + why;
  napi_throw_range_error(env, nullptr, msg.c_str());
}

bool ToInteger(napi_env env, napi_value v, const char* fn, const char* name, double min, double max, int64_t* out) {
  double d;
  if (v == nullptr || napi_get_value_double(env, v, &d) != napi_ok || !std::isfinite(d) || std::trunc(d) != d) {
    ThrowTypeError(env, fn, name, "an integer", v);
    return false;
  }
  if (d < min || d > max) {
    ThrowRangeError(env, fn, name, "must be between " + FormatNumber(min) + " and " + FormatNumber(max) +
                                       " (got " + Describe(env, v) + ")");
    return false;
  }
  *out = static_cast<int64_t>(d);
  return true;
}

bool ToFd(napi_env env, napi_value v, const char* fn, const char* name, int* out) {
  int64_t i;
  if (!ToInteger(env, v, fn, name, 0, std::numeric_limits<int32_t>::max(), &i)) return false;
  *out = static_cast<int>(i);
  return true;
}

bool ToFlags(napi_env env, napi_value v, const char* fn, const char* name, int* out) {
  int64_t i;
  if (!ToInteger(env, v, fn, name, std::numeric_limits<int32_t>::min(), std::numeric_limits<uint32_t>::max(), &i))
    return false;
  *out = static_cast<int>(static_cast<uint32_t>(i));
  return true;
}

bool ToUint32(napi_env env, napi_value v, const char* fn, const char* name, uint32_t* out) {
  napi_valuetype t = napi_undefined;
  if (v != nullptr) napi_typeof(env, v, &t);
  if (t == napi_bigint) {
    uint64_t u;
    bool lossless;
    napi_get_value_bigint_uint64(env, v, &u, &lossless);
    if (!lossless || u > std::numeric_limits<uint32_t>::max()) {
      ThrowRangeError(env, fn, name, "must be between 0 and 4294967295");
      return false;
    }
    *out = static_cast<uint32_t>(u);
    return true;
  }
  if (t != napi_number) {
    ThrowTypeError(env, fn, name, "an integer or a bigint", v);
    return false;
  }
  int64_t i;
  if (!ToInteger(env, v, fn, name, 0, std::numeric_limits<uint32_t>::max(), &i)) return false;
  *out = static_cast<uint32_t>(i);
  return true;
}

bool ToLength(napi_env env, napi_value v, const char* fn, const char* name, size_t* out) {
  int64_t i;
  if (!ToInteger(env, v, fn, name, 0, kMaxSafeInteger, &i)) return false;
  *out = static_cast<size_t>(i);
  return true;
}

bool ToUint64(napi_env env, napi_value v, const char* fn, const char* name, uint64_t* out) {
  napi_valuetype t = napi_undefined;
  if (v != nullptr) napi_typeof(env, v, &t);
  if (t == napi_bigint) {
    bool lossless;
    napi_get_value_bigint_uint64(env, v, out, &lossless);
    if (!lossless) {
      ThrowRangeError(env, fn, name, "must be between 0n and 2n ** 64n - 1n");
      return false;
    }
    return true;
  }
  if (t != napi_number) {
    ThrowTypeError(env, fn, name, "a bigint or a non-negative integer", v);
    return false;
  }
  int64_t i;
  if (!ToInteger(env, v, fn, name, 0, kMaxSafeInteger, &i)) return false;
  *out = static_cast<uint64_t>(i);
  return true;
}

bool ToView(napi_env env, napi_value v, const char* fn, const char* name, void** data, size_t* length) {
  bool is = false;
  if (v != nullptr && napi_is_typedarray(env, v, &is) == napi_ok && is) {
    napi_typedarray_type type;
    size_t count;
    napi_get_typedarray_info(env, v, &type, &count, data, nullptr, nullptr);
    size_t element = 1;
    switch (type) {
      case napi_int8_array: case napi_uint8_array: case napi_uint8_clamped_array: element = 1; break;
      case napi_int16_array: case napi_uint16_array: element = 2; break;
      case napi_int32_array: case napi_uint32_array: case napi_float32_array: element = 4; break;
      default: element = 8; break;  // float64, bigint64, biguint64
    }
    *length = count * element;
    return true;
  }
  if (v != nullptr && napi_is_dataview(env, v, &is) == napi_ok && is) {
    napi_get_dataview_info(env, v, length, data, nullptr, nullptr);
    return true;
  }
  ThrowTypeError(env, fn, name, "an ArrayBufferView (typed array or DataView)", v);
  return false;
}

bool ToPath(napi_env env, napi_value v, const char* fn, const char* name, std::string* out) {
  size_t len;
  if (v == nullptr || napi_get_value_string_utf8(env, v, nullptr, 0, &len) != napi_ok) {
    ThrowTypeError(env, fn, name, "a string", v);
    return false;
  }
  out->resize(len);
  napi_get_value_string_utf8(env, v, out->data(), len + 1, &len);
  if (std::memchr(out->data(), '\0', len) != nullptr) {
    ThrowTypeError(env, fn, name, "a string without NUL characters", v);
    return false;
  }
  return true;
}

bool ToIoctlArg(napi_env env, napi_value v, const char* fn, const char* name, unsigned long* out) {
  napi_valuetype t = napi_undefined;
  if (v != nullptr) napi_typeof(env, v, &t);
  switch (t) {
    case napi_object: {
      void* data;
      size_t length;
      if (!ToView(env, v, fn, name, &data, &length)) return false;
      *out = reinterpret_cast<unsigned long>(data);
      return true;
    }
    case napi_null:
      *out = 0;
      return true;
    case napi_bigint:
    case napi_number: {
      uint64_t u;
      if (!ToUint64(env, v, fn, name, &u)) return false;
      *out = static_cast<unsigned long>(u);
      return true;
    }
    default:
      ThrowTypeError(env, fn, name, "an ArrayBufferView, a bigint, a non-negative integer or null", v);
      return false;
  }
}

bool GetProperty(napi_env env, napi_value v, const char* fn, const char* name, const char* key, napi_value* out) {
  napi_valuetype t = napi_undefined;
  if (v != nullptr) napi_typeof(env, v, &t);
  if (t != napi_object) {
    ThrowTypeError(env, fn, name, "an object", v);
    return false;
  }
  return napi_get_named_property(env, v, key, out) == napi_ok;
}

}  // namespace iommufd
