# Training module: the golden file of tests/unit/train (AdamW, balance loss) is current with its
# float64 torch generator, and the CLI checks of dsv3 plot.
add_test(NAME train_golden_current
         COMMAND ${DSV3_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/ref/optimizer_ref.py --check
                 ${CMAKE_CURRENT_SOURCE_DIR}/ref/golden/train_cases.json)
set_tests_properties(train_golden_current PROPERTIES LABELS "train;ref")

# dsv3 plot (tests/train/plot_check.py): a PNG of the requested size from synthetic runs, and the
# errors for a malformed line, a missing gnuplot and a run without metrics.
foreach(case png malformed no_gnuplot missing_run link)
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
                 --match "dsv3 plot: error: no run folder given" -- $<TARGET_FILE:dsv3> plot -o x.png)
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
# 1 vs 2 threads, the refusals (used folder, mismatched resume, truncated shard), the non-finite
# and Ctrl-C stops, that the tiny model learns, and learns as well with BF16 GEMMs.
foreach(case resume threads refuse nan sigint learns bf16)
  add_test(NAME train_${case}_cli
           COMMAND ${DSV3_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/train/train_check.py ${case}
                   $<TARGET_FILE:dsv3> ${PROJECT_SOURCE_DIR} ${CMAKE_CURRENT_BINARY_DIR}/train_cli/${case})
  set_tests_properties(train_${case}_cli PROPERTIES LABELS "train;cli" TIMEOUT 300)
endforeach()

# Training reference (tests/ref/train_ref.py): the float64 PyTorch loss, gradients and AdamW
# trajectory that dsv3's backward pass and trainer are checked against. Conventions (loss parts,
# MTP rows, balance losses, LR schedule, AdamW, bias rule, file formats): train_ref.py's header.
#
# These tests check the reference itself (tests/ref/check_train_ref.py, on the tiny preset):
#   train_ref_selfcheck     its forward equals deepseek_ref's, loss parts equal a numpy
#                           recomputation, the grad/compare-grad CLI, one and two AdamW steps and
#                           the bias rule equal numpy written out, compare-train.
#   train_ref_selfcheck_fd  autograd against finite differences (4-point, routing held fixed) on
#                           every kind of tensor, MTP included; bound 1e-6 relative.
#
# dsv3 against it (tests/train/torch_check.py): `dsv3 grad` on a tiny-preset window with MTP, the
# sequence-wise and the expert-level balance losses, every gradient within 1e-5 relative; and a
# 20-step `dsv3 train` run (FP32 moments, warmup and cosine decay, clipping, the bias rule) whose
# batches (--dump-batches) the reference replays: the loss within 1e-4 relative at every step.
# The routing of N(0, 0.006) weights is decided by small score gaps (train_ref.py prints
# routing_margin); float32 and float64 drift apart over longer runs.
set(DSV3_TRAIN_REF ${CMAKE_CURRENT_SOURCE_DIR}/ref)
add_test(NAME train_ref_selfcheck
         COMMAND ${DSV3_PYTHON} ${DSV3_TRAIN_REF}/check_train_ref.py --dsv3 $<TARGET_FILE:dsv3>
                 --work ${CMAKE_CURRENT_BINARY_DIR}/train_ref/selfcheck --only forward,losses,cli,train)
add_test(NAME train_ref_selfcheck_fd
         COMMAND ${DSV3_PYTHON} ${DSV3_TRAIN_REF}/check_train_ref.py --dsv3 $<TARGET_FILE:dsv3>
                 --work ${CMAKE_CURRENT_BINARY_DIR}/train_ref/fd --only fd)
set_tests_properties(train_ref_selfcheck train_ref_selfcheck_fd PROPERTIES
                     LABELS "train;ref" TIMEOUT 600
                     ENVIRONMENT "OMP_NUM_THREADS=1;OPENBLAS_NUM_THREADS=1")
foreach(case grad trajectory fp8grad)
  add_test(NAME train_torch_${case}
           COMMAND ${DSV3_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/train/torch_check.py ${case}
                   $<TARGET_FILE:dsv3> ${PROJECT_SOURCE_DIR} ${CMAKE_CURRENT_BINARY_DIR}/train_torch/${case})
  set_tests_properties(train_torch_${case} PROPERTIES LABELS "train;ref" TIMEOUT 600
                       ENVIRONMENT "OMP_NUM_THREADS=2;OMP_WAIT_POLICY=PASSIVE")
endforeach()
