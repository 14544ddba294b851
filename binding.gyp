{
  # node-gyp build of the same addon CMakeLists.txt builds (cmake-js is the default path).
  #   npx node-gyp rebuild     (after scripts/build-pjproject.sh)
  "targets": [
    {
      "target_name": "sip_ai_agent",
      "sources": [
        "native/sip/SipThread.cpp", "native/sip/Endpoint.cpp", "native/sip/AgentAccount.cpp",
        "native/sip/AgentCall.cpp", "native/sip/PcmPort.cpp", "native/sip/SipMessage.cpp", "native/sip/Admission.cpp",
        "native/binding/addon.cpp", "native/binding/JsUserAgent.cpp",
        "native/binding/Convert.cpp", "native/binding/JsErrors.cpp",
        "native/binding/JsResampler.cpp"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<!@(bash scripts/pj-gyp.sh includes)"
      ],
      "defines": [
        "NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED",
        "PJ_AUTOCONF=1", "PJ_IS_BIG_ENDIAN=0", "PJ_IS_LITTLE_ENDIAN=1"
      ],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-frtti", "-fvisibility=hidden", "-Wall", "-Wno-unused-parameter"],
      "ldflags": ["-Wl,--exclude-libs,ALL"],
      "libraries": [
        "<!@(bash scripts/pj-gyp.sh libs)",
        "-lsrtp2", "-lgsm", "-lspeex", "-lspeexdsp", "-lopus", "-lssl", "-lcrypto", "-luuid", "-lm", "-lrt", "-lpthread"
      ]
    }
  ]
}
