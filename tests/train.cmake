# Training module: the golden file of tests/unit/train (AdamW, balance loss) is current with its
# float64 torch generator, and the CLI checks of dsv3 plot.
add_test(NAME train_golden_current
         COMMAND ${DSV3_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/ref/train_ref.py --check
                 ${CMAKE_CURRENT_SOURCE_DIR}/ref/golden/train_cases.json)
set_tests_properties(train_golden_current PROPERTIES LABELS "train;ref")
