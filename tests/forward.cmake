# Forward pass (issue 3): dsv3 logits against the float64 PyTorch reference (tests/ref), one tiny
# random model per architecture and router type, plus the FP8 checkpoint path and CLI checks.
set(DSV3_FWD_REF ${CMAKE_CURRENT_SOURCE_DIR}/ref)
foreach(cfg deepseek_v3 deepseek_v2_greedy deepseek_v2_group_limited qwen2 qwen2_tied llama)
  add_test(NAME forward_ref_${cfg}
           COMMAND ${DSV3_PYTHON} ${DSV3_FWD_REF}/check_logits.py --dsv3 $<TARGET_FILE:dsv3>
                   --config ${DSV3_FWD_REF}/configs/${cfg}.json
                   --work ${CMAKE_CURRENT_BINARY_DIR}/forward/${cfg})
  set_tests_properties(forward_ref_${cfg} PROPERTIES LABELS "forward;ref" TIMEOUT 300)
endforeach()
add_test(NAME forward_ref_fp8_checkpoint
         COMMAND ${DSV3_PYTHON} ${DSV3_FWD_REF}/check_logits.py --dsv3 $<TARGET_FILE:dsv3>
                 --config ${DSV3_FWD_REF}/configs/deepseek_v3.json --fp8
                 --work ${CMAKE_CURRENT_BINARY_DIR}/forward/fp8)
set_tests_properties(forward_ref_fp8_checkpoint PROPERTIES LABELS "forward;ref" TIMEOUT 300)

add_test(NAME forward_logits_help COMMAND $<TARGET_FILE:dsv3> logits --help)
add_test(NAME forward_logits_rejects_unknown_option
         COMMAND $<TARGET_FILE:dsv3> logits -m . --ids 1 --bogus)
set_tests_properties(forward_logits_help forward_logits_rejects_unknown_option
                     PROPERTIES LABELS "forward;cli")
set_tests_properties(forward_logits_rejects_unknown_option
                     PROPERTIES PASS_REGULAR_EXPRESSION "dsv3 logits: error: unknown option --bogus")
# An id past 2^32 must not wrap to a valid one (4294967297 would become 1).
add_test(NAME forward_logits_rejects_huge_id
         COMMAND $<TARGET_FILE:dsv3> logits -m . --ids 3,4294967297)
set_tests_properties(forward_logits_rejects_huge_id PROPERTIES LABELS "forward;cli"
                     PASS_REGULAR_EXPRESSION "dsv3 logits: error: --ids: 4294967297 is outside the range")
