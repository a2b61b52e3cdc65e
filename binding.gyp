{
  "targets": [
    {
      "target_name": "iommufd_native",
      "sources": [
        "native/addon.cc",
        "native/args.cc",
        "native/fd.cc",
        "native/memory.cc",
        "native/process.cc",
        "native/fail_nth.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-O2"]
    }
  ]
}
