# Training module: the golden file of tests/unit/train (AdamW, balance loss) is current with its
# float64 torch generator, and the CLI checks of dsv3 plot.
add_test(NAME train_golden_current
         COMMAND ${DSV3_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/ref/optimizer_ref.py --check
                 ${CMAKE_CURRENT_SOURCE_DIR}/ref/golden/train_cases.json)
set_tests_properties(train_golden_current PROPERTIES LABELS "train;ref")

# dsv3 plot (tests/train/plot_check.py): a PNG of the requested size from synthetic runs, and the
# errors for a malformed line, a missing gnuplot and a run without metrics.
foreach(case png malformed no_gnuplot missing_run)
  add_test(NAME train_plot_${case}
           COMMAND ${DSV3_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/train/plot_check.py ${case}
                   $<TARGET_FILE:dsv3> ${CMAKE_CURRENT_BINARY_DIR}/train_plot/${case})
  set_tests_properties(train_plot_${case} PROPERTIES LABELS "train;cli")
endforeach()
add_test(NAME train_plot_help
         COMMAND ${DSV3_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/model/cli_check.py --ok
                 --match "usage: dsv3 plot" --match "gnuplot-nox" -- $<TARGET_FILE:dsv3> plot --help)
add_test(NAME train_plot_no_runs
         COMMAND ${DSV3_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/model/cli_check.py --fail
                 --match "plot: no run folder given" -- $<TARGET_FILE:dsv3> plot -o x.png)
add_test(NAME train_plot_bad_size
         COMMAND ${DSV3_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/model/cli_check.py --fail
                 --match "--size '12' is not WxH" -- $<TARGET_FILE:dsv3> plot run -o x.png --size 12)
set_tests_properties(train_plot_help train_plot_no_runs train_plot_bad_size PROPERTIES
                     LABELS "train;cli")
