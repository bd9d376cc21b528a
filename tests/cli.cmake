# Issue 19: nothing lost, nothing hangs, a CLI a llama.cpp user finds natural. Every test runs on the
# tiny folders of tests/model.cmake (fixtures model_tiny_*) and works in its own folder under
# build/tests/cli/. File-system faults are made in those folders: links, FIFOs (mkfifo), a size
# limit on written files (RLIMIT_FSIZE) standing in for a full disk or a kill mid-write.
set(CLI_CHECK ${DSV3_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/model/cli_check.py)
set(CLI_MODELS ${CMAKE_CURRENT_BINARY_DIR}/model_cli)  # tests/model.cmake's fixtures
set(CLI_TMP ${CMAKE_CURRENT_BINARY_DIR}/cli)
set(CLI_DSV3 $<TARGET_FILE:dsv3>)

function(cli_test name)
  cmake_parse_arguments(T "" "FIXTURE" "COMMAND" ${ARGN})
  add_test(NAME cli_${name} COMMAND ${T_COMMAND})
  set_tests_properties(cli_${name} PROPERTIES LABELS "cli" TIMEOUT 120)
  if(T_FIXTURE)
    set_tests_properties(cli_${name} PROPERTIES FIXTURES_REQUIRED model_tiny_${T_FIXTURE})
  endif()
endfunction()

# 1. Replace-at-end writes (init, convert, tokenizer train, logits, data prepare): a failing or
# killed --force write leaves the old output loadable; the leftovers of a killed run are named by
# a plain rerun and removed by --force.
foreach(case init convert tokenizer logits prepare)
  set(model ${CLI_MODELS}/tiny_bf16)
  if(case STREQUAL "logits" OR case STREQUAL "tokenizer" OR case STREQUAL "prepare")
    set(model ${CLI_MODELS}/tiny_f32)
  endif()
  get_filename_component(fixture ${model} NAME)
  string(REPLACE "tiny_" "" fixture ${fixture})
  cli_test(replace_${case} FIXTURE ${fixture}
           COMMAND ${DSV3_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/model/replace_check.py ${case}
                   ${CLI_DSV3} ${CLI_TMP}/replace_${case} ${model})
endforeach()

# 2. A command never writes over its own input, whatever the spelling of the path.
cli_test(logits_out_is_input FIXTURE f32
         COMMAND ${CLI_CHECK} --fail --match "--out .*/tiny_f32/\\./model\\.safetensors is the input .*/tiny_f32/model\\.safetensors"
                 -- ${CLI_DSV3} logits -m ${CLI_MODELS}/tiny_f32 --ids 1,2
                 --out ${CLI_MODELS}/tiny_f32/./model.safetensors)
cli_test(logits_out_is_config FIXTURE f32
         COMMAND ${CLI_CHECK} --fail --match "config\\.json is an input of this command"
                 -- ${CLI_DSV3} logits -m ${CLI_MODELS}/tiny_f32 --ids 1,2
                 --out ${CLI_MODELS}/tiny_f32/config.json)
cli_test(grad_out_is_input FIXTURE f32
         COMMAND ${CLI_CHECK} --fail --match "is an input"
                 -- ${CLI_DSV3} grad -m ${CLI_MODELS}/tiny_f32 --ids 1,2,3
                 --out ${CLI_MODELS}/tiny_f32/model.safetensors)
cli_test(logits_out_is_a_directory FIXTURE f32
         COMMAND ${CLI_CHECK} --fail --match "is a directory, not a regular file: it is never replaced"
                 -- ${CLI_DSV3} logits -m ${CLI_MODELS}/tiny_f32 --ids 1 --out ${CLI_MODELS})
# Run as: sh -c SCRIPT DIR COMMAND...: SCRIPT prepares DIR ($0), then runs COMMAND ("$@").
cli_test(logits_out_fifo_without_reader FIXTURE f32
         COMMAND sh -c "rm -rf \"$0\" && mkdir -p \"$0\" && mkfifo \"$0/out.npy\" && exec timeout 60 \"$@\""
                 ${CLI_TMP}/fifo_out ${CLI_CHECK} --fail --match "is a FIFO that no program is reading"
                 -- ${CLI_DSV3} logits -m ${CLI_MODELS}/tiny_f32 --ids 1 --out ${CLI_TMP}/fifo_out/out.npy)
cli_test(tokenizer_train_out_is_input FIXTURE f32
         COMMAND sh -c "rm -rf \"$0\" && mkdir -p \"$0\" && cp ${CLI_MODELS}/tiny_f32/tokenizer.json \"$0/\" && \"$@\" && cmp ${CLI_MODELS}/tiny_f32/tokenizer.json \"$0/tokenizer.json\""
                 ${CLI_TMP}/tok_self ${CLI_CHECK} --fail --match "which is the input"
                 -- ${CLI_DSV3} tokenizer train --input ${CLI_TMP}/tok_self/tokenizer.json
                 --vocab-size 300 -o ${CLI_TMP}/tok_self --force)

# 3. Configs that pass validation field by field but describe absurd models fail at once, naming
# the limit, before anything is built for them (TIMEOUT 30: they used to take minutes and 15 GB).
function(cli_absurd name key value)
  cmake_parse_arguments(T "" "" "MATCH;COMMAND" ${ARGN})
  set(dir ${CLI_TMP}/absurd_${name})
  string(REPLACE "@DIR@" ${dir} cmd "${T_COMMAND}")
  cli_test(absurd_${name} FIXTURE f32
           COMMAND ${CLI_CHECK} --copy ${CLI_MODELS}/tiny_f32 ${dir} --edit config ${key} ${value}
                   --fail --match ${T_MATCH} -- ${CLI_DSV3} ${cmd})
  set_tests_properties(cli_absurd_${name} PROPERTIES TIMEOUT 30)
endfunction()
cli_absurd(layers_inspect num_hidden_layers 1000000000
           MATCH "num_hidden_layers 1000000000 is over dsv3's limit of 16777216"
           COMMAND inspect -m @DIR@)
cli_absurd(experts_init n_routed_experts 100000000
           MATCH "n_routed_experts 100000000 is over dsv3's limit"
           COMMAND init --config @DIR@/config.json -o @DIR@/never)
cli_absurd(tensors_logits n_routed_experts 10000000
           MATCH "describes a model of 1.2e\\+08 tensors .*over dsv3's limit of 1000000 tensors"
           COMMAND logits -m @DIR@ --ids 1)
cli_absurd(tensors_init num_hidden_layers 100000
           MATCH "over dsv3's limit of 1000000 tensors"
           COMMAND init --config @DIR@/config.json -o @DIR@/never)
cli_absurd(more_than_the_files num_hidden_layers 10000
           MATCH "describes a model of 620019 tensors, but the safetensors files in .* hold 269"
           COMMAND inspect -m @DIR@)
cli_absurd(bytes_past_the_files vocab_size 2000000000
           MATCH "parameters \\(at least .* bytes\\), but the safetensors files in .* hold"
           COMMAND logits -m @DIR@ --ids 1)

# 4. A prompt from a file (-f) and from stdin (-p -) gives what -p TEXT gives; a 1 MB prompt (too
# long for argv) arrives whole (200000 words + BOS, refused by the context, not lost on the way);
# a directory or a FIFO as -f is a named error at once.
cli_test(generate_prompt_file_and_stdin FIXTURE f32
         COMMAND sh -c "rm -rf \"$0\" && mkdir -p \"$0\" && printf 'The model of the' > \"$0/p.txt\" && \"$1\" generate -m \"$2\" -p 'The model of the' -n 4 --greedy > \"$0/argv\" && \"$1\" generate -m \"$2\" -f \"$0/p.txt\" -n 4 --greedy > \"$0/file\" && \"$1\" generate -m \"$2\" --file=\"$0/p.txt\" -n 4 --greedy > \"$0/file2\" && \"$1\" generate -m \"$2\" -p - -n 4 --greedy < \"$0/p.txt\" > \"$0/stdin\" && cmp \"$0/argv\" \"$0/file\" && cmp \"$0/argv\" \"$0/file2\" && cmp \"$0/argv\" \"$0/stdin\" && test -s \"$0/argv\""
                 ${CLI_TMP}/prompt_file ${CLI_DSV3} ${CLI_MODELS}/tiny_f32)
cli_test(generate_prompt_1mb FIXTURE f32
         COMMAND sh -c "rm -rf \"$0\" && mkdir -p \"$0\" && ${DSV3_PYTHON} -c \"print('word ' * 200000, end='')\" > \"$0/big.txt\" && \"$@\" \"$0/big.txt\""
                 ${CLI_TMP}/prompt_1mb ${CLI_CHECK} --fail
                 --match "the prompt needs 2000[0-9][0-9] positions but the model's context is 4096"
                 -- ${CLI_DSV3} generate -m ${CLI_MODELS}/tiny_f32 -n 1 -f)
cli_test(generate_prompt_file_is_a_directory FIXTURE f32
         COMMAND ${CLI_CHECK} --fail --match "generate: error: .* is a directory, not a regular file"
                 -- ${CLI_DSV3} generate -m ${CLI_MODELS}/tiny_f32 -f ${CLI_MODELS})
cli_test(generate_prompt_file_is_a_fifo FIXTURE f32
         COMMAND sh -c "rm -rf \"$0\" && mkdir -p \"$0\" && mkfifo \"$0/fifo\" && exec timeout 60 \"$@\""
                 ${CLI_TMP}/prompt_fifo ${CLI_CHECK} --fail --match "is a FIFO, not a regular file"
                 -- ${CLI_DSV3} generate -m ${CLI_MODELS}/tiny_f32 -f ${CLI_TMP}/prompt_fifo/fifo)
cli_test(generate_prompt_missing FIXTURE f32
         COMMAND ${CLI_CHECK} --fail --match "missing the prompt: -p TEXT, -p - \\(stdin\\) or -f FILE"
                 -- ${CLI_DSV3} generate -m ${CLI_MODELS}/tiny_f32)

# A character device at an output path is written through, never replaced by a regular file: a
# node like /dev/null made in the test's own folder (root only; skipped where mknod is refused).
add_test(NAME cli_logits_out_device_written_through
         COMMAND sh -c "[ \"$(id -u)\" = 0 ] || exit 77; rm -rf \"$0\" && mkdir -p \"$0\" && { mknod \"$0/null\" c 1 3 || exit 77; } && \"$@\" && test -c \"$0/null\""
                 ${CLI_TMP}/device ${CLI_DSV3} logits -m ${CLI_MODELS}/tiny_f32 --ids 1,2
                 --out ${CLI_TMP}/device/null)
set_tests_properties(cli_logits_out_device_written_through PROPERTIES LABELS "cli"
                     SKIP_RETURN_CODE 77 FIXTURES_REQUIRED model_tiny_f32)

# 5. -m DIR for every command that reads a model, inspect included; logits --text.
cli_test(inspect_dash_m FIXTURE f32
         COMMAND ${CLI_CHECK} --ok --match "model +deepseek_v3 \\(.*tiny_f32\\)"
                 -- ${CLI_DSV3} inspect -m ${CLI_MODELS}/tiny_f32)
cli_test(inspect_two_sources FIXTURE f32
         COMMAND ${CLI_CHECK} --fail --match "give exactly one of -m DIR"
                 -- ${CLI_DSV3} inspect -m ${CLI_MODELS}/tiny_f32 --preset tiny)
cli_test(logits_text FIXTURE f32
         COMMAND ${CLI_CHECK} --ok --match "ids: 0 79 1136 118 740" --match "shape \\[5, 4096\\]"
                 -- ${CLI_DSV3} logits -m ${CLI_MODELS}/tiny_f32 --text "Hello world")
cli_test(logits_text_and_ids FIXTURE f32
         COMMAND ${CLI_CHECK} --fail --match "give exactly one of --ids and --text"
                 -- ${CLI_DSV3} logits -m ${CLI_MODELS}/tiny_f32 --text "Hello" --ids 1)

# 6. One parameter count across init, inspect, generate and bench, and in the README.
cli_test(one_parameter_count
         COMMAND ${DSV3_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/model/param_count_check.py ${CLI_DSV3}
                 ${CLI_TMP}/param_count ${PROJECT_SOURCE_DIR}/README.md)

# 7. A real-shape preset whose tokenizer is not installed is refused before anything is written
# ($DSV3_ASSETS points the search at an empty place); --no-tokenizer writes the weights and says
# last, clearly, that the folder cannot generate yet. A long init reports progress off a terminal
# too (a line every DSV3_PROGRESS_INTERVAL seconds: 0 here; 5 by default, so tiny prints none).
cli_test(init_preset_without_tokenizer
         COMMAND sh -c "rm -rf \"$0\" && \"$@\" && test ! -e \"$0\"" ${CLI_TMP}/no_tok_qwen
                 env DSV3_ASSETS=${CLI_TMP}/no_assets ${CLI_CHECK} --fail
                 --match "tokenizer of preset r1-distill-qwen-1.5b \\('qwen2.5-r1-distill'\\) is not installed"
                 --match "could not tokenize, generate or chat" --match "fetch-assets.sh"
                 --match "--no-tokenizer"
                 -- ${CLI_DSV3} init --preset r1-distill-qwen-1.5b -o ${CLI_TMP}/no_tok_qwen)
cli_test(init_no_tokenizer_says_so
         COMMAND env DSV3_ASSETS=${CLI_TMP}/no_assets ${CLI_CHECK} --ok
                 --match "warning: .*no_tok_tiny has no tokenizer: tokenize, generate and chat cannot use it"
                 -- ${CLI_DSV3} init --preset tiny --no-tokenizer -o ${CLI_TMP}/no_tok_tiny --force)
cli_test(init_progress_lines_off_a_terminal
         COMMAND env DSV3_PROGRESS_INTERVAL=0 ${CLI_CHECK} --ok
                 --match "writing .*/progress/dsv3-tmp\\.[0-9]+: [0-9]+% \\([0-9.]+ [KM]iB / 22.86 MiB\\) after [0-9]+ s"
                 --match "writing .*/progress/dsv3-tmp\\.[0-9]+: 100% "
                 -- ${CLI_DSV3} init --preset tiny -o ${CLI_TMP}/progress --force)
cli_test(init_quick_prints_no_progress
         COMMAND ${CLI_CHECK} --ok --no-match "writing .*%"
                 -- ${CLI_DSV3} init --preset tiny -o ${CLI_TMP}/progress_quiet --force)

# 9. Unknown options are reported before missing required ones, in every command.
foreach(cmd init convert inspect logits tokenize detokenize template generate chat bench eval
            grad train plot tokenizer)
  cli_test(unknown_option_first_${cmd}
           COMMAND ${CLI_CHECK} --fail --match "^dsv3 ${cmd}: error: unknown option --bogus"
                   -- ${CLI_DSV3} ${cmd} --bogus)
endforeach()
cli_test(missing_required_named
         COMMAND ${CLI_CHECK} --fail --match "missing --model \\(model folder\\), --ids \\(token ids\\)"
                 -- ${CLI_DSV3} detokenize)
