{
  "variables": { "ampguard_asan%": "<!(echo ${AMPGUARD_ASAN:-0})" },
  "targets": [
    {
      "target_name": "ampguard_udp",
      "sources": ["udp_batch.c"],
      "cflags": ["-Wall", "-Wextra", "-Werror", "-O2", "-std=gnu11"],
      "conditions": [
        ["ampguard_asan==1", {
          "cflags": ["-fsanitize=address", "-fno-omit-frame-pointer", "-g", "-O1"],
          "ldflags": ["-fsanitize=address"]
        }]
      ]
    }
  ]
}
