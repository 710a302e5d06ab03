{
  "targets": [
    {
      "target_name": "agentrace_bpf",
      "sources": [
        "src/addon/addon.cc",
        "src/addon/args.cc",
        "src/addon/bpf_object.cc",
        "src/addon/bpf_object_maps.cc",
        "src/addon/bpf_object_ringbuf.cc",
        "src/addon/elf_symbols.cc",
        "src/addon/errors.cc",
        "src/addon/peer_cred.cc",
        "src/addon/ring_buffer.cc",
        "src/addon/sysinfo.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_CPP_EXCEPTIONS"
      ],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags": ["-Wall", "-Wextra"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-Wall", "-Wextra"],
      "libraries": ["-lbpf", "-lelf", "-lz"]
    }
  ]
}
