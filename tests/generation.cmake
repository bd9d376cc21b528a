# Generation (issue 5): the sampler's golden file is current with its float64 torch generator, and
# the CLI checks of generate / chat / bench on a tiny random model (tests/e2e/*.py).
add_test(NAME sampler_golden_current
         COMMAND ${DSV3_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/ref/sampler_ref.py --check
                 ${CMAKE_CURRENT_SOURCE_DIR}/ref/golden/sampler_cases.json)
set_tests_properties(sampler_golden_current PROPERTIES LABELS "generation;ref")

set(gen_e2e ${CMAKE_CURRENT_SOURCE_DIR}/e2e)
set(gen_models ${CMAKE_CURRENT_BINARY_DIR}/generation_models)
add_test(NAME generation_models
         COMMAND ${DSV3_PYTHON} ${gen_e2e}/gen_fixture.py $<TARGET_FILE:dsv3> ${gen_models})
set_tests_properties(generation_models PROPERTIES FIXTURES_SETUP generation_models
                     LABELS "generation")

foreach(check greedy seed stop reasoning interrupt interrupt_write)
  add_test(NAME generate_${check}
           COMMAND ${DSV3_PYTHON} ${gen_e2e}/generate_check.py $<TARGET_FILE:dsv3>
                   ${gen_models}/r1 ${check})
  set_tests_properties(generate_${check} PROPERTIES FIXTURES_REQUIRED generation_models
                       LABELS "generation;e2e" TIMEOUT 120)
endforeach()

add_test(NAME chat_pty_three_turns_and_ctrl_c
         COMMAND ${DSV3_PYTHON} ${gen_e2e}/chat_pty.py $<TARGET_FILE:dsv3> ${gen_models}/plain
                 ${gen_models}/r1)
set_tests_properties(chat_pty_three_turns_and_ctrl_c PROPERTIES FIXTURES_REQUIRED
                     generation_models LABELS "generation;e2e" TIMEOUT 180)

add_test(NAME bench_json_schema
         COMMAND ${DSV3_PYTHON} ${gen_e2e}/bench_json_check.py $<TARGET_FILE:dsv3>
                 ${gen_models}/r1 ${PROJECT_SOURCE_DIR}/docs/bench.schema.json)
set_tests_properties(bench_json_schema PROPERTIES FIXTURES_REQUIRED generation_models
                     LABELS "generation;e2e" TIMEOUT 120)

# Every subcommand answers --help and refuses unknown options.
foreach(cmd generate chat bench)
  set(required "")
  if(cmd STREQUAL "generate")
    set(required -p x)
  endif()
  add_test(NAME ${cmd}_help COMMAND $<TARGET_FILE:dsv3> ${cmd} --help)
  add_test(NAME ${cmd}_rejects_unknown_option
           COMMAND $<TARGET_FILE:dsv3> ${cmd} -m ${gen_models}/r1 ${required} --no-such-option)
  set_tests_properties(${cmd}_rejects_unknown_option PROPERTIES LABELS "generation"
                       PASS_REGULAR_EXPRESSION "dsv3 ${cmd}: error: unknown option --no-such-option")
  set_tests_properties(${cmd}_help PROPERTIES LABELS "generation")
endforeach()

# Bad sampling values are named errors (exit 1) before anything is loaded.
function(generation_bad_input name message)
  add_test(NAME generate_rejects_${name}
           COMMAND $<TARGET_FILE:dsv3> generate -m ${gen_models}/r1 -p x ${ARGN})
  set_tests_properties(generate_rejects_${name} PROPERTIES LABELS "generation"
                       PASS_REGULAR_EXPRESSION "dsv3 generate: error: .*${message}")
endfunction()
generation_bad_input(nan_temperature "'nan' is not a number" --temp nan)
generation_bad_input(top_p_above_1 "top_p 1.500000 is outside" --top-p 1.5)
generation_bad_input(negative_n "-n must be -1" -n -5)
generation_bad_input(empty_stop "empty stop string" --stop=)
generation_bad_input(cache_dtype "must be f32 or bf16" --cache-dtype f16)

# Speculative decoding with the MTP module (issue 17): greedy output identical to plain decoding
# on the random tiny model and on one trained for a few seconds, and a model without MTP refused.
foreach(mode random trained no-mtp)
  add_test(NAME speculative_${mode}
           COMMAND ${DSV3_PYTHON} ${gen_e2e}/speculative_check.py $<TARGET_FILE:dsv3>
                   ${gen_models}/r1 ${mode} ${CMAKE_CURRENT_BINARY_DIR}/speculative_${mode})
  set_tests_properties(speculative_${mode} PROPERTIES FIXTURES_REQUIRED generation_models
                       LABELS "generation;e2e" TIMEOUT 120)
endforeach()
generation_bad_input(speculative_method "--speculative must be 'mtp'" --speculative eagle)
generation_bad_input(draft_alone "--draft needs --speculative mtp" --draft 2)
generation_bad_input(draft_range "--draft must be within 1 .. 16" --speculative mtp --draft 0)
