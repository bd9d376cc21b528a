# Tokenizer (issue 4): ids identical to the Hugging Face tokenizers library (npm `tokenizers`) for
# DeepSeek-V3, Qwen2.5, Llama-3 (and their R1-Distill derivations) and the committed dsv3-en tokenizers on
# stress strings + the validation corpus, with and without special tokens; round trips and streaming decode; training reproduces the committed tokenizers; CLI checks.
# The npm assets come from scripts/fetch-assets.sh (scripts/test.sh runs it).
add_executable(tokenizer_compare ${CMAKE_CURRENT_SOURCE_DIR}/tokenizer/compare_ids.cc)
target_link_libraries(tokenizer_compare PRIVATE dsv3_tokenizer)
add_executable(bench_tokenizer ${PROJECT_SOURCE_DIR}/bench/tokenizer_bench.cc)
target_link_libraries(bench_tokenizer PRIVATE dsv3_tokenizer)

set(TOK_REF ${CMAKE_CURRENT_BINARY_DIR}/tokenizer_ref)
add_test(NAME tokenizer_hf_references
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/tokenizer/make_refs.sh ${PROJECT_SOURCE_DIR} ${TOK_REF})
set_tests_properties(tokenizer_hf_references PROPERTIES FIXTURES_SETUP tokenizer_refs
                     LABELS "tokenizer;ref" TIMEOUT 300)
foreach(name deepseek_v3 qwen2.5 qwen2.5-r1-distill llama3 llama3-r1-distill dsv3-en-4k dsv3-en-16k)
  if(name MATCHES "^dsv3-en")
    set(tok_dir ${PROJECT_SOURCE_DIR}/assets/tokenizers/${name})
  else()
    set(tok_dir ${PROJECT_SOURCE_DIR}/.cache/assets/${name})
  endif()
  add_test(NAME tokenizer_hf_ids_${name}
           COMMAND tokenizer_compare ${tok_dir} ${TOK_REF}/${name}.jsonl)
  set_tests_properties(tokenizer_hf_ids_${name} PROPERTIES FIXTURES_REQUIRED tokenizer_refs
                       LABELS "tokenizer;ref" TIMEOUT 300)
endforeach()

add_test(NAME tokenizer_train_reproduces_assets
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/tokenizer/train_check.sh $<TARGET_FILE:dsv3>
                 ${PROJECT_SOURCE_DIR} ${CMAKE_CURRENT_BINARY_DIR}/tokenizer_train)
set_tests_properties(tokenizer_train_reproduces_assets PROPERTIES LABELS "tokenizer" TIMEOUT 300)
add_test(NAME tokenizer_cli
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/tokenizer/cli_check.sh $<TARGET_FILE:dsv3>
                 ${PROJECT_SOURCE_DIR} ${CMAKE_CURRENT_BINARY_DIR}/tokenizer_cli)
set_tests_properties(tokenizer_cli PROPERTIES LABELS "tokenizer;cli" TIMEOUT 120)
add_test(NAME tokenizer_r1_distill_llama_cli
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/tokenizer/r1_distill_llama_check.sh $<TARGET_FILE:dsv3>
                 ${PROJECT_SOURCE_DIR} ${CMAKE_CURRENT_BINARY_DIR}/tokenizer_r1_distill_llama)
set_tests_properties(tokenizer_r1_distill_llama_cli PROPERTIES LABELS "tokenizer;cli" TIMEOUT 120)
add_test(NAME tokenizer_train_refuses_overwrite
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/tokenizer/train_refuses_overwrite.sh $<TARGET_FILE:dsv3>
                 ${CMAKE_CURRENT_BINARY_DIR}/tokenizer_train_overwrite)
set_tests_properties(tokenizer_train_refuses_overwrite PROPERTIES LABELS "tokenizer;cli")
