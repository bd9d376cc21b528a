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
# Comparing dsv3 with it (to add here once `dsv3 grad` / the trainer exist), e.g. on a model made
# by `dsv3 init --preset tiny -o M --seed 0` (BF16, read exactly by both sides):
#   ${DSV3_PYTHON} tests/ref/train_ref.py grad --model M --ids 3,17,0,250,42,42,99,128,7 \
#       --lambda 0.3 --alpha 1e-4 --aux-alpha 0 --out ref.safetensors
#   dsv3 grad -m M --ids 3,17,0,250,42,42,99,128,7 --mtp-lambda 0.3 --balance-alpha 1e-4 \
#       --aux-alpha 0 --out dsv3.safetensors
#   ${DSV3_PYTHON} tests/ref/train_ref.py compare-grad ref.safetensors dsv3.safetensors --rtol 1e-5
# (repeat --ids for a batch of windows; dsv3's file: every trainable tensor under its main HF name,
# F32 or F64, metadata loss/ce/mtp/balance[/aux] as decimal strings and, if it can, load.<layer>
# so that a routing difference is named rather than seen as wrong gradients). For training:
#   ${DSV3_PYTHON} tests/ref/train_ref.py train --model M --batches B.npy --out ref.jsonl \
#       --lr 1e-3 --warmup 2 --decay-start 6 --decay-steps 4 --final-lr 1e-4 --clip 1.0 \
#       --gamma 0.001 --lambda 0.3 --alpha 1e-4
#   (B.npy: int32 [steps, windows, T+1]; dsv3's trainer writes the same JSON lines)
#   ${DSV3_PYTHON} tests/ref/train_ref.py compare-train ref.jsonl dsv3.jsonl --rtol 1e-4
# The routing of N(0, 0.006) weights is decided by small score gaps: `grad` prints routing_margin
# (also in the file's metadata); float32 rounding of the router input is ~1e-7, so margins well
# above that are safe. Keep the trajectories short (a few steps): float32 and float64 drift apart.
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
