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

# CLI checks of the data pipeline and eval (tests/train/data_check.py): prepare's shards read back
# by numpy (checksums, ids equal to dsv3 tokenize), the same bytes on any thread count, eval's
# loss against numpy cross-entropy over dsv3 logits of the same windows, damaged data refused,
# data corpus.
set(DATA_CHECK ${DSV3_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/train/data_check.py)
set(DATA_TMP ${CMAKE_CURRENT_BINARY_DIR}/data_cli)

add_test(NAME data_prepare_cli
         COMMAND ${DATA_CHECK} prepare $<TARGET_FILE:dsv3> ${PROJECT_SOURCE_DIR} ${DATA_TMP})
set_tests_properties(data_prepare_cli PROPERTIES FIXTURES_SETUP data_cli LABELS "cli;train"
                     TIMEOUT 300)
foreach(case eval_data eval_file damaged)
  add_test(NAME data_${case}_cli
           COMMAND ${DATA_CHECK} ${case} $<TARGET_FILE:dsv3> ${PROJECT_SOURCE_DIR} ${DATA_TMP})
  set_tests_properties(data_${case}_cli PROPERTIES FIXTURES_REQUIRED data_cli LABELS "cli;train"
                       TIMEOUT 300)
endforeach()
add_test(NAME data_corpus_cli
         COMMAND ${DATA_CHECK} corpus $<TARGET_FILE:dsv3> ${PROJECT_SOURCE_DIR}
                 ${CMAKE_CURRENT_BINARY_DIR}/data_corpus)
set_tests_properties(data_corpus_cli PROPERTIES SKIP_RETURN_CODE 77 LABELS "cli;train" TIMEOUT 120)
add_test(NAME data_eval_help
         COMMAND ${DSV3_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/model/cli_check.py --ok
                 --match "usage: dsv3 eval" --match "perplexity" -- $<TARGET_FILE:dsv3> eval --help)
add_test(NAME data_help
         COMMAND ${DSV3_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/model/cli_check.py --ok
                 --match "usage: dsv3 data corpus" --match "data prepare"
                 -- $<TARGET_FILE:dsv3> data prepare --help)
add_test(NAME data_unknown_action
         COMMAND ${DSV3_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/model/cli_check.py --fail
                 --match "unknown action 'prep'" -- $<TARGET_FILE:dsv3> data prep)
set_tests_properties(data_eval_help data_help data_unknown_action PROPERTIES LABELS "cli;train")

# dsv3 train (tests/train/train_check.py): exact resume (2N straight == N + resume + N, bit for bit),
# 1 vs 2 threads, the refusals (used folder, mismatched resume, truncated shard), that the tiny
# model learns, and learns as well with BF16 GEMMs.
foreach(case resume threads refuse learns bf16)
  add_test(NAME train_${case}_cli
           COMMAND ${DSV3_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/train/train_check.py ${case}
                   $<TARGET_FILE:dsv3> ${PROJECT_SOURCE_DIR} ${CMAKE_CURRENT_BINARY_DIR}/train_cli/${case})
  set_tests_properties(train_${case}_cli PROPERTIES LABELS "train;cli" TIMEOUT 300)
endforeach()
