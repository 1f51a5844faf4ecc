{
  "target_defaults": {
    "cflags_c": ["-std=c11", "-Wall", "-Wextra", "-Werror", "-Wshadow", "-Wmissing-prototypes",
               "-Wformat=2", "-Wno-unused-parameter", "-O2", "-fstack-protector-strong",
               "-D_FORTIFY_SOURCE=2"],
    "cflags": ["-D_GNU_SOURCE"],
    "cflags!": ["-fno-exceptions"]
  },
  "targets": [
    {
      "target_name": "mdocker-seccomp-gen",
      "type": "executable",
      "sources": ["src/seccomp-gen/seccomp-gen.c"],
      "libraries": ["-lseccomp"]
    },
    {
      "target_name": "mdocker-init",
      "type": "executable",
      "dependencies": ["mdocker-seccomp-gen"],
      "actions": [
        {
          "action_name": "seccomp_filter",
          "inputs": ["<(PRODUCT_DIR)/mdocker-seccomp-gen"],
          "outputs": ["<(SHARED_INTERMEDIATE_DIR)/seccomp-filter.h"],
          "action": ["<(PRODUCT_DIR)/mdocker-seccomp-gen", "<@(_outputs)"],
          "message": "Compiling the seccomp policy to BPF"
        }
      ],
      "include_dirs": ["<(SHARED_INTERMEDIATE_DIR)"],
      "sources": ["src/launcher/main.c", "src/launcher/run.c", "src/launcher/exec.c",
                  "src/launcher/mounts.c", "src/launcher/proc.c", "src/launcher/security.c",
                  "src/launcher/seccomp.c", "src/launcher/error.c", "src/launcher/parse.c",
                  "src/launcher/idmap.c", "src/launcher/devices.c",
                  "src/launcher/log.c", "src/launcher/network.c", "src/launcher/netinfo.c"],
      "ldflags": ["-static", "-Wl,--fatal-warnings"]
    },
    {
      "target_name": "mdocker-copier",
      "type": "executable",
      "sources": ["src/copier/copier.c", "src/launcher/error.c"],
      "ldflags": ["-static", "-Wl,--fatal-warnings"]
    },
    {
      "target_name": "mdocker-nft",
      "type": "executable",
      "sources": ["src/nft/mdocker-nft.c", "src/launcher/error.c"],
      "libraries": ["-lnftables"]
    },
    {
      "target_name": "mdocker_native",
      "sources": ["src/addon/addon.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
            "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Werror"]
    }
  ]
}
