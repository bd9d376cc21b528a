# Generation (issue 5): the sampler's golden file is current with its float64 torch generator,
# and the CLI checks of generate / chat / bench on a tiny random model.
add_test(NAME sampler_golden_current
         COMMAND ${DSV3_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/ref/sampler_ref.py --check
                 ${CMAKE_CURRENT_SOURCE_DIR}/ref/golden/sampler_cases.json)
set_tests_properties(sampler_golden_current PROPERTIES LABELS "generation;ref")
