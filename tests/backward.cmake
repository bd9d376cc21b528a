# Backward kernels (training): the golden gradients read by test_kernels' BackwardGolden tests are
# current with their float64 torch generator (tests/ref/backward_ref.py).
add_test(NAME backward_golden_current
         COMMAND ${DSV3_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/ref/backward_ref.py --check
                 ${CMAKE_CURRENT_SOURCE_DIR}/ref/golden/backward_cases.json)
set_tests_properties(backward_golden_current PROPERTIES LABELS "kernels;ref")
