# The FP8 recipe (SPEC §3.1, §3.2; docs/FP8.md) against tests/ref/fp8_ref.py, an independent numpy
# reference written from the E4M3 definition:
#   fp8_quantize_ref    `dsv3 quantize --block 1x128` (f32 and ue8m0 scales): every E4M3 code, the
#                       ties (to even) and one float32 step either side, subnormals, inf, NaN,
#                       all-zero and partial tiles, random rows over 12 decades: codes and scales
#                       bit for bit, the round trip within the E4M3 bound
#   fp8_checkpoint_ref  `dsv3 quantize --type fp8` on the tiny preset: DeepSeek's FP8 layout and
#                       every weight within the E4M3 bound of the original
foreach(case quantize checkpoint)
  add_test(NAME fp8_${case}_ref
           COMMAND ${DSV3_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/ref/fp8_ref.py ${case}
                   $<TARGET_FILE:dsv3> ${CMAKE_CURRENT_BINARY_DIR}/fp8/${case})
  set_tests_properties(fp8_${case}_ref PROPERTIES LABELS "fp8;ref" TIMEOUT 120)
endforeach()
