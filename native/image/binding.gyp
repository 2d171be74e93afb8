{
  "targets": [
    {
      "target_name": "tsfast_image",
      "sources": ["addon.cc", "jpeg.cc", "warp.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-O3", "-march=native", "-std=c++17", "-ffp-contract=off"],
      "libraries": ["-ljpeg"]
    }
  ]
}
