# CLI tests of the model-folder layer: dsv3 init + inspect on the tiny preset (f32, bf16, fp8),
# the real shapes' parameter counts, and damaged folders and configs that must fail with a message
# naming the problem (RELIABILITY §1). tests/model/cli_check.py checks exit codes and output.
set(MODEL_CLI ${DSV3_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/model/cli_check.py)
set(MODEL_TMP ${CMAKE_CURRENT_BINARY_DIR}/model_cli)

# Good folders, created once and shared by the tests below (fixtures).
foreach(variant f32 bf16 fp8)
  if(variant STREQUAL "fp8")
    set(dtype_args --fp8)
  else()
    set(dtype_args --dtype ${variant})
  endif()
  add_test(NAME model_init_tiny_${variant}
           COMMAND ${MODEL_CLI} --ok --match "wrote"
                   -- $<TARGET_FILE:dsv3> init --preset tiny -o ${MODEL_TMP}/tiny_${variant}
                   --seed 1 ${dtype_args} --force)
  set_tests_properties(model_init_tiny_${variant} PROPERTIES FIXTURES_SETUP model_tiny_${variant}
                       LABELS "cli;model")
endforeach()

add_test(NAME model_inspect_tiny_f32
         COMMAND ${MODEL_CLI} --ok --match "F32" --match "model.layers.4.shared_head.head.weight"
                 --match "80 elements per token per layer"
                 -- $<TARGET_FILE:dsv3> inspect ${MODEL_TMP}/tiny_f32 --tensors)
add_test(NAME model_inspect_tiny_bf16
         COMMAND ${MODEL_CLI} --ok --match "BF16" --match "F32 .* in 4 tensors"
                 -- $<TARGET_FILE:dsv3> inspect ${MODEL_TMP}/tiny_bf16)
add_test(NAME model_inspect_tiny_fp8
         COMMAND ${MODEL_CLI} --ok --match "F8_E4M3"
                 --match "model.layers.1.self_attn.o_proj.weight_scale_inv +F32 +\\[2, 1\\]"
                 -- $<TARGET_FILE:dsv3> inspect ${MODEL_TMP}/tiny_fp8 --tensors)
set_tests_properties(model_inspect_tiny_f32 PROPERTIES FIXTURES_REQUIRED model_tiny_f32)
set_tests_properties(model_inspect_tiny_bf16 PROPERTIES FIXTURES_REQUIRED model_tiny_bf16)
set_tests_properties(model_inspect_tiny_fp8 PROPERTIES FIXTURES_REQUIRED model_tiny_fp8)

# The folders read back by numpy alone against a tensor list rebuilt in Python from SPEC §6, the
# SPEC §1.2 init, and bf16/fp8 equal to the f32 folder of the same seed after rounding.
foreach(variant f32 bf16 fp8)
  add_test(NAME model_folder_check_${variant}
           COMMAND ${DSV3_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/model/check_folder.py
                   ${MODEL_TMP}/tiny_${variant} ${MODEL_TMP}/tiny_f32)
  set_tests_properties(model_folder_check_${variant} PROPERTIES
                       FIXTURES_REQUIRED "model_tiny_${variant};model_tiny_f32" LABELS "cli;model")
endforeach()

# SPEC §8.1: the real shapes' counts, as printed.
add_test(NAME model_inspect_deepseek_v3
         COMMAND ${MODEL_CLI} --ok --match "main 671\\.0B total, 36\\.6.B activated"
                 --match "MTP  11\\.6.B unique" --match "576 elements per token per layer"
                 --match "softmax scale 0\\.1352338"
                 -- $<TARGET_FILE:dsv3> inspect --preset deepseek-v3)
add_test(NAME model_inspect_v2_lite
         COMMAND ${MODEL_CLI} --ok --match "main 15\\.7.B total, 2\\.45B activated"
                 --match "softmax scale 0\\.1147214"
                 -- $<TARGET_FILE:dsv3> inspect --preset deepseek-v2-lite)
foreach(pair "1.5b;1\\.78B" "7b;7\\.62B" "14b;14\\.77B")
  list(GET pair 0 size)
  list(GET pair 1 figure)
  add_test(NAME model_inspect_qwen_${size}
           COMMAND ${MODEL_CLI} --ok --match "main ${figure} total"
                   -- $<TARGET_FILE:dsv3> inspect --preset r1-distill-qwen-${size})
endforeach()

# Damaged folders: a copy of a good folder, one edit, then `dsv3 inspect DIR` must exit 1 naming it.
set(VICTIM model.layers.2.self_attn.kv_b_proj.weight)
function(model_bad_folder name fixture)
  cmake_parse_arguments(B "" "" "EDIT;MATCH" ${ARGN})
  set(args --copy ${MODEL_TMP}/tiny_${fixture} ${MODEL_TMP}/bad_${name})
  foreach(e ${B_EDIT})
    string(REPLACE " " ";" e "${e}")
    list(APPEND args --edit ${e})
  endforeach()
  foreach(m ${B_MATCH})
    list(APPEND args --match ${m})
  endforeach()
  add_test(NAME model_bad_${name}
           COMMAND ${MODEL_CLI} ${args} --fail -- $<TARGET_FILE:dsv3> inspect ${MODEL_TMP}/bad_${name})
  set_tests_properties(model_bad_${name} PROPERTIES FIXTURES_REQUIRED model_tiny_${fixture}
                       LABELS "cli;model")
endfunction()

model_bad_folder(tensor_missing f32 EDIT "drop ${VICTIM}" MATCH "${VICTIM}" "missing")
model_bad_folder(tensor_wrong_shape f32 EDIT "reshape ${VICTIM} 64,256"
                 MATCH "model\\.safetensors: tensor '${VICTIM}' has shape \\[64, 256\\]" "\\[256, 64\\]")
model_bad_folder(index_missing_shard f32 EDIT "index-missing ${VICTIM}"
                 MATCH "model-00002-of-00002\\.safetensors")
model_bad_folder(fp8_without_scale fp8
                 EDIT "drop model.layers.1.self_attn.o_proj.weight_scale_inv"
                 MATCH "model.layers.1.self_attn.o_proj.weight" "scale_inv")
model_bad_folder(config_missing_field f32 EDIT "config hidden_size null"
                 MATCH "config\\.json: hidden_size is missing")
model_bad_folder(config_heads_not_dividing f32 EDIT "config num_attention_heads 3"
                 MATCH "hidden_size \\(256\\) is not divisible by num_attention_heads \\(3\\)")
model_bad_folder(config_kv_lora_zero f32 EDIT "config kv_lora_rank 0" MATCH "kv_lora_rank must be positive")
model_bad_folder(config_topk_too_large f32 EDIT "config num_experts_per_tok 17"
                 MATCH "num_experts_per_tok \\(17\\) is larger than n_routed_experts \\(16\\)")
model_bad_folder(config_unknown_model_type f32 EDIT "config model_type \"mixtral\""
                 MATCH "model_type 'mixtral' is not supported")
model_bad_folder(config_not_json f32 EDIT "config rope_theta \"fast\"" MATCH "rope_theta must be a number")

# --config FILE and argument errors.
add_test(NAME model_inspect_config_file
         COMMAND ${MODEL_CLI} --ok --match "deepseek_v3" --match "main .* total"
                 -- $<TARGET_FILE:dsv3> inspect --config ${MODEL_TMP}/tiny_f32/config.json)
set_tests_properties(model_inspect_config_file PROPERTIES FIXTURES_REQUIRED model_tiny_f32)
add_test(NAME model_init_refuses_non_empty
         COMMAND ${MODEL_CLI} --fail --match "is not empty" --match "--force"
                 -- $<TARGET_FILE:dsv3> init --preset tiny -o ${MODEL_TMP}/tiny_f32)
set_tests_properties(model_init_refuses_non_empty PROPERTIES FIXTURES_REQUIRED model_tiny_f32)
# A vocabulary of 2 * 10^9 makes a folder of about 4 TB: no test disk has room, so nothing is
# written.
add_test(NAME model_init_refuses_full_disk
         COMMAND ${MODEL_CLI} --copy ${MODEL_TMP}/tiny_f32 ${MODEL_TMP}/huge_config
                 --edit config vocab_size 2000000000 --fail --match "needs .* but its disk has"
                 -- $<TARGET_FILE:dsv3> init --config ${MODEL_TMP}/huge_config/config.json
                 -o ${MODEL_TMP}/never_huge)
set_tests_properties(model_init_refuses_full_disk PROPERTIES FIXTURES_REQUIRED model_tiny_f32)
add_test(NAME model_init_unknown_preset
         COMMAND ${MODEL_CLI} --fail --match "unknown preset 'tiny2'" --match "known presets: tiny"
                 -- $<TARGET_FILE:dsv3> init --preset tiny2 -o ${MODEL_TMP}/never)
add_test(NAME model_init_unknown_option
         COMMAND ${MODEL_CLI} --fail --match "unknown option --sed"
                 -- $<TARGET_FILE:dsv3> init --preset tiny --sed 1 -o ${MODEL_TMP}/never)
add_test(NAME model_init_help
         COMMAND ${MODEL_CLI} --ok --match "usage: dsv3 init" --match "r1-distill-llama-8b"
                 -- $<TARGET_FILE:dsv3> init --help)
add_test(NAME model_inspect_help
         COMMAND ${MODEL_CLI} --ok --match "usage: dsv3 inspect" -- $<TARGET_FILE:dsv3> inspect --help)
set_tests_properties(model_inspect_tiny_f32 model_inspect_tiny_bf16 model_inspect_tiny_fp8
                     model_inspect_deepseek_v3 model_inspect_v2_lite model_inspect_qwen_1.5b
                     model_inspect_qwen_7b model_inspect_qwen_14b model_inspect_config_file
                     model_init_refuses_non_empty model_init_refuses_full_disk
                     model_init_unknown_preset model_init_unknown_option model_init_help
                     model_inspect_help PROPERTIES LABELS "cli;model")

# dsv3 convert: the tiny folders rewritten as stored and in other dtypes. Each output is read back
# by check_folder.py (with the f32 folder as the reference where the dtype allows it: f16 rounds
# more than its tolerance, and an FP8 input converted to bf16 carries the E4M3 error); where
# `dsv3 init` writes the same folder for the same seed (as stored; f32 rounded to bf16 or
# quantised to fp8 as init does), the whole folder must equal it byte for byte (diff -r).
foreach(case "f32;same;f32" "bf16;same;bf16" "fp8;same;fp8" "f32;bf16;bf16" "f32;fp8;fp8"
             "f32;f16;" "fp8;bf16;")
  list(GET case 0 src)
  list(GET case 1 dtype)
  list(GET case 2 twin)  # the init folder it must equal, or empty
  set(name ${src}_to_${dtype})
  set(out ${MODEL_TMP}/convert_${name})
  add_test(NAME model_convert_${name}
           COMMAND ${MODEL_CLI} --ok --match "converted .* tensors, .* in [0-9.]+ s"
                   -- $<TARGET_FILE:dsv3> convert -m ${MODEL_TMP}/tiny_${src} -o ${out}
                   --dtype ${dtype} --force)
  set_tests_properties(model_convert_${name} PROPERTIES FIXTURES_SETUP model_convert_${name}
                       FIXTURES_REQUIRED model_tiny_${src} LABELS "cli;model")
  if(twin)
    set(ref ${MODEL_TMP}/tiny_f32)
  else()
    set(ref "")
  endif()
  add_test(NAME model_convert_check_${name}
           COMMAND ${DSV3_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/model/check_folder.py ${out} ${ref})
  set_tests_properties(model_convert_check_${name} PROPERTIES LABELS "cli;model"
                       FIXTURES_REQUIRED "model_convert_${name};model_tiny_f32")
  if(twin)
    add_test(NAME model_convert_same_as_init_${name} COMMAND diff -r ${out} ${MODEL_TMP}/tiny_${twin})
    set_tests_properties(model_convert_same_as_init_${name} PROPERTIES LABELS "cli;model"
                         FIXTURES_REQUIRED "model_convert_${name};model_tiny_${twin}")
  endif()
endforeach()

# --force replaces a model folder: the f32 folder converted to fp8 over a copy of the bf16 one
# leaves exactly the fp8 folder (no stale shard, index or config.json).
add_test(NAME model_convert_force
         COMMAND ${MODEL_CLI} --copy ${MODEL_TMP}/tiny_bf16 ${MODEL_TMP}/convert_forced --ok
                 -- $<TARGET_FILE:dsv3> convert -m ${MODEL_TMP}/tiny_f32
                 -o ${MODEL_TMP}/convert_forced --dtype fp8 --force)
add_test(NAME model_convert_force_result COMMAND diff -r ${MODEL_TMP}/convert_forced ${MODEL_TMP}/tiny_fp8)
set_tests_properties(model_convert_force PROPERTIES FIXTURES_SETUP model_convert_forced
                     FIXTURES_REQUIRED "model_tiny_bf16;model_tiny_f32")
set_tests_properties(model_convert_force_result PROPERTIES
                     FIXTURES_REQUIRED "model_convert_forced;model_tiny_fp8")

# Refusals, each followed by a check that the folder it refused is untouched. The input is never
# written over, even with --force and through a path that resolves to it (a/../b): on a copy, so
# that a failure cannot damage the shared fixture.
add_test(NAME model_convert_refuses_input
         COMMAND ${MODEL_CLI} --copy ${MODEL_TMP}/tiny_f32 ${MODEL_TMP}/convert_self
                 --fail --match "-o .*/tiny_bf16/\\.\\./convert_self is the folder being read"
                 -- $<TARGET_FILE:dsv3> convert -m ${MODEL_TMP}/convert_self
                 -o ${MODEL_TMP}/tiny_bf16/../convert_self --dtype bf16 --force)
add_test(NAME model_convert_refuses_input_intact
         COMMAND diff -r ${MODEL_TMP}/convert_self ${MODEL_TMP}/tiny_f32)
set_tests_properties(model_convert_refuses_input PROPERTIES FIXTURES_SETUP model_convert_self
                     FIXTURES_REQUIRED "model_tiny_f32;model_tiny_bf16")
set_tests_properties(model_convert_refuses_input_intact PROPERTIES
                     FIXTURES_REQUIRED "model_convert_self;model_tiny_f32")
# Without --force a non-empty output (here a model folder) is refused and left as it was.
add_test(NAME model_convert_refuses_non_empty
         COMMAND ${MODEL_CLI} --copy ${MODEL_TMP}/tiny_bf16 ${MODEL_TMP}/convert_occupied
                 --fail --match "convert_occupied is not empty" --match "--force"
                 -- $<TARGET_FILE:dsv3> convert -m ${MODEL_TMP}/tiny_f32
                 -o ${MODEL_TMP}/convert_occupied)
add_test(NAME model_convert_refuses_non_empty_intact
         COMMAND diff -r ${MODEL_TMP}/convert_occupied ${MODEL_TMP}/tiny_bf16)
set_tests_properties(model_convert_refuses_non_empty PROPERTIES FIXTURES_SETUP
                     model_convert_occupied FIXTURES_REQUIRED "model_tiny_f32;model_tiny_bf16")
set_tests_properties(model_convert_refuses_non_empty_intact PROPERTIES
                     FIXTURES_REQUIRED "model_convert_occupied;model_tiny_bf16")
add_test(NAME model_convert_bad_dtype
         COMMAND ${MODEL_CLI} --fail --match "--dtype 'q4' is not one of same, f32, bf16, f16, fp8"
                 -- $<TARGET_FILE:dsv3> convert -m ${MODEL_TMP}/tiny_f32 -o ${MODEL_TMP}/never
                 --dtype q4)
set_tests_properties(model_convert_bad_dtype PROPERTIES FIXTURES_REQUIRED model_tiny_f32)
add_test(NAME model_convert_missing_input
         COMMAND ${MODEL_CLI} --fail --match "absent/config\\.json"
                 -- $<TARGET_FILE:dsv3> convert -m ${MODEL_TMP}/absent -o ${MODEL_TMP}/never)
add_test(NAME model_convert_help
         COMMAND ${MODEL_CLI} --ok --match "usage: dsv3 convert" --match "bit-identical"
                 -- $<TARGET_FILE:dsv3> convert --help)
set_tests_properties(model_convert_force model_convert_force_result model_convert_refuses_input
                     model_convert_refuses_input_intact model_convert_refuses_non_empty
                     model_convert_refuses_non_empty_intact model_convert_bad_dtype
                     model_convert_missing_input model_convert_help PROPERTIES LABELS "cli;model")

# Output that cannot be written (a full disk: /dev/full as stdout) is an error, never exit 0 with
# the output cut short; --version.
foreach(args "init;--help" "inspect;--preset;tiny" "--help")
  string(REPLACE ";" "_" name "${args}")
  add_test(NAME cli_stdout_full${name}
           COMMAND ${MODEL_CLI} --stdout-to /dev/full --fail --match "writing the output failed"
                   -- $<TARGET_FILE:dsv3> ${args})
  set_tests_properties(cli_stdout_full${name} PROPERTIES LABELS "cli")
endforeach()
add_test(NAME cli_version
         COMMAND ${MODEL_CLI} --ok --match "^dsv3 [0-9]+\\.[0-9]+\\.[0-9]+" -- $<TARGET_FILE:dsv3> --version)
set_tests_properties(cli_version PROPERTIES LABELS "cli")

# Inputs that are not regular files are refused at once (RELIABILITY: never hang, never read a
# directory as empty): a directory and a FIFO (no writer: opening it would block) as --file.
add_test(NAME cli_file_is_a_directory
         COMMAND ${MODEL_CLI} --fail --match "is a directory, not a regular file"
                 -- $<TARGET_FILE:dsv3> tokenize -m ${MODEL_TMP}/tiny_f32 --file ${MODEL_TMP})
add_test(NAME cli_file_is_a_fifo
         COMMAND sh -c "rm -f \"$1\" && mkfifo \"$1\" && timeout 20 ${DSV3_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/model/cli_check.py --fail --match 'is a FIFO' -- \"$0\" tokenize -m \"$2\" --file \"$1\""
                 $<TARGET_FILE:dsv3> ${MODEL_TMP}/input.fifo ${MODEL_TMP}/tiny_f32)
set_tests_properties(cli_file_is_a_directory cli_file_is_a_fifo PROPERTIES
                     FIXTURES_REQUIRED model_tiny_f32 LABELS "cli")

# A failing init --force checks everything before it deletes anything: with a --tokenizer folder
# that has no tokenizer, the old model is left exactly as it was.
add_test(NAME model_init_force_checks_first
         COMMAND sh -c "rm -rf \"$1\" && cp -r \"$2\" \"$1\" && ! \"$0\" init --preset tiny -o \"$1\" --force --tokenizer \"$1/none\" && diff -r \"$2\" \"$1\""
                 $<TARGET_FILE:dsv3> ${MODEL_TMP}/init_force_keep ${MODEL_TMP}/tiny_bf16)
set_tests_properties(model_init_force_checks_first PROPERTIES FIXTURES_REQUIRED model_tiny_bf16
                     LABELS "cli;model")

# logits --ids takes what tokenize prints (spaces), as detokenize does.
add_test(NAME cli_logits_ids_with_spaces
         COMMAND ${MODEL_CLI} --ok --match "shape \\[3, 4096\\]"
                 -- $<TARGET_FILE:dsv3> logits -m ${MODEL_TMP}/tiny_f32 --ids "5 7, 9")
set_tests_properties(cli_logits_ids_with_spaces PROPERTIES FIXTURES_REQUIRED model_tiny_f32
                     LABELS "cli")

# Node-limited routing's golden file (tests/unit/model/test_router.cc) is current with its float64
# torch generator.
add_test(NAME router_golden_current
         COMMAND ${DSV3_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/ref/router_ref.py --check
                 ${CMAKE_CURRENT_SOURCE_DIR}/ref/golden/router_cases.json)
set_tests_properties(router_golden_current PROPERTIES LABELS "model;ref")
