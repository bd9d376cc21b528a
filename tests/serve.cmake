# dsv3 serve (issue 16): real clients against the server on the tiny model `dsv3 init` makes
# (tests/model.cmake's fixture model_tiny_f32): the official openai npm client, a bad-request
# suite, disconnect and SIGTERM, batched = alone, --speculative mtp = plain, and the chat page in
# headless Chromium. The npm packages (openai, puppeteer-core) are in tests/js
# (scripts/fetch-assets.sh); Chromium is Debian's (scripts/setup-deps.sh --test).
set(SERVE_MODEL ${CMAKE_CURRENT_BINARY_DIR}/model_cli/tiny_f32)
foreach(check openai_check bad_requests disconnect_check batched_check speculative_check web_check)
  add_test(NAME serve_${check}
           COMMAND node ${CMAKE_CURRENT_SOURCE_DIR}/serve/${check}.mjs $<TARGET_FILE:dsv3> ${SERVE_MODEL})
  set_tests_properties(serve_${check} PROPERTIES FIXTURES_REQUIRED model_tiny_f32 LABELS "serve"
                       TIMEOUT 120)
endforeach()
# Skipped (exit 77, with the reason printed) only when Chromium cannot start in the sandbox.
set_tests_properties(serve_web_check PROPERTIES SKIP_RETURN_CODE 77)

# The command line: --help explains every flag; bad values are named before the model loads.
set(SERVE_CLI ${DSV3_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/model/cli_check.py)
add_test(NAME serve_help COMMAND ${SERVE_CLI} --ok --match "--slots N" --match "--api-key KEY"
                                 --match "--drain-timeout" --match "--speculative mtp" -- $<TARGET_FILE:dsv3> serve --help)
add_test(NAME serve_bad_port COMMAND ${SERVE_CLI} --fail --match "--port must be in 0 \\.\\. 65535, not 70000"
                                     -- $<TARGET_FILE:dsv3> serve -m ${SERVE_MODEL} --port 70000)
add_test(NAME serve_bad_host
         COMMAND ${SERVE_CLI} --fail --match "cannot listen on 256\\.1\\.1\\.1:0" --match "--host"
                 -- $<TARGET_FILE:dsv3> serve -m ${SERVE_MODEL} --host 256.1.1.1 --port 0)
# --speculative: the method and --draft are checked before the model loads; the row budget once
# --slots and --draft are known.
add_test(NAME serve_bad_draft COMMAND ${SERVE_CLI} --fail --match "--draft needs --speculative mtp"
                                      -- $<TARGET_FILE:dsv3> serve -m ${SERVE_MODEL} --draft 2)
add_test(NAME serve_draft_rows
         COMMAND ${SERVE_CLI} --fail --match "must hold the last token and the 3 drafts of every slot"
                 --match "--batch-rows" -- $<TARGET_FILE:dsv3> serve -m ${SERVE_MODEL} --port 0
                 --slots 4 --batch-rows 8 --speculative mtp --draft 3)
set_tests_properties(serve_help serve_bad_port serve_bad_host serve_bad_draft serve_draft_rows
                     PROPERTIES LABELS "serve;cli" TIMEOUT 60)
set_tests_properties(serve_bad_host serve_draft_rows PROPERTIES FIXTURES_REQUIRED model_tiny_f32)
